import { BananaError } from '../../errors.js';
import { isIntegral, PyFloat } from '../values.js';
import {
  FLOAT, INT, LIST, LONGINT, LONGNEG, NEG, PB_VOCABULARY, PREFIX_LIMIT, SIZE_LIMIT, STRING, VOCAB,
} from './constants.js';
import type { Sexp } from './writer.js';

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

const VOCAB_BYTES = PB_VOCABULARY.map((w) => Buffer.from(w, 'latin1'));
const EMPTY = Buffer.alloc(0);

/**
 * A streaming Banana decoder. Bytes may arrive in any chunking; each complete
 * top-level expression is handed to `onExpression` in order. A declared length
 * is checked against the limits before anything is buffered for it, and no
 * buffer larger than the bytes actually received is ever allocated.
 *
 * Errors are thrown from `feed()` as `BananaError`; the stream is then unusable
 * (as in Twisted, the only safe reaction is to drop the connection).
 */
export class BananaParser {
  /** Accept VOCAB elements: true once dialect "pb" is selected. */
  vocab = false;

  private readonly maxDepth: number;
  private readonly maxExpressionBytes: number;
  /** Unconsumed bytes, kept as received until at least `need` of them are here. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private need = 0;
  private stack: Sexp[][] = [];
  private counts: number[] = [];
  /** What the unfinished top-level expression has been charged so far (see elementCost). */
  private expressionBytes = 0;
  private failed: Error | undefined;
  /** Stream bytes fed so far, and where the buffer being parsed starts in the stream. */
  private fed = 0;
  private bufferStart = 0;
  private end = 0;

  constructor(private readonly onExpression: (expr: Sexp) => void, limits: ParserLimits = {}) {
    this.maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxExpressionBytes = limits.maxExpressionBytes ?? DEFAULT_MAX_EXPRESSION_BYTES;
  }

  /** Bytes received but not yet part of a complete element. */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  /**
   * The stream offset just past the last complete top-level expression, read
   * inside `onExpression`: a relay splits the raw stream there.
   */
  get position(): number {
    return this.end;
  }

  feed(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    const piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.fed += piece.length;
    if (this.pendingLength + piece.length < this.need) {
      this.pending.push(piece);
      this.pendingLength += piece.length;
      return;
    }
    let buf: Buffer;
    if (this.pendingLength === 0) buf = piece;
    else {
      this.pending.push(piece);
      buf = Buffer.concat(this.pending, this.pendingLength + piece.length);
    }
    this.pending = [];
    this.pendingLength = 0;
    this.need = 0;
    this.bufferStart = this.fed - buf.length;
    try {
      this.parse(buf);
    } catch (err) {
      // Whatever failed (our framing or the consumer), the rest of this buffer is lost: stay failed.
      this.failed = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
  }

  private parse(buf: Buffer): void {
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      const start = pos;
      // The prefix: base-128 digits (high bit clear) up to the type byte.
      let p = pos;
      while (p < end && buf[p]! < 0x80) p++;
      const prefixLength = p - pos;
      if (prefixLength > PREFIX_LIMIT) {
        throw new BananaError('BANANA_PREFIX_TOO_LONG', `Security precaution: more than ${PREFIX_LIMIT} bytes of prefix`);
      }
      if (p === end) {
        this.stall(buf, start, prefixLength + 1);
        return;
      }
      const type = buf[p]!;
      const body = p + 1;
      let item: Sexp;
      switch (type) {
        case LIST: {
          const count = readCount(buf, pos, p, 'List');
          this.account(body - start);
          pos = body;
          if (count === 0) {
            item = [];
            break;
          }
          if (this.stack.length >= this.maxDepth) {
            throw new BananaError('BANANA_TOO_DEEP', `lists nested more than ${this.maxDepth} deep`);
          }
          this.stack.push([]);
          this.counts.push(count);
          continue;
        }
        case STRING: {
          const length = readCount(buf, pos, p, 'String');
          if (end - body < length) {
            this.stall(buf, start, body - start + length);
            return;
          }
          this.account(body - start + length);
          item = length === 0 ? EMPTY : Buffer.from(buf.subarray(body, body + length));
          pos = body + length;
          break;
        }
        case INT:
        case LONGINT:
          item = readInteger(buf, pos, p);
          this.account(body - start);
          pos = body;
          break;
        case NEG:
        case LONGNEG: {
          const n = readInteger(buf, pos, p);
          // Python's -0 is plain 0; a JavaScript -0 would re-encode as a float.
          item = n === 0 ? 0 : -n;
          this.account(body - start);
          pos = body;
          break;
        }
        case FLOAT: {
          if (end - body < 8) {
            this.stall(buf, start, body - start + 8);
            return;
          }
          const f = buf.readDoubleBE(body);
          item = isIntegral(f) ? new PyFloat(f) : f;
          this.account(body - start + 8);
          pos = body + 8;
          break;
        }
        case VOCAB: {
          const index = readInteger(buf, pos, p);
          const word = typeof index === 'number' ? VOCAB_BYTES[index - 1] : undefined;
          if (word === undefined) {
            throw new BananaError('BANANA_BAD_VOCAB', `unknown vocabulary index ${index}`);
          }
          if (!this.vocab) {
            throw new BananaError('BANANA_BAD_VOCAB', `vocabulary element ${word.toString('latin1')} before the "pb" dialect was selected`);
          }
          item = Buffer.from(word);
          this.account(body - start);
          pos = body;
          break;
        }
        default:
          throw new BananaError('BANANA_UNKNOWN_TYPE', `invalid type byte 0x${type.toString(16)}`);
      }
      this.deliver(item, pos);
    }
  }

  /** Hands a finished element to its list, closing every list it completes. */
  private deliver(item: Sexp, pos: number): void {
    const stack = this.stack;
    for (;;) {
      const depth = stack.length;
      if (depth === 0) {
        this.expressionBytes = 0;
        this.end = this.bufferStart + pos;
        this.onExpression(item);
        return;
      }
      const top = stack[depth - 1]!;
      top.push(item);
      if (top.length < this.counts[depth - 1]!) return;
      stack.pop();
      this.counts.pop();
      item = top;
    }
  }

  private account(wireBytes: number): void {
    this.expressionBytes += elementCost(wireBytes);
    if (this.expressionBytes > this.maxExpressionBytes) {
      throw new BananaError('BANANA_EXPRESSION_TOO_LARGE', expressionTooLarge(this.maxExpressionBytes));
    }
  }

  private stall(buf: Buffer, from: number, need: number): void {
    const rest = buf.subarray(from);
    // Keep a private copy only of what is left, so the caller's chunk can be reused.
    this.pending = [Buffer.from(rest)];
    this.pendingLength = rest.length;
    this.need = need;
  }
}

/** The one wording of BANANA_EXPRESSION_TOO_LARGE, shared with the relay's skimmer. */
export function expressionTooLarge(limit: number): string {
  return `one expression exceeds ${limit} bytes (each element counts at least ${MIN_ELEMENT_COST})`;
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

/** Decodes a complete buffer holding whole expressions (for tests and tools). */
export function decodeSexps(bytes: Uint8Array, vocab = false): Sexp[] {
  const out: Sexp[] = [];
  const parser = new BananaParser((e) => out.push(e));
  parser.vocab = vocab;
  parser.feed(bytes);
  if (parser.bufferedBytes > 0) throw new BananaError('BANANA_UNKNOWN_TYPE', 'truncated Banana input');
  return out;
}
