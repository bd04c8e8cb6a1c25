import { BananaError } from '../errors.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPRESSION_BYTES, elementCost, expressionTooLarge, type ParserLimits } from '../pb/banana/parser.js';
import { FLOAT, INT, LIST, LONGINT, LONGNEG, NEG, PB_VOCABULARY, PREFIX_LIMIT, SIZE_LIMIT, STRING, VOCAB } from '../pb/banana/constants.js';

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
 * id, target, method, answer flag). Framing that Banana forbids throws a BananaError,
 * and so does one beyond the parser's limits (depth, and the expression budget
 * charged as the parser charges it): with the same limits, what a bbgate
 * parser would refuse, the skimmer refuses.
 */
export class CallSkimmer {
  private prefix = 0;
  private prefixBytes = 0;
  private scale = 1;
  /** Body bytes of the current string or float still to come. */
  private skipping = 0;
  /** Wire bytes of the string or float being skipped, charged once its body is complete (as the parser does). */
  private bodyElementBytes = 0;
  /** What the unfinished top-level expression has been charged so far. */
  private cost = 0;
  /** The body being kept, when the string sits in a head slot and is short. */
  private kept: number[] | undefined;
  /** Elements still expected by each open list, outermost first. */
  private readonly remaining: number[] = [];
  /** Index of the next element of the top-level list. */
  private slot = 0;
  private head: CallHead = {};

  private readonly maxDepth: number;
  private readonly maxExpressionBytes: number;

  constructor(
    private readonly vocab: boolean,
    private readonly onHead: (head: CallHead) => void,
    limits: ParserLimits = {},
  ) {
    this.maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxExpressionBytes = limits.maxExpressionBytes ?? DEFAULT_MAX_EXPRESSION_BYTES;
  }

  feed(chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, end - pos);
        if (this.kept) for (let i = pos; i < pos + n; i++) this.kept.push(chunk[i]!);
        this.skipping -= n;
        pos += n;
        if (this.skipping === 0) this.bodyDone();
        continue;
      }
      const byte = chunk[pos++]!;
      if (byte < 0x80) {
        if (++this.prefixBytes > PREFIX_LIMIT) throw new BananaError('BANANA_PREFIX_TOO_LONG', `Security precaution: more than ${PREFIX_LIMIT} bytes of prefix`);
        this.prefix += byte * this.scale;
        this.scale *= 128;
        continue;
      }
      const n = this.prefix;
      const headerBytes = this.prefixBytes + 1;
      this.prefix = 0;
      this.prefixBytes = 0;
      this.scale = 1;
      this.element(byte, n, headerBytes);
    }
  }

  private element(type: number, n: number, headerBytes: number): void {
    const inHead = this.remaining.length === 1 && this.slot < HEAD_SLOTS;
    switch (type) {
      case LIST:
        if (n > SIZE_LIMIT) throw new BananaError('BANANA_LIST_TOO_LONG', 'Security precaution: List too long.');
        this.charge(headerBytes);
        if (n === 0) return this.done(undefined);
        if (this.remaining.length >= this.maxDepth) throw new BananaError('BANANA_TOO_DEEP', `lists nested more than ${this.maxDepth} deep`);
        if (this.remaining.length === 0) {
          this.slot = 0;
          this.head = {};
        }
        this.remaining.push(n);
        return;
      case STRING:
        if (n > SIZE_LIMIT) throw new BananaError('BANANA_STRING_TOO_LONG', 'Security precaution: String too long.');
        this.kept = inHead && n <= MAX_HEAD_STRING ? [] : undefined;
        this.skipping = n;
        this.bodyElementBytes = headerBytes + n;
        if (n === 0) this.bodyDone();
        return;
      case FLOAT:
        this.kept = undefined;
        this.skipping = 8;
        this.bodyElementBytes = headerBytes + 8;
        return;
      case INT:
      case NEG:
      case LONGINT:
      case LONGNEG: {
        this.charge(headerBytes);
        // As Twisted reads them: a LONGINT 5 is request 5 too, and NEG 0 is 0. Digits
        // summed as a float are exact below 2^53; a larger number is no request id.
        const value = type === NEG || type === LONGNEG ? (n === 0 ? 0 : -n) : n;
        return this.done(inHead && Number.isSafeInteger(value) ? value : undefined);
      }
      case VOCAB: {
        const word = PB_VOCABULARY[n - 1];
        if (word === undefined || !this.vocab) throw new BananaError('BANANA_BAD_VOCAB', `unexpected vocabulary element ${n}`);
        this.charge(headerBytes);
        return this.done(word);
      }
      default:
        throw new BananaError('BANANA_UNKNOWN_TYPE', `invalid type byte 0x${type.toString(16)}`);
    }
  }

  private bodyDone(): void {
    this.charge(this.bodyElementBytes);
    const kept = this.kept;
    this.kept = undefined;
    this.done(kept ? Buffer.from(kept).toString('latin1') : undefined);
  }

  /** An element is complete: fill its head slot, and close every list it completes. */
  private done(value: string | number | undefined): void {
    const open = this.remaining;
    if (open.length === 0) {
      this.cost = 0;
      return;
    }
    if (open.length === 1) this.fill(value);
    while (open.length > 0) {
      const depth = open.length - 1;
      if (--open[depth]! > 0) return;
      open.pop();
      if (open.length === 0) {
        this.cost = 0;
        this.onHead(this.head);
        return;
      }
      // A nested list just ended: it was one element of its parent.
      if (open.length === 1) this.fill(undefined);
    }
  }

  private charge(wireBytes: number): void {
    this.cost += elementCost(wireBytes);
    if (this.cost > this.maxExpressionBytes) throw new BananaError('BANANA_EXPRESSION_TOO_LARGE', expressionTooLarge(this.maxExpressionBytes));
  }

  private fill(value: string | number | undefined): void {
    const slot = this.slot++;
    if (value === undefined) return;
    if (slot === 0 && typeof value === 'string') this.head.command = value;
    else if (slot === 1 && typeof value === 'number') this.head.requestId = value;
    else if (slot === 2) this.head.target = value;
    else if (slot === 3 && typeof value === 'string') this.head.method = value;
    else if (slot === 4 && typeof value === 'number') this.head.answerRequired = value;
  }
}
