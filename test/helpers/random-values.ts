// Seeded random Python-shaped values for cross-checks and fuzzing.
import { PB_VOCABULARY } from '../../src/pb/banana/constants.js';
import { FrozenSet, PyFloat, Tuple } from '../../src/pb/values/values.js';

export type Rng = () => number;

/** mulberry32: small, fast, and reproducible from a printed seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Rng, n: number) => Math.floor(r() * n);

const EDGE_INTS: (number | bigint)[] = [
  0, 1, -1, 127, 128, -128, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32,
  Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 64n, (1n << 448n) - 1n, -((1n << 448n) - 1n),
];
const EDGE_FLOATS: (number | PyFloat)[] = [NaN, Infinity, -Infinity, -0, new PyFloat(0), 1.5, -2.25, 5e-324, new PyFloat(1e300), 0.1, new PyFloat(-3)];
const TEXT = ['', 'a', 'ünïcødé', '日本語', '😀 emoji', 'line\nbreak', 'nul\u0000char', '\ufeffleading BOM', ...PB_VOCABULARY.slice(0, 8), 'unicode', 'boolean', 'true'];

export function randomInt(r: Rng): number | bigint {
  switch (int(r, 4)) {
    case 0:
      return pick(r, EDGE_INTS);
    case 1:
      return int(r, 1000) - 500;
    case 2:
      return Math.floor((r() - 0.5) * 2 ** 52);
    default: {
      let n = 0n;
      const digits = 1 + int(r, 60);
      for (let i = 0; i < digits; i++) n = (n << 7n) | BigInt(int(r, 128));
      const v = r() < 0.5 ? -n : n;
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
}

function randomFloat(r: Rng): number | PyFloat {
  if (r() < 0.5) return pick(r, EDGE_FLOATS);
  const b = Buffer.alloc(8);
  for (let i = 0; i < 8; i++) b[i] = int(r, 256);
  const f = b.readDoubleBE(0);
  if (Number.isNaN(f)) return NaN; // only the canonical NaN survives every runtime bit-exactly
  return Number.isInteger(f) && !Object.is(f, -0) ? new PyFloat(f) : f;
}

function randomBytes(r: Rng): Buffer {
  if (r() < 0.3) return Buffer.from(pick(r, PB_VOCABULARY), 'latin1');
  const b = Buffer.alloc(int(r, 40));
  for (let i = 0; i < b.length; i++) b[i] = int(r, 256);
  return b;
}

function randomText(r: Rng): string {
  if (r() < 0.5) return pick(r, TEXT);
  let s = '';
  // Now and then long enough (about 1 KiB) for unjelly's path for long text.
  const n = r() < 0.05 ? 400 + int(r, 800) : int(r, 20);
  for (let i = 0; i < n; i++) {
    const cp = r() < 0.7 ? 32 + int(r, 95) : r() < 0.8 ? 0xa0 + int(r, 0xd000) : 0x10000 + int(r, 0x10000);
    s += String.fromCodePoint(cp >= 0xd800 && cp < 0xe000 ? 0x41 : cp);
  }
  return s;
}

/** A hashable, Python-equality-unique key or set member: ints, text, bytes, None, tuples of those. */
function randomHashable(r: Rng, depth: number): unknown {
  switch (int(r, depth > 0 ? 5 : 4)) {
    case 0:
      return randomInt(r);
    case 1:
      return randomText(r);
    case 2:
      return randomBytes(r);
    case 3:
      return null;
    default:
      return Tuple.from([randomHashable(r, depth - 1), randomHashable(r, depth - 1)]);
  }
}

function hashKey(v: unknown): string {
  if (v === null) return 'N';
  if (typeof v === 'number' || typeof v === 'bigint') return `i${BigInt(v)}`;
  if (typeof v === 'string') return `s${v}`;
  if (v instanceof Uint8Array) return `b${Buffer.from(v).toString('hex')}`;
  return `t(${[...(v as unknown[])].map(hashKey).join(',')})`;
}

function uniqueHashables(r: Rng, n: number): unknown[] {
  const seen = new Map<string, unknown>();
  for (let i = 0; i < n; i++) {
    const v = randomHashable(r, 1);
    seen.set(hashKey(v), v);
  }
  return [...seen.values()];
}

export interface RandomValueOptions {
  maxDepth?: number;
  /** Allow shared containers and cycles (through lists and dicts). */
  sharing?: boolean;
}

/** A random value of the types Buildbot exchanges, nested, with shared and cyclic structure. */
export function randomValue(r: Rng, options: RandomValueOptions = {}): unknown {
  const pool: (unknown[] | Map<unknown, unknown>)[] = [];
  const sharing = options.sharing ?? true;
  const gen = (depth: number): unknown => {
    const roll = r();
    if (sharing && pool.length > 0 && roll < 0.06) return pick(r, pool);
    if (depth <= 0 || roll < 0.45) {
      switch (int(r, 8)) {
        case 0:
        case 1:
          return randomInt(r);
        case 2:
          return randomFloat(r);
        case 3:
          return randomBytes(r);
        case 4:
        case 5:
          return randomText(r);
        case 6:
          return null;
        default:
          return r() < 0.5;
      }
    }
    const n = int(r, 5);
    switch (int(r, 5)) {
      case 0: {
        const list: unknown[] = [];
        pool.push(list);
        for (let i = 0; i < n; i++) list.push(gen(depth - 1));
        if (sharing && r() < 0.1) list.push(list);
        return list;
      }
      case 1:
        return Tuple.from(Array.from({ length: n }, () => gen(depth - 1)));
      case 2: {
        const dict = new Map<unknown, unknown>();
        pool.push(dict);
        for (const key of uniqueHashables(r, n)) dict.set(key, gen(depth - 1));
        return dict;
      }
      case 3:
        return new Set(uniqueHashables(r, n));
      default:
        return new FrozenSet(uniqueHashables(r, n));
    }
  };
  return gen(options.maxDepth ?? 4);
}
