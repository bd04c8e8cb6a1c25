import { BananaError } from '../../errors.js';
import { FLOAT, INT, LIST, LONGINT, LONGNEG, NEG, PB_VOCABULARY, PREFIX_LIMIT, SIZE_LIMIT, STRING, VOCAB } from './constants.js';

export interface ParserLimits {
  /** Deepest list nesting accepted (Twisted has none, but its unjelly recurses). */
  maxDepth?: number;
  /**
   * Most bytes one top-level expression may span, so a peer cannot grow memory
   * without bound; each element counts at least MIN_ELEMENT_COST.
   */
  maxExpressionBytes?: number;
}

export const DEFAULT_MAX_DEPTH = 256;
export const DEFAULT_MAX_EXPRESSION_BYTES = 16 * 1024 * 1024;
/**
 * What the smallest element is charged against `maxExpressionBytes`. An empty
 * list is one byte on the wire but some 43 bytes of heap once decoded, a
 * one-byte string over 100, so charging wire bytes alone let 16 MiB of empty
 * lists hold 700 MB. At 64 per element, the most a 16 MiB expression can
 * decode to is a few times 16 MiB, whatever it is made of.
 */
export const MIN_ELEMENT_COST = 64;

/** An element's charge against the expression limit, from its size on the wire. */
export function elementCost(wireBytes: number): number {
  return Math.max(wireBytes, MIN_ELEMENT_COST);
}

/**
 * What a scanner reports, element by element, in stream order. Every event
 * comes after the element's limits were checked; the elements of a list come
 * between its `listStart` and its `listEnd`.
 */
export interface BananaEvents {
  /** A list of `count` (at least one) elements begins. */
  listStart(count: number): void;
  /** The innermost open list has all its elements. */
  listEnd(): void;
  /** A list of no elements: complete in itself, no `listEnd` follows. */
  emptyList(): void;
  /** INT, NEG, LONGINT or LONGNEG, signed; a bigint only beyond 2^53. */
  int(value: number | bigint): void;
  float(value: number): void;
  /** A string of `length` bytes begins: true to be handed its bytes, false to have them skipped unread. */
  keepString(length: number): boolean;
  /** The string is complete: its bytes if kept (`owned` when they are a fresh copy), else undefined. */
  string(bytes: Buffer | undefined, owned: boolean): void;
  /** A VOCAB element: index i stands for PB_VOCABULARY[i - 1]. */
  word(index: number): void;
}

/** The body of a string or float that began in an earlier chunk. */
interface PartialBody {
  type: typeof STRING | typeof FLOAT;
  /** Body bytes still to come. */
  left: number;
  /** What has come of a kept body; undefined while a string is skipped. */
  pieces: Buffer[] | undefined;
  /** The whole element's size on the wire, charged once the body is complete. */
  wireBytes: number;
}

/**
 * Banana's framing, once, for every reader of it: the base-128 prefix, the
 * type byte, and the limits (prefix, size, depth, the expression budget),
 * each checked before anything is kept for the element. Bytes may arrive in
 * any chunking; what an element needs from a later chunk is kept only as it
 * arrives, so no buffer is larger than the bytes actually received, and a
 * string the reader does not want is skipped without being kept at all.
 *
 * A refusal is thrown from `feed()` as a BananaError, and so is whatever an
 * event handler throws; the scanner is then unusable (as in Twisted, the only
 * safe reaction is to drop the connection).
 */
export class BananaScanner {
  /** Accept VOCAB elements: true once dialect "pb" is selected. */
  vocab = false;

  private readonly maxDepth: number;
  private readonly maxExpressionBytes: number;
  /** Elements still expected by each open list, outermost first. */
  private readonly remaining: number[] = [];
  /** What the unfinished top-level expression has been charged so far (see elementCost). */
  private cost = 0;
  /** Prefix digits of an element whose type byte has not come yet. */
  private digits: Buffer | undefined;
  private body: PartialBody | undefined;
  /** Bytes of the unfinished element received so far. */
  private partialBytes = 0;
  private failed: Error | undefined;
  /** Stream bytes fed so far, and where the chunk being scanned starts in the stream. */
  private fed = 0;
  private chunkStart = 0;
  private end = 0;

  constructor(private readonly events: BananaEvents, limits: ParserLimits = {}) {
    this.maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxExpressionBytes = limits.maxExpressionBytes ?? DEFAULT_MAX_EXPRESSION_BYTES;
  }

