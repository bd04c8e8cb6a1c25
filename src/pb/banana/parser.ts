import { BananaError } from '../../errors.js';
import { isIntegral, PyFloat } from '../values/values.js';
import { PB_VOCABULARY } from './constants.js';
import { BananaScanner, type BananaEvents, type ParserLimits } from './scanner.js';
import type { Sexp } from './writer.js';

const VOCAB_BYTES = PB_VOCABULARY.map((w) => Buffer.from(w, 'latin1'));
const EMPTY = Buffer.alloc(0);

/**
 * A streaming Banana decoder. Bytes may arrive in any chunking; each complete
 * top-level expression is handed to `onExpression` in order. The scanner
 * checks every limit before anything is kept for an element, and keeps no
 * buffer larger than the bytes actually received.
 *
 * Errors are thrown from `feed()` as `BananaError`; the stream is then unusable
 * (as in Twisted, the only safe reaction is to drop the connection).
 */
export class BananaParser {
  private readonly scanner: BananaScanner;

  constructor(onExpression: (expr: Sexp) => void, limits: ParserLimits = {}) {
    this.scanner = new BananaScanner(new ExpressionBuilder(onExpression), limits);
  }

  /** Accept VOCAB elements: true once dialect "pb" is selected. */
  get vocab(): boolean {
    return this.scanner.vocab;
  }

  set vocab(on: boolean) {
    this.scanner.vocab = on;
  }

  /** Bytes received but not yet part of a complete element. */
  get bufferedBytes(): number {
    return this.scanner.bufferedBytes;
  }

  /**
   * The stream offset just past the last complete top-level expression, read
   * inside `onExpression`: a relay splits the raw stream there.
   */
  get position(): number {
    return this.scanner.position;
  }

  feed(chunk: Uint8Array): void {
    this.scanner.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
}

/** Builds the values of the elements the scanner reports. */
class ExpressionBuilder implements BananaEvents {
  /** The lists being filled, outermost first. */
  private readonly stack: Sexp[][] = [];

  constructor(private readonly onExpression: (expr: Sexp) => void) {}

  listStart(): void {
    this.stack.push([]);
  }

  listEnd(): void {
    this.add(this.stack.pop()!);
  }

  emptyList(): void {
    this.add([]);
  }

  int(value: number | bigint): void {
    this.add(value);
  }

  float(value: number): void {
    this.add(isIntegral(value) ? new PyFloat(value) : value);
  }

  keepString(): boolean {
    return true;
  }

  string(bytes: Buffer | undefined, owned: boolean): void {
    // A view of the caller's chunk is copied, so the chunk can be reused.
    this.add(bytes!.length === 0 ? EMPTY : owned ? bytes! : Buffer.from(bytes!));
  }

  word(index: number): void {
    this.add(Buffer.from(VOCAB_BYTES[index - 1]!));
  }

  /** A finished element goes into the innermost open list, or out as a whole expression. */
  private add(item: Sexp): void {
    const stack = this.stack;
    if (stack.length === 0) this.onExpression(item);
    else stack[stack.length - 1]!.push(item);
  }
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
