// The tagged-JSON value form shared with test/python/tagged.py (see test/python/README.md),
// so values can cross between bbgate and real Twisted with their exact Python types.
import { FrozenSet, isIntegral, PyFloat, Tuple } from '../../src/pb/values/values.js';

export type Tagged = [string, ...unknown[]];

function floatHex(n: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b.toString('hex');
}

function isContainer(v: unknown): v is unknown[] | Map<unknown, unknown> | Set<unknown> {
  return Array.isArray(v) || v instanceof Map || v instanceof Set;
}

function children(v: unknown[] | Map<unknown, unknown> | Set<unknown>): unknown[] {
  if (v instanceof Map) return [...v].flat();
  return [...v];
}

/** JavaScript value → T, marking containers met more than once as shared/same. */
export function toTagged(value: unknown): Tagged {
  const counts = new Map<object, number>();
  const count = (v: unknown): void => {
    if (!isContainer(v)) return;
    const n = (counts.get(v) ?? 0) + 1;
    counts.set(v, n);
    if (n === 1) for (const c of children(v)) count(c);
  };
  count(value);
  const ids = new Map<object, number>();
  const walk = (v: unknown): Tagged => {
    if (isContainer(v) && counts.get(v)! > 1) {
      const id = ids.get(v);
      if (id !== undefined) return ['same', id];
      const fresh = ids.size + 1;
      ids.set(v, fresh);
      return ['shared', fresh, body(v)];
    }
    return body(v);
  };
  const body = (v: unknown): Tagged => {
    if (v === null || v === undefined) return ['none'];
    if (typeof v === 'boolean') return ['bool', v];
    if (typeof v === 'bigint') return ['int', v.toString()];
    if (typeof v === 'number') return isIntegral(v) ? ['int', BigInt(v).toString()] : ['float', floatHex(v)];
    if (v instanceof PyFloat) return ['float', floatHex(v.value)];
    if (typeof v === 'string') return ['str', v];
    if (v instanceof Uint8Array) return ['bytes', Buffer.from(v).toString('hex')];
    if (v instanceof Tuple) return ['tuple', [...v].map(walk)];
    if (Array.isArray(v)) return ['list', v.map(walk)];
    if (v instanceof FrozenSet) return ['frozenset', [...v].map(walk)];
    if (v instanceof Set) return ['set', [...v].map(walk)];
    if (v instanceof Map) return ['dict', [...v].map(([k, x]) => [walk(k), walk(x)])];
    if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return ['dict', Object.entries(v).map(([k, x]) => [['str', k], walk(x)])];
    }
    return ['repr', String((v as object).constructor?.name), String(v)];
  };
  return walk(value);
}

/** T → JavaScript value, rebuilding shared and cyclic structure. */
export function fromTagged(t: Tagged): unknown {
  const shared = new Map<number, unknown>();
  const build = (x: Tagged): unknown => {
    const [tag, a, b] = x;
    switch (tag) {
      case 'none':
        return null;
      case 'bool':
        return a as boolean;
      case 'int': {
        const n = BigInt(a as string);
        return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
      }
      case 'float': {
        const f = Buffer.from(a as string, 'hex').readDoubleBE(0);
        return isIntegral(f) ? new PyFloat(f) : f;
      }
      case 'str':
        return a as string;
      case 'bytes':
        return Buffer.from(a as string, 'hex');
      case 'same':
        if (!shared.has(a as number)) throw new Error(`same ${a} before shared`);
        return shared.get(a as number);
      case 'shared': {
        const inner = b as Tagged;
        const container = empty(inner[0]);
        shared.set(a as number, container);
        fill(container, inner);
        return container;
      }
      default: {
        const container = empty(tag);
        fill(container, x);
        return container;
      }
    }
  };
  const empty = (tag: string): unknown[] | Map<unknown, unknown> | Set<unknown> => {
    switch (tag) {
      case 'list':
        return [];
      case 'tuple':
        return new Tuple();
      case 'set':
        return new Set();
      case 'frozenset':
        return new FrozenSet();
      case 'dict':
        return new Map();
      default:
        throw new Error(`cannot build tagged ${tag}`);
    }
  };
  const fill = (c: unknown[] | Map<unknown, unknown> | Set<unknown>, x: Tagged): void => {
    const items = x[1] as Tagged[] | [Tagged, Tagged][];
    if (c instanceof Map) for (const [k, v] of items as [Tagged, Tagged][]) c.set(build(k), build(v));
    else if (c instanceof Set) for (const v of items as Tagged[]) c.add(build(v));
    else for (const v of items as Tagged[]) c.push(build(v));
  };
  return build(t);
}

/** Sets have no order: sort their members so two views of one set compare equal. */
export function sortSets(t: Tagged): Tagged {
  const [tag, a, b] = t;
  switch (tag) {
    case 'set':
    case 'frozenset':
      return [tag, (a as Tagged[]).map(sortSets).sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1))];
    case 'list':
    case 'tuple':
      return [tag, (a as Tagged[]).map(sortSets)];
    case 'dict':
      return [tag, (a as [Tagged, Tagged][]).map(([k, v]) => [sortSets(k), sortSets(v)])];
    case 'shared':
      return [tag, a, sortSets(b as Tagged)];
    default:
      return t;
  }
}