  /** Bytes received but not yet part of a complete element. */
  get bufferedBytes(): number {
    return this.partialBytes;
  }

  /** The stream offset just past the last complete top-level expression. */
  get position(): number {
    return this.end;
  }

  feed(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    this.chunkStart = this.fed;
    this.fed += chunk.length;
    try {
      const held = this.digits;
      this.digits = undefined;
      this.scan(chunk, this.body ? this.continueBody(chunk) : 0, held);
    } catch (err) {
      // Whatever failed (the framing or a reader), the rest of the stream is lost: stay failed.
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.digits = undefined;
      this.body = undefined;
      this.partialBytes = 0;
      throw err;
    }
  }

  /**
   * Reads the elements of `buf` from `pos` on; `held` are prefix digits an
   * earlier chunk ended with, for the first of them. One loop for all element
   * types, as the parser's speed on small elements depends on it.
   */
  private scan(buf: Buffer, pos: number, held: Buffer | undefined): void {
    const end = buf.length;
    while (pos < end) {
      // The prefix: base-128 digits (high bit clear) up to the type byte.
      let p = pos;
      while (p < end && buf[p]! < 0x80) p++;
      let digits = buf;
      let from = pos;
      let to = p;
      if (held) {
        if (held.length + p - pos > PREFIX_LIMIT) throw prefixTooLong();
        digits = Buffer.concat([held, buf.subarray(pos, p)]);
        from = 0;
        to = digits.length;
        held = undefined;
        this.partialBytes = 0;
      } else if (p - pos > PREFIX_LIMIT) throw prefixTooLong();
      if (p === end) {
        // A private copy of the few digits, so the caller's chunk is not held for them.
        this.digits = digits === buf ? Buffer.from(buf.subarray(pos)) : digits;
        this.partialBytes = this.digits.length;
        return;
      }
      const type = buf[p]!;
      const body = p + 1;
      const headerBytes = to - from + 1;
      switch (type) {
        case LIST: {
          const count = readCount(digits, from, to, 'List');
          if (count === 0) {
            this.complete(headerBytes, body);
            this.events.emptyList();
            this.elementDone(body);
            pos = body;
            continue;
          }
          this.charge(headerBytes);
          if (this.remaining.length >= this.maxDepth) throw this.tooDeep();
          this.remaining.push(count);
          this.events.listStart(count);
          pos = body;
          continue;
        }
        case STRING: {
          const length = readCount(digits, from, to, 'String');
          const keep = this.events.keepString(length);
          const next = body + length;
          if (next > end) return this.awaitBody(STRING, buf, body, length, keep, headerBytes);
          this.complete(headerBytes + length, next);
          this.events.string(keep ? buf.subarray(body, next) : undefined, false);
          this.elementDone(next);
          pos = next;
          continue;
        }
        case INT:
        case LONGINT:
          this.complete(headerBytes, body);
          this.events.int(readInteger(digits, from, to));
          this.elementDone(body);
          pos = body;
          continue;
        case NEG:
        case LONGNEG: {
          const n = readInteger(digits, from, to);
          this.complete(headerBytes, body);
          // Python's -0 is plain 0; a JavaScript -0 would re-encode as a float.
          this.events.int(n === 0 ? 0 : -n);
          this.elementDone(body);
          pos = body;
          continue;
        }
        case FLOAT: {
          const next = body + 8;
          if (next > end) return this.awaitBody(FLOAT, buf, body, 8, true, headerBytes);
          this.complete(headerBytes + 8, next);
          this.events.float(buf.readDoubleBE(body));
          this.elementDone(next);
          pos = next;
          continue;
        }
        case VOCAB: {
          const index = readInteger(digits, from, to);
          if (typeof index !== 'number' || PB_VOCABULARY[index - 1] === undefined || !this.vocab) throw badVocab(index);
          this.complete(headerBytes, body);
          this.events.word(index);
          this.elementDone(body);
          pos = body;
          continue;
        }
        default:
          throw new BananaError('BANANA_UNKNOWN_TYPE', `invalid type byte 0x${type.toString(16)}`);
      }
    }
  }

