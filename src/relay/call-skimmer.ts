import { BananaScanner, PB_VOCABULARY, type BananaEvents, type ParserLimits } from '../pb/index.js';

/** The first elements of a top-level PB expression: which command, which request, whose method. */
export interface CallHead {
  command?: string;
  requestId?: number;
  /** "root", or an object id. */
  target?: string | number;
  method?: string;
  /** A message's answer flag: 0 for a one-way call. */
  answerRequired?: number;
}

/** Head elements are words and small numbers; a longer string there is no PB command and is skipped. */
const MAX_HEAD_STRING = 64;
const HEAD_SLOTS = 5;

/**
 * Follows the shape of a Banana stream without building its values: string
 * bodies (log output, file chunks) are skipped by length, never copied, so
 * the relay can watch every call a worker makes for the whole connection at
 * little cost. For each top-level list it reports the head (command, request
 * id, target, method, answer flag). The framing and its limits are the
 * parser's own scanner: with the same limits, what a bbgate parser would
 * refuse, the skimmer refuses, with the same BananaError.
 */
export class CallSkimmer {
  private readonly scanner: BananaScanner;

  constructor(vocab: boolean, onHead: (head: CallHead) => void, limits: ParserLimits = {}) {
    this.scanner = new BananaScanner(new HeadReader(onHead), limits);
    this.scanner.vocab = vocab;
  }

  feed(chunk: Buffer): void {
    this.scanner.feed(chunk);
  }
}

/** Fills a call's head from the elements of each top-level list; deeper elements only count. */
class HeadReader implements BananaEvents {
  /** Lists open around the next element: 1 inside a top-level list. */
  private depth = 0;
  /** Index of the next element of the top-level list. */
  private slot = 0;
  private head: CallHead = {};

  constructor(private readonly onHead: (head: CallHead) => void) {}

  listStart(): void {
    if (this.depth === 0) {
      this.slot = 0;
      this.head = {};
    } else this.fill(undefined);
    this.depth++;
  }

  listEnd(): void {
    if (--this.depth === 0) this.onHead(this.head);
  }

  emptyList(): void {
    this.fill(undefined);
  }

  int(value: number | bigint): void {
    // As Twisted reads them: a LONGINT 5 is request 5 too, and NEG 0 is 0; a number beyond 2^53 is no request id.
    this.fill(typeof value === 'number' ? value : undefined);
  }

  float(): void {
    this.fill(undefined);
  }

  keepString(length: number): boolean {
    return this.depth === 1 && this.slot < HEAD_SLOTS && length <= MAX_HEAD_STRING;
  }

  string(bytes: Buffer | undefined): void {
    this.fill(bytes?.toString('latin1'));
  }

  word(index: number): void {
    this.fill(PB_VOCABULARY[index - 1]);
  }

  /** A nested list takes its slot when it begins: the slots are positions, whatever fills them. */
  private fill(value: string | number | undefined): void {
    if (this.depth !== 1) return;
    const slot = this.slot++;
    if (value === undefined) return;
    if (slot === 0 && typeof value === 'string') this.head.command = value;
    else if (slot === 1 && typeof value === 'number') this.head.requestId = value;
    else if (slot === 2) this.head.target = value;
    else if (slot === 3 && typeof value === 'string') this.head.method = value;
    else if (slot === 4 && typeof value === 'number') this.head.answerRequired = value;
  }
}
