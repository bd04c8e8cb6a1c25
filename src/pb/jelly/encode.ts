import { JellyError } from '../../errors.js';
import { DEFAULT_MAX_DEPTH } from '../banana/scanner.js';
import { describe, type BananaWriter } from '../banana/writer.js';
import { COPYABLE_FAILURE, PbFailure } from '../values/failure.js';
import { Referenceable, RemoteReference } from '../values/references.js';
import { FrozenSet, PyFloat, PyText, Tuple, Unpersistable } from '../values/values.js';

/** How references are sent: only a broker can give them luids. */
export interface JellyContext {
  /** The luid under which `obj` is offered to the peer (counting one more reference). */
  referenceFor(obj: Referenceable): number;
  /** The peer's luid when `ref` is the peer's own object coming back; undefined if it is not ours to send. */
  localIdFor(ref: RemoteReference): number | undefined;
}

type Container = unknown[] | Map<unknown, unknown> | Set<unknown> | Record<string, unknown>;

/**
 * How many Banana lists may enclose a value being written: a PB message puts two around
 * its arguments (the message and the argument tuple), the value may open one more, and
 * Banana parsers (ours, and the peer's if it is bbgate) refuse more than 256 nested lists.
 * Anything deeper is refused here, as JELLY_CANNOT_ENCODE, rather than sent and refused there.
 */
const MAX_NESTING = DEFAULT_MAX_DEPTH - 2 - 1;

/**
 * Serializes a value as Twisted's jelly would, straight into Banana elements.
 * A container met twice gets a `reference` id at its first occurrence and a
 * `dereference` later; ids are numbered in the order Twisted numbers them (at
 * the second sighting, depth first), which a pre-pass over containers finds.
 */
export function jelly(w: BananaWriter, value: unknown, ctx?: JellyContext): void {
  const ids = isContainer(value) ? sharedContainers(value) : undefined;
  new Jellier(w, ids, ctx).write(value);
}

class Jellier {
  private readonly started = new Set<object>();
  /** Banana lists this jellier has opened around the value being written. */
  private depth = 0;

  constructor(
    private readonly w: BananaWriter,
    private readonly ids: Map<object, number> | undefined,
    private readonly ctx: JellyContext | undefined,
  ) {}

  write(v: unknown): void {
    const w = this.w;
    if (this.depth > MAX_NESTING) {
      throw new JellyError('JELLY_CANNOT_ENCODE', `cannot send a value nested more than ${MAX_NESTING} deep: a Banana peer refuses it`);
    }
    switch (typeof v) {
      case 'number':
        w.number(v);
        return;
      case 'string':
        w.list(2);
        w.word('unicode');
        w.utf8(v);
        return;
      case 'boolean':
        w.list(2);
        w.word('boolean');
        w.word(v ? 'true' : 'false');
        return;
      case 'bigint':
        w.int(v);
        return;
      case 'undefined':
        w.list(1);
        w.word('None');
        return;
      case 'object':
        break;
      default:
        throw new JellyError('JELLY_CANNOT_ENCODE', `cannot send a ${typeof v} over PB`);
    }
    if (v === null) {
      w.list(1);
      w.word('None');
    } else if (v instanceof Uint8Array) {
      w.bytes(v);
    } else if (v instanceof PyFloat) {
      w.float(v.value);
    } else if (v instanceof PyText) {
      w.list(2);
      w.word('unicode');
      w.text(v.pieces, v.length);
    } else if (isContainer(v)) {
      this.container(v);
    } else if (v instanceof Referenceable) {
      if (!this.ctx) throw new JellyError('JELLY_CANNOT_ENCODE', 'a Referenceable can only be sent through a broker');
      w.list(2);
      w.word('remote');
      w.int(this.ctx.referenceFor(v));
    } else if (v instanceof RemoteReference) {
      const luid = this.ctx?.localIdFor(v);
      if (luid === undefined) throw new JellyError('JELLY_CANNOT_ENCODE', 'a remote reference can only be sent back to the broker it came from');
      w.list(2);
      w.word('local');
      w.int(luid);
    } else if (v instanceof PbFailure) {
      w.list(2);
      w.word(COPYABLE_FAILURE);
      this.inside(1, () => this.write(v.toState()));
    } else if (v instanceof Unpersistable) {
      w.list(2);
      w.word('unpersistable');
      w.bytes(Buffer.from(v.reason, 'utf8'));
    } else {
      throw new JellyError('JELLY_CANNOT_ENCODE', `cannot send a ${describe(v)} over PB`);
    }
  }

  private container(v: Container): void {
    const w = this.w;
    const id = this.ids?.get(v);
    if (id !== undefined) {
      if (this.started.has(v)) {
        w.list(2);
        w.word('dereference');
        w.int(id);
        return;
      }
      this.started.add(v);
      w.list(3);
      w.word('reference');
      w.int(id);
      this.inside(1, () => this.items(v));
    } else {
      this.items(v);
    }
  }

  /** The container's own list and what it holds (a dict's pairs are lists of their own). */
  private items(v: Container): void {
    const w = this.w;
    if (Array.isArray(v)) {
      w.list(v.length + 1);
      w.word(v instanceof Tuple ? 'tuple' : 'list');
      this.inside(1, () => {
        for (let i = 0; i < v.length; i++) this.write(v[i]);
      });
    } else if (v instanceof Map) {
      w.list(v.size + 1);
      w.word('dictionary');
      this.inside(2, () => {
        for (const [key, value] of v) {
          w.list(2);
          this.write(key);
          this.write(value);
        }
      });
    } else if (v instanceof Set) {
      w.list(v.size + 1);
      w.word(v instanceof FrozenSet ? 'frozenset' : 'set');
      this.inside(1, () => {
        for (const item of v) this.write(item);
      });
    } else {
      const keys = Object.keys(v);
      w.list(keys.length + 1);
      w.word('dictionary');
      this.inside(2, () => {
        for (const key of keys) {
          w.list(2);
          this.write(key);
          this.write(v[key]);
        }
      });
    }
  }

  private inside(levels: number, write: () => void): void {
    this.depth += levels;
    try {
      write();
    } finally {
      this.depth -= levels;
    }
  }
}

/** Plain objects travel as dicts with text keys; class instances never do. */
function isContainer(v: unknown): v is Container {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v) || v instanceof Map || v instanceof Set) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Containers reachable more than once, numbered in Twisted's order; undefined when there are none. */
function sharedContainers(root: Container): Map<object, number> | undefined {
  const seen = new Set<object>();
  let ids: Map<object, number> | undefined;
  const visit = (v: unknown): void => {
    if (!isContainer(v)) return;
    if (seen.has(v)) {
      ids ??= new Map();
      if (!ids.has(v)) ids.set(v, ids.size + 1);
      return;
    }
    seen.add(v);
    if (Array.isArray(v)) for (const item of v) visit(item);
    else if (v instanceof Map) {
      for (const [key, value] of v) {
        visit(key);
        visit(value);
      }
    } else if (v instanceof Set) for (const item of v) visit(item);
    else for (const key of Object.keys(v)) visit(v[key]);
  };
  visit(root);
  return ids;
}
