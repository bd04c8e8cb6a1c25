/**
 * --max-connections and --max-per-source: how many raw connections the relay holds, in any stage
 * (TCP, TLS or WebSocket handshake, PB), in all and per source address. Counting only; the relay
 * refuses by closing the socket, and counts and logs that itself.
 *
 * Not part of WorkerAdmission, though both hand out slots: these judge a socket before any byte
 * of it is read, by its address alone, and refuse in silence; admission judges a worker's name at
 * its login and answers in PB.
 */
import type { Slot } from './admission.js';

export class SocketLimits {
  private total = 0;
  /** A source holding no connection has no entry, so strangers' addresses are not kept. */
  private readonly perSource = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerSource: number,
  ) {}

  /** Raw connections held now. */
  get open(): number {
    return this.total;
  }

  /** Connections held now from `source`. */
  openFrom(source: string): number {
    return this.perSource.get(source) ?? 0;
  }

  /** A raw connection, counted until its slot is released; undefined at --max-connections. */
  enter(): Slot | undefined {
    if (this.total >= this.maxConnections) return undefined;
    this.total++;
    return once(() => this.total--);
  }

  /**
   * A connection from `source` (as its socket or a trusted PROXY header names it), counted until
   * its slot is released; undefined at --max-per-source.
   */
  enterFrom(source: string): Slot | undefined {
    const open = this.openFrom(source);
    if (open >= this.maxPerSource) return undefined;
    this.perSource.set(source, open + 1);
    return once(() => {
      const left = this.openFrom(source) - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    });
  }
}

/** A slot whose release counts once, however often a socket's close paths call it. */
function once(release: () => void): Slot {
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      release();
    },
  };
}
