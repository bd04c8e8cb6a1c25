/**
 * How much of a transfer may be in flight at once: the bytes written to the
 * master and not yet answered (uploads), or asked of the master and not yet
 * on disk (downloads). Blocks complete in the order they went out (a PB peer
 * answers calls on one connection in order), and the window learns from each.
 *
 * The adaptive window keeps twice the bandwidth-delay product in flight:
 * 2 × the best delivery rate of the last 10 rounds × the smallest round trip
 * of the transfer, at least 4 blocks and at most 16 MiB. Twice, so that it keeps
 * growing (each round trip it is allowed twice what the last one delivered)
 * until the rate stops rising, and then keeps a full pipe with at most one
 * round trip's worth queued. When the master stays slower for 10 rounds, the
 * faster samples age out of the rate filter and the window shrinks with them. Memory is
 * bounded by the window: nothing more goes out until a block completes.
 *
 * The rate is measured per completed block as in BBR's delivery-rate
 * estimate: the bytes completed since that block went out, over the longer
 * of the time its completions took and the time its sends took, so a burst
 * of answers arriving together does not read as a faster link.
 */
export interface TransferWindow {
  /** Whether a block of `length` bytes may go out now; a block may always go out when nothing is in flight. */
  allows(length: number): boolean;
  /** A block of `length` bytes went out at `now` (ms). */
  sent(length: number, now: number): SentBlock;
  /** The oldest block in flight completed at `now` (ms). */
  done(block: SentBlock, now: number): void;
  /** Bytes in flight now. */
  readonly inFlight: number;
  /** The most bytes that were in flight at once. */
  readonly peak: number;
}

/** What the window remembers of a block until it completes. */
export interface SentBlock {
  readonly length: number;
  readonly sentAt: number;
  /** Bytes completed when it went out, and when the last of those completed. */
  readonly delivered: number;
  readonly deliveredAt: number;
  /** When the block whose completion started this sample went out. */
  readonly firstSentAt: number;
}

/** The most bytes the adaptive window keeps in flight. */
export const WINDOW_CAP = 16 * 1024 * 1024;
/** The fewest blocks it allows, before it has measured anything too. */
export const WINDOW_FLOOR_BLOCKS = 4;
/** The window is this many times the measured bandwidth-delay product. */
export const WINDOW_GAIN = 2;
/**
 * How long the best rate is remembered, in rounds (a round ends when a block
 * sent after it began completes), as BBR's max-bandwidth filter: idle time
 * and a hiccup (one long round) age nothing; a master that stays slower for
 * this many rounds shrinks the window.
 */
export const RATE_WINDOW_ROUNDS = 10;

interface Sample {
  at: number;
  value: number;
}

/**
 * The largest of the samples of the last `span` rounds: a monotonic
 * deque, each sample dropped once a larger newer one or its age rules it out.
 */
class WindowedMax {
  private readonly samples: Sample[] = [];
  private head = 0;

  add(value: number, at: number): void {
    while (this.samples.length > this.head && this.samples[this.samples.length - 1]!.value <= value) this.samples.pop();
    this.samples.push({ at, value });
  }

  /** The largest sample no older than `span` at `now`, or undefined. */
  best(now: number, span: number): number | undefined {
    while (this.head < this.samples.length && this.samples[this.head]!.at < now - span) this.head++;
    if (this.head > 1024 && this.head * 2 > this.samples.length) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
    return this.samples[this.head]?.value;
  }
}

class Accounting {
  inFlight = 0;
  peak = 0;
  protected delivered = 0;
  protected deliveredAt: number | undefined;
  protected firstSentAt: number | undefined;
  sent(length: number, now: number): SentBlock {
    // After an idle spell (nothing in flight) the clock of the rate sample restarts, so idle time is not counted.
    if (this.inFlight === 0) {
      this.deliveredAt = now;
      this.firstSentAt = now;
    }
    this.inFlight += length;
    this.peak = Math.max(this.peak, this.inFlight);
    return { length, sentAt: now, delivered: this.delivered, deliveredAt: this.deliveredAt ?? now, firstSentAt: this.firstSentAt ?? now };
  }

  done(block: SentBlock, now: number): void {
    this.inFlight -= block.length;
    this.delivered += block.length;
    this.deliveredAt = now;
    this.firstSentAt = block.sentAt;
  }
}

/** The adaptive window for blocks of (at most) `blockSize` bytes; see the module's comment. */
export class AdaptiveWindow extends Accounting implements TransferWindow {
  private readonly maxRate = new WindowedMax();
  private minRtt = Infinity;
  private round = 0;
  private roundEnd = 0;
  private current: number;
  private readonly floor: number;

  constructor(blockSize: number, private readonly cap = WINDOW_CAP) {
    super();
    this.floor = Math.min(cap, WINDOW_FLOOR_BLOCKS * blockSize);
    this.current = this.floor;
  }

  /** Bytes allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  allows(length: number): boolean {
    return this.inFlight === 0 || this.inFlight + length <= this.current;
  }

  override done(block: SentBlock, now: number): void {
    super.done(block, now);
    // The smallest of the whole transfer: an expiring one (BBR's 10 s) would take the round trip
    // of a standing queue as the link's once the queue has stood that long, and keep the queue.
    this.minRtt = Math.min(this.minRtt, now - block.sentAt);
    if (block.delivered >= this.roundEnd) {
      this.round++;
      this.roundEnd = this.delivered;
    }
    const interval = Math.max(now - block.deliveredAt, block.sentAt - block.firstSentAt);
    if (interval > 0) this.maxRate.add((this.delivered - block.delivered) / interval, this.round);
    const rate = this.maxRate.best(this.round, RATE_WINDOW_ROUNDS - 1);
    if (rate !== undefined) this.current = Math.min(this.cap, Math.max(this.floor, Math.ceil(WINDOW_GAIN * rate * this.minRtt)));
  }
}

/** A window of `n` blocks, whatever their size and speed (1 reproduces buildbot-worker: one block per round trip). */
export class FixedWindow extends Accounting implements TransferWindow {
  private blocks = 0;

  constructor(readonly n: number) {
    super();
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a fixed window needs a positive whole number of blocks, not ${n}`);
  }

  allows(): boolean {
    return this.blocks < this.n;
  }

  override sent(length: number, now: number): SentBlock {
    this.blocks++;
    return super.sent(length, now);
  }

  override done(block: SentBlock, now: number): void {
    this.blocks--;
    super.done(block, now);
  }
}

/** Makes the window for one transfer of blocks of `blockSize` bytes. */
export type WindowFactory = (blockSize: number) => TransferWindow;

export const adaptiveWindow: WindowFactory = (blockSize) => new AdaptiveWindow(blockSize);

export function fixedWindow(n: number): WindowFactory {
  new FixedWindow(n); // checks n now, not at the first transfer
  return () => new FixedWindow(n);
}
