import { PbError } from '../../errors.js';
import type { PbValue } from './values.js';

/** One incoming call, as a local remote method sees it. */
export interface RemoteCall {
  readonly method: string;
  readonly args: PbValue[];
  readonly kwargs: Map<string, PbValue>;
  /** A parameter passed either positionally at `index` or by keyword `name` (Python callers do both). */
  arg(index: number, name: string): PbValue | undefined;
  /**
   * Keeps the remote references inside `value` past the call: the method now
   * owes their release(). Every reference the call brought and the method did
   * not keep is released once the method has returned (or its promise settled),
   * as Python's garbage collector releases what a Twisted method did not store.
   */
  keep(value: unknown): void;
}

export type RemoteMethod = (call: RemoteCall) => unknown;

/**
 * A local object the peer may call. Subclasses expose `remote_<name>(call)`
 * methods, as Twisted's `pb.Referenceable` exposes `remote_<name>`. Sending one
 * gives the peer a reference; the broker counts how often and forgets the
 * object when the peer has sent a decref for every copy.
 */
export class Referenceable {
  remoteMethod(name: string): RemoteMethod | undefined {
    const method: unknown = (this as Record<string, unknown>)[`remote_${name}`];
    return typeof method === 'function' ? (method as RemoteMethod) : undefined;
  }
}

/**
 * Releases every remote reference inside a received value (containers are
 * searched, shared ones once): what Python's garbage collector does for the
 * references of a call nobody kept.
 */
export function releaseReferences(value: unknown): void {
  forEachReference(value, (ref) => ref.release());
}

/** Calls `visit` for every remote reference inside a received value, each once (containers may be shared or cyclic). */
export function forEachReference(value: unknown, visit: (ref: RemoteReference) => void, seen = new Set<object>()): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (value instanceof RemoteReference) visit(value);
  else if (Array.isArray(value) || value instanceof Set) for (const item of value) forEachReference(item, visit, seen);
  else if (value instanceof Map) for (const [k, v] of value) forEachReference(k, visit, seen), forEachReference(v, visit, seen);
}

/** What a RemoteReference needs from its broker. */
export interface ReferenceOwner {
  readonly connected: boolean;
  callRemote(target: number | 'root', method: string, args: readonly unknown[], kwargs: KwArgs): Promise<PbValue>;
  releaseRemote(ref: RemoteReference): void;
  onDisconnect(listener: (reason: Error) => void): () => void;
}

export type KwArgs = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>;

/**
 * A proxy for an object the peer owns. Every `[remote, luid]` received counts
 * once; `release()` sends one decref for each, after which the proxy is dead.
 * The root object is never counted and never released.
 */
export class RemoteReference {
  /** How many `remote` elements for this luid arrived, i.e. how many decrefs release() owes. */
  receipts = 1;
  released = false;

  constructor(
    readonly broker: ReferenceOwner,
    readonly luid: number | 'root',
  ) {}

  callRemote(method: string, args: readonly unknown[] = [], kwargs: KwArgs = {}): Promise<PbValue> {
    if (this.released) {
      return Promise.reject(new PbError('PB_DEAD_REFERENCE', `remote reference ${this.luid} was released; cannot call ${method}()`));
    }
    return this.broker.callRemote(this.luid, method, args, kwargs);
  }

  /** Gives the reference back to its owner (one decref per receipt). Safe to call twice. */
  release(): void {
    if (this.released || this.luid === 'root') return;
    this.released = true;
    this.broker.releaseRemote(this);
  }

  /** Calls `listener` if the connection this reference lives on is lost; returns an unsubscribe. */
  notifyOnDisconnect(listener: (reason: Error) => void): () => void {
    return this.broker.onDisconnect(listener);
  }
}
