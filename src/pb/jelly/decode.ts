import { isAscii, isUtf8, transcode } from 'node:buffer';
import { JellyError } from '../../errors.js';
import type { Sexp } from '../banana/writer.js';
import { COPYABLE_FAILURE, PbFailure } from '../values/failure.js';
import type { Referenceable, RemoteReference } from '../values/references.js';
import { FrozenSet, Tuple, Unpersistable, type PbValue } from '../values/values.js';

/** How references are received: only a broker can resolve luids. */
export interface UnjellyContext {
  /** A proxy for the peer's object `luid` (`[remote, luid]`). */
  remoteReference(luid: number): RemoteReference;
  /** One of our own objects coming back (`[local, luid]`). */
  localObject(luid: number): Referenceable | undefined;
}

/** Atoms Twisted's globalSecurity admits that bbgate does not model (no Buildbot peer sends them). */
const UNSUPPORTED = new Set(['datetime', 'date', 'time', 'timedelta', 'decimal', 'bool', 'string', 'str', 'int', 'float', 'NoneType', 'long_int', 'long', 'dict']);

// Python's str(b, "UTF-8") keeps a leading U+FEFF, so must we.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/**
 * From this many bytes on, non-ASCII text decodes twice as fast through ICU to
 * UTF-16 as through V8's UTF-8 decoder (build logs are such text: GCC quotes
 * with ‘’); below it, ICU's setup costs more than it saves.
 */
const TRANSCODE_FROM = 1024;

/**
 * Rebuilds values from a jelly s-expression, admitting exactly the types PB's
 * default security admits (and that bbgate models); anything else is a
 * `JellyError`: JELLY_INSECURE for what Twisted would refuse too,
 * JELLY_UNSUPPORTED for what Twisted accepts but no Buildbot peer sends, and
 * JELLY_MALFORMED for broken structure.
 */
export function unjelly(sexp: Sexp, ctx?: UnjellyContext): PbValue {
  return new Unjellier(ctx).read(sexp);
}

class Unjellier {
  /** Ids given by `reference`; a container is registered before its contents, so cycles resolve. */
  private readonly refs = new Map<number, PbValue>();

  constructor(private readonly ctx: UnjellyContext | undefined) {}

  read(sexp: Sexp): PbValue {
    if (!Array.isArray(sexp)) return sexp as PbValue;
    const atom = atomOf(sexp);
    switch (atom) {
      case 'None':
        return null;
      case 'unicode':
        return text(sexp);
      case 'boolean': {
        const word = sexp[1];
        if (word instanceof Uint8Array && word.length === 4 && Buffer.from(word).toString('latin1') === 'true') return true;
        if (word instanceof Uint8Array && word.length === 5 && Buffer.from(word).toString('latin1') === 'false') return false;
        throw malformed('a boolean must be "true" or "false"');
      }
      case 'list':
      case 'tuple':
      case 'dictionary':
      case 'set':
      case 'frozenset':
        return this.fill(sexp, emptyContainer(atom));
      case 'reference':
        return this.reference(sexp);
      case 'dereference': {
        const id = sexp[1];
        const target = typeof id === 'number' ? this.refs.get(id) : undefined;
        if (target === undefined) throw malformed(`dereference to unknown id ${String(id)}`);
        return target;
      }
      case 'remote':
        return this.context('remote').remoteReference(luidOf(sexp));
      case 'local': {
        const obj = this.context('local').localObject(luidOf(sexp));
        if (!obj) throw malformed('the peer sent back a reference to an object we never gave it');
        return obj;
      }
      case COPYABLE_FAILURE: {
        if (sexp.length !== 2) throw malformed('a CopyableFailure has exactly one state');
        const failure = PbFailure.fromState(this.read(sexp[1]!));
        if (!failure) throw malformed('a CopyableFailure without a type');
        return failure;
      }
      case 'unpersistable':
        return new Unpersistable(sexp[1] instanceof Uint8Array ? Buffer.from(sexp[1]).toString('utf8') : String(sexp[1]));
      case 'persistent':
        // PB passes no persistent loader, so Twisted answers the same way.
        return new Unpersistable('Persistent callback not found');
      default:
        if (UNSUPPORTED.has(atom)) throw new JellyError('JELLY_UNSUPPORTED', `bbgate does not accept jelly type "${atom}"`);
        throw new JellyError('JELLY_INSECURE', `jelly type "${atom}" is not allowed (insecure or unknown)`);
    }
  }