  /** A string or float whose body goes on in later chunks: what has come of it is kept if wanted. */
  private awaitBody(type: PartialBody['type'], buf: Buffer, body: number, length: number, keep: boolean, headerBytes: number): void {
    const available = buf.length - body;
    // A private copy of the start of a kept body, so the caller's chunk is not held for it.
    const pieces = keep ? [Buffer.from(buf.subarray(body))] : undefined;
    this.body = { type, left: length - available, pieces, wireBytes: headerBytes + length };
    this.partialBytes = headerBytes + available;
  }

  /** Takes what a string or float body needs from `chunk`; returns where the next element starts. */
  private continueBody(chunk: Buffer): number {
    const partial = this.body!;
    const n = Math.min(partial.left, chunk.length);
    // Either all of the chunk (the body goes on) or its start, joined with the rest right away.
    partial.pieces?.push(chunk.subarray(0, n));
    partial.left -= n;
    if (partial.left > 0) {
      this.partialBytes += n;
      return n;
    }
    this.body = undefined;
    this.partialBytes = 0;
    const bytes = partial.pieces ? Buffer.concat(partial.pieces) : undefined;
    this.complete(partial.wireBytes, n);
    if (partial.type === FLOAT) this.events.float(bytes!.readDoubleBE(0));
    else this.events.string(bytes, true);
    this.elementDone(n);
    return n;
  }

  /**
   * Charges an element that ends at `pos` of this chunk, before its event: if
   * it is a whole expression, that is where the stream splits, and the next
   * expression's budget starts afresh.
   */
  private complete(wireBytes: number, pos: number): void {
    this.charge(wireBytes);
    if (this.remaining.length > 0) return;
    this.cost = 0;
    this.end = this.chunkStart + pos;
  }

  /** After an element's event: it was one more element of its list, and may close it and the lists around it. */
  private elementDone(pos: number): void {
    const open = this.remaining;
    for (let depth = open.length - 1; depth >= 0; depth--) {
      if (--open[depth]! > 0) return;
      open.pop();
      if (depth === 0) {
        this.cost = 0;
        this.end = this.chunkStart + pos;
      }
      this.events.listEnd();
    }
  }

  private tooDeep(): BananaError {
    return new BananaError('BANANA_TOO_DEEP', `lists nested more than ${this.maxDepth} deep`);
  }

  private charge(wireBytes: number): void {
    this.cost += elementCost(wireBytes);
    if (this.cost > this.maxExpressionBytes) {
      throw new BananaError('BANANA_EXPRESSION_TOO_LARGE', expressionTooLarge(this.maxExpressionBytes));
    }
  }
}

/** The one wording of BANANA_EXPRESSION_TOO_LARGE. */
function expressionTooLarge(limit: number): string {
  return `one expression exceeds ${limit} bytes (each element counts at least ${MIN_ELEMENT_COST})`;
}

function badVocab(index: number | bigint): BananaError {
  const word = typeof index === 'number' ? PB_VOCABULARY[index - 1] : undefined;
  if (word === undefined) return new BananaError('BANANA_BAD_VOCAB', `unknown vocabulary index ${index}`);
  return new BananaError('BANANA_BAD_VOCAB', `vocabulary element ${word} before the "pb" dialect was selected`);
}

function prefixTooLong(): BananaError {
  return new BananaError('BANANA_PREFIX_TOO_LONG', `Security precaution: more than ${PREFIX_LIMIT} bytes of prefix`);
}

/** A LIST/STRING size, rejected before any allocation if it exceeds SIZE_LIMIT. */
function readCount(buf: Buffer, from: number, to: number, what: string): number {
  const n = readInteger(buf, from, to);
  if (typeof n === 'bigint' || n > SIZE_LIMIT) {
    throw new BananaError(what === 'List' ? 'BANANA_LIST_TOO_LONG' : 'BANANA_STRING_TOO_LONG', `Security precaution: ${what} too long.`);
  }
  return n;
}

/** Base-128, least significant digit first; a number while exact, a bigint beyond 2^53. */
function readInteger(buf: Buffer, from: number, to: number): number | bigint {
  if (to - from <= 7) {
    let n = 0;
    let scale = 1;
    for (let i = from; i < to; i++) {
      n += buf[i]! * scale;
      scale *= 128;
    }
    return n;
  }
  let n = 0n;
  for (let i = to - 1; i >= from; i--) n = (n << 7n) | BigInt(buf[i]!);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}
