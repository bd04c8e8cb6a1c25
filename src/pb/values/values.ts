/**
 * The JavaScript shapes of Python values as PB carries them.
 *
 * Python distinguishes types that JavaScript folds together, and a round trip
 * must give back the same bytes, so the ambiguous ones get a wrapper:
 *  - `int` is `number` (or `bigint` beyond 2^53); `float` is `number` when it
 *    has a fraction or is NaN/±Infinity/-0, and `PyFloat` when it is integral;
 *  - `bytes` is `Uint8Array` (a `Buffer` when decoded); `str` is `string`;
 *  - `list` is `Array`, `tuple` is `Tuple` (an Array subclass);
 *  - `dict` is `Map` (keys of any type); `set` is `Set`, `frozenset` is `FrozenSet`;
 *  - `None` is `null`, `bool` is `boolean`.
 */

export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
}

export class Tuple<T = unknown> extends Array<T> {}

export function tuple<T extends unknown[]>(...items: T): Tuple<T[number]> {
  return Tuple.from(items) as Tuple<T[number]>;
}

export class FrozenSet<T = unknown> extends Set<T> {}

/**
 * Text to send as one Python `str`, kept as the pieces it was made of: jelly writes each piece's
 * UTF-8 straight into the message, so the pieces are never joined into one long JavaScript string
 * (joining and measuring one costs more than the rest of the send). Send-only: a `str` received
 * is a `string`. `length` counts UTF-16 code units, as String#length does.
 */
export class PyText {
  readonly pieces: string[] = [];
  length = 0;

  constructor(...pieces: string[]) {
    for (const piece of pieces) this.append(piece);
  }

  append(piece: string): void {
    if (piece.length === 0) return;
    this.length += piece.length;
    const last = this.pieces.length - 1;
    // A surrogate pair split between two pieces is joined, as each piece is encoded on its own.
    if (last >= 0 && isHighSurrogate(this.pieces[last]!.charCodeAt(this.pieces[last]!.length - 1))) this.pieces[last] += piece;
    else this.pieces.push(piece);
  }

  toString(): string {
    return this.pieces.join('');
  }
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** What Twisted sends for an object its security options would not serialize. */
export class Unpersistable {
  constructor(readonly reason: string) {}
}

/** True for numbers that Python would hold as `int` (so -0 is a float). */
export function isIntegral(n: number): boolean {
  return Number.isInteger(n) && !Object.is(n, -0);
}

/** A float that stays a float on the wire even when it has no fraction. */
export function float(n: number): number | PyFloat {
  return isIntegral(n) ? new PyFloat(n) : n;
}

/** Any Python number as a JavaScript number (bigints lose precision beyond 2^53). */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** Bytes as text, the way Buildbot's `decode()` helper treats byte strings it receives. */
export function toText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  return undefined;
}

/**
 * A received value as the text of a message: text as is, other scalars through
 * String(), containers by type only. String() of a list holding one sublist many
 * times over, which jelly references let a peer send in a few hundred bytes,
 * takes time and memory exponential in its size.
 */
export function messageText(v: unknown): string {
  const text = toText(v);
  if (text !== undefined) return text;
  if (typeof v !== 'object' || v === null) return String(v);
  return `<${v.constructor?.name ?? 'object'}>`;
}

/** Every value a decoded PB message can hold. */
export type PbValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | Buffer
  | Unpersistable
  | PbValue[]
  | Map<PbValue, PbValue>
  | Set<PbValue>
  | import('./references.js').RemoteReference
  | import('./references.js').Referenceable
  | import('./failure.js').PbFailure;