  private reference(sexp: Sexp[]): PbValue {
    const id = sexp[1];
    const body = sexp[2];
    if (sexp.length !== 3 || typeof id !== 'number') throw malformed('a reference needs an integer id and a body');
    if (this.refs.has(id)) throw malformed(`reference id ${id} defined twice`);
    // Containers are registered empty first, so a dereference inside them (a cycle) finds them.
    const atom = Array.isArray(body) ? atomOf(body) : undefined;
    if (Array.isArray(body) && (atom === 'list' || atom === 'tuple' || atom === 'dictionary' || atom === 'set' || atom === 'frozenset')) {
      const container = emptyContainer(atom);
      this.refs.set(id, container);
      return this.fill(body, container);
    }
    const value = this.read(body as Sexp);
    this.refs.set(id, value);
    return value;
  }

  private fill(sexp: Sexp[], container: PbValue[] | Map<PbValue, PbValue> | Set<PbValue>): PbValue {
    if (Array.isArray(container)) {
      for (let i = 1; i < sexp.length; i++) container.push(this.read(sexp[i]!));
    } else if (container instanceof Map) {
      for (let i = 1; i < sexp.length; i++) {
        const pair = sexp[i];
        if (!Array.isArray(pair) || pair.length !== 2) throw malformed('a dictionary entry must be a [key, value] pair');
        container.set(this.read(pair[0]!), this.read(pair[1]!));
      }
    } else {
      for (let i = 1; i < sexp.length; i++) container.add(this.read(sexp[i]!));
    }
    return container;
  }

  private context(atom: string): UnjellyContext {
    if (!this.ctx) throw new JellyError('JELLY_INSECURE', `"${atom}" references can only be received through a broker`);
    return this.ctx;
  }
}

function emptyContainer(atom: 'list' | 'tuple' | 'dictionary' | 'set' | 'frozenset'): PbValue[] | Map<PbValue, PbValue> | Set<PbValue> {
  switch (atom) {
    case 'list':
      return [];
    case 'tuple':
      return new Tuple<PbValue>();
    case 'dictionary':
      return new Map();
    case 'set':
      return new Set();
    case 'frozenset':
      return new FrozenSet<PbValue>();
  }
}

function atomOf(sexp: Sexp[]): string {
  const head = sexp[0];
  if (!(head instanceof Uint8Array)) throw malformed(sexp.length === 0 ? 'an empty list is not a jelly value' : 'a jelly list must start with a type name');
  return Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
}

function text(sexp: Sexp[]): string {
  const body = sexp[1];
  if (sexp.length !== 2 || !(body instanceof Uint8Array)) throw malformed('unicode must carry one byte string');
  if (body.length < TRANSCODE_FROM || isAscii(body)) {
    try {
      return utf8.decode(body);
    } catch {
      throw malformed('unicode that is not valid UTF-8');
    }
  }
  if (!isUtf8(body)) throw malformed('unicode that is not valid UTF-8');
  return transcode(body, 'utf8', 'utf16le').toString('utf16le');
}

function luidOf(sexp: Sexp[]): number {
  const luid = sexp[1];
  if (sexp.length !== 2 || typeof luid !== 'number' || !Number.isInteger(luid)) throw malformed('a reference needs one integer id');
  return luid;
}

function malformed(what: string): JellyError {
  return new JellyError('JELLY_MALFORMED', `malformed jelly: ${what}`);
}
