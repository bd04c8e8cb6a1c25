import { BananaError } from '../../errors.js';
import { isIntegral, PyFloat } from '../values/values.js';
import {
  FLOAT, INT, LARGEST_INT, LARGEST_LONG, LIST, LONGINT, LONGNEG, NEG, PB_VOCABULARY,
  SIZE_LIMIT, SMALLEST_INT, STRING, VOCAB,
} from './constants.js';

const VOCAB_INDEX = new Map(PB_VOCABULARY.map((word, i) => [word, i + 1]));
const SHORTEST_WORD = Math.min(...PB_VOCABULARY.map((w) => w.length));
const LONGEST_WORD = Math.max(...PB_VOCABULARY.map((w) => w.length));

/** Text of at most this many UTF-16 code units always fits one string element (a unit is at most 3 bytes of UTF-8). */
export const MAX_TEXT_UNITS = Math.floor(SIZE_LIMIT / 3);

/** A Banana s-expression: what the framing layer itself can carry. */
export type Sexp = number | bigint | PyFloat | Uint8Array | Sexp[];

/**
 * Serializes Banana elements into one growing buffer. Callers write a whole
 * expression, then `take()` it; a failed expression is dropped with `reset()`.
 * With `vocab` on (dialect "pb") every byte string equal to a vocabulary word
 * goes out as VOCAB, exactly as Twisted does.
 */
export class BananaWriter {
  vocab = false;
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 4096) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** The bytes written since the last take()/reset(), as a buffer the caller owns. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  reset(): void {
    this.pos = 0;
  }

  list(count: number): void {
    if (count > SIZE_LIMIT) {
      throw new BananaError('BANANA_CANNOT_ENCODE', `list of ${count} elements is too long to send (limit ${SIZE_LIMIT})`);
    }
    this.prefix(count, LIST);
  }

  int(n: number | bigint): void {
    if (typeof n === 'number' && !Number.isInteger(n)) {
      throw new BananaError('BANANA_CANNOT_ENCODE', `${n} is not an integer`);
    }
    if (typeof n === 'number' && n >= SMALLEST_INT && n <= LARGEST_INT) {
      if (n >= 0) this.prefix(n, INT);
      else this.prefix(-n, NEG);
      return;
    }
    const big = BigInt(n);
    if (big > LARGEST_LONG || -big > LARGEST_LONG) {
      throw new BananaError('BANANA_CANNOT_ENCODE', `integer ${big} is too large to send (more than ${LARGEST_LONG.toString(2).length} bits)`);
    }
    if (big < 0n) this.bigPrefix(-big, big < BigInt(SMALLEST_INT) ? LONGNEG : NEG);
    else this.bigPrefix(big, big > BigInt(LARGEST_INT) ? LONGINT : INT);
  }

  float(n: number): void {
    this.ensure(9);
    this.buf[this.pos++] = FLOAT;
    this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }

  /** A number the way Python would have typed it: integral → int, otherwise float. */
  number(n: number): void {
    if (isIntegral(n)) this.int(n);
    else this.float(n);
  }

  bytes(b: Uint8Array): void {
    if (this.vocab && b.length >= SHORTEST_WORD && b.length <= LONGEST_WORD) {
      const index = VOCAB_INDEX.get(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'));
      if (index !== undefined) {
        this.prefix(index, VOCAB);
        return;
      }
    }
    this.checkLength(b.length);
    this.prefix(b.length, STRING);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Text as one string element of its UTF-8 bytes (a vocabulary word as VOCAB in dialect "pb"). */
  utf8(s: string): void {
    if (this.vocab && s.length >= SHORTEST_WORD && s.length <= LONGEST_WORD) {
      const index = VOCAB_INDEX.get(s);
      if (index !== undefined) {
        this.prefix(index, VOCAB);
        return;
      }
    }
    this.text([s], s.length);
  }

  /**
   * Text given as pieces, `units` UTF-16 code units in all, as one string element. Each piece's
   * UTF-8 goes straight into the buffer, after room for the longest prefix its length could need
   * (a code unit is 1 to 3 bytes); the prefix is filled in afterwards, the bytes moved down when it
   * came out shorter. Neither a joined string nor a separate count of the bytes is ever made. Text
   * whose UTF-8 exceeds SIZE_LIMIT is refused before it is sent (Twisted would drop the
   * connection), and nothing of it stays written.
   */
  text(pieces: readonly string[], units: number): void {
    if (units > SIZE_LIMIT) throw textTooLong(`${units} characters`);
    const room = digits(3 * units) + 1;
    this.ensure(Math.max(room + 3 * units, 9));
    const start = this.pos;
    const body = start + room;
    let end = body;
    for (const piece of pieces) end += this.buf.write(piece, end, 'utf8');
    const length = end - body;
    if (length > SIZE_LIMIT) throw textTooLong(`${length} bytes of UTF-8`);
    this.prefix(length, STRING);
    if (this.pos < body) this.buf.copyWithin(this.pos, body, end);
    this.pos += length;
  }

  /** An ASCII word such as a jelly type atom or PB command. */
  word(s: string): void {
    this.utf8(s);
  }

  /** Any Banana s-expression (used for handshakes and by tests). */
  sexp(v: Sexp): void {
    if (typeof v === 'number') this.number(v);
    else if (typeof v === 'bigint') this.int(v);
    else if (v instanceof PyFloat) this.float(v.value);
    else if (v instanceof Uint8Array) this.bytes(v);
    else if (Array.isArray(v)) {
      this.list(v.length);
      for (const item of v) this.sexp(item);
    } else {
      throw new BananaError('BANANA_CANNOT_ENCODE', `Banana cannot send ${describe(v)}`);
    }
  }

  private checkLength(length: number): void {
    if (length > SIZE_LIMIT) {
      throw new BananaError('BANANA_CANNOT_ENCODE', `byte string of ${length} bytes is too long to send (limit ${SIZE_LIMIT})`);
    }
  }

  /** Writes n (a non-negative safe integer) in base 128, least significant digit first, then the type byte. */
  private prefix(n: number, type: number): void {
    this.ensure(9);
    const buf = this.buf;
    if (n === 0) buf[this.pos++] = 0;
    while (n > 0) {
      buf[this.pos++] = n % 128;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = type;
  }

  private bigPrefix(n: bigint, type: number): void {
    if (n <= BigInt(Number.MAX_SAFE_INTEGER)) {
      this.prefix(Number(n), type);
      return;
    }
    this.ensure(66);
    while (n > 0n) {
      this.buf[this.pos++] = Number(n & 0x7fn);
      n >>= 7n;
    }
    this.buf[this.pos++] = type;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

function textTooLong(size: string): BananaError {
  return new BananaError('BANANA_CANNOT_ENCODE', `text of ${size} is too long to send (limit ${SIZE_LIMIT} bytes)`);
}

/** How many base-128 digits the prefix of n takes (0 takes one). */
function digits(n: number): number {
  let count = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    count++;
  }
  return count;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}

/** Encodes one s-expression on its own (dialect "none" unless vocab is asked for). */
export function encodeSexp(v: Sexp, vocab = false): Buffer {
  const w = new BananaWriter(64);
  w.vocab = vocab;
  w.sexp(v);
  return w.take();
}
