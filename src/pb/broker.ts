import type { Duplex } from 'node:stream';
import { BananaError, JellyError, networkError, PbError, type BbgateError } from '../errors.js';
import { whenEnded } from '../stream-end.js';
import { DIALECTS } from './banana/constants.js';
import { BananaParser } from './banana/parser.js';
import type { ParserLimits } from './banana/scanner.js';
import { BananaWriter, type Sexp } from './banana/writer.js';
import { unjelly } from './jelly/decode.js';
import {
  commandOf, decodeCall, decodeDecref, decodeDialectChoice, decodeDialectOffer, decodeReply, decodeVersion, PB_VERSION,
  writeAnswer, writeCall, writeDecref, writeDialectChoice, writeDialectOffer, writeError, writeVersion,
} from './messages.js';
import { PbFailure, PY } from './values/failure.js';
import { forEachReference, Referenceable, RemoteReference, type KwArgs, type RemoteCall } from './values/references.js';
import { messageText, toText, type PbValue } from './values/values.js';

/** How long close() waits for the peer to acknowledge the end before cutting the connection. */
const CLOSE_WAIT_MS = 2000;
/**
 * Twisted refuses to hand out more live references than this on one connection,
 * and bbgate holds no more than this of the peer's: a Twisted peer cannot reach
 * it, a peer that does is not Twisted and loses the connection.
 */
export const MAX_BROKER_REFS = 1024;

export interface BrokerLogger {
  warn(fields: object, message: string): void;
}

export interface BrokerOptions {
  /** The client picks a dialect from the server's offer; the server makes the offer. */
  role: 'client' | 'server';
  /** The object the peer reaches as "root" (servers: the login portal). */
  root?: Referenceable;
  limits?: ParserLimits;
  logger?: BrokerLogger;
}

interface Pending {
  method: string;
  resolve(value: PbValue): void;
  reject(err: Error): void;
}

interface Local {
  object: Referenceable;
  refcount: number;
}

/**
 * Twisted's Perspective Broker over any duplex byte stream: the Banana dialect
 * handshake, then `message`/`answer`/`error`/`decref` both ways. Incoming calls
 * are served while our own calls are pending (a Buildbot master calls the worker
 * before it answers the worker's login).
 */
export class Broker {
  /** Settles once the dialect is agreed (rejects if the connection ends first). */
  readonly ready: Promise<void>;
  dialect: string | undefined;
  /** The dialects the server offered (client side), as the probe reports them. */
  offered: string[] = [];
  /** Settles with the PB version the peer announced (rejects if the connection ends first). */
  readonly peerVersion: Promise<number>;
  connected = true;
  /** Why the connection ended, once it has. */
  closeReason: Error | undefined;

  private readonly writer = new BananaWriter();
  private readonly parser: BananaParser;
  private readonly role: 'client' | 'server';
  private readonly root: Referenceable | undefined;
  private readonly logger: BrokerLogger | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly locals = new Map<number, Local>();
  private readonly localIds = new Map<Referenceable, number>();
  private readonly releaseHooks = new Map<Referenceable, () => void>();
  private readonly remotes = new Map<number, RemoteReference>();
  private readonly disconnectListeners = new Set<(reason: Error) => void>();
  /** While an incoming call's arguments are unjellied: each reference they bring, with its receipts. */
  private receiving: Map<RemoteReference, number> | undefined;
  private nextRequestId = 1;
  private nextLocalId = 1;
  private settleReady!: { resolve(): void; reject(err: Error): void };
  private settleVersion!: { resolve(version: number): void; reject(err: Error): void };
  /** Set by close(): from then on nothing is read or written, as after Twisted's loseConnection. */
  private closed: Promise<void> | undefined;

  constructor(
    private readonly stream: Duplex,
    options: BrokerOptions,
  ) {
    this.role = options.role;
    this.root = options.root;
    this.logger = options.logger;
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    this.ready.catch(() => undefined);
    this.peerVersion = new Promise((resolve, reject) => {
      this.settleVersion = { resolve, reject };
    });
    this.peerVersion.catch(() => undefined);
    this.parser = new BananaParser((expr) => this.expressionReceived(expr), options.limits);
    stream.on('data', (chunk: Buffer) => this.dataReceived(chunk));
    // Stays for the stream's life: an error after the end is no one else's to hear.
    // Typed here, so a reset reads NET_RESET in the worker's log and the probe alike.
    const failed = (err: Error) => networkError(err, 'the connection failed', 'PB_CONNECTION_LOST');
    stream.on('error', (err: Error) => {
      this.closeReason ??= failed(err);
    });
    // The first of end, close or error ends the connection, even one that came before
    // this broker existed (a TLS server that hung up right after the handshake).
    whenEnded(stream, (err) => {
      this.closeReason ??= err ? failed(err) : new PbError('PB_CONNECTION_LOST', this.dialect === undefined
        ? 'the peer closed the connection without a PB greeting'
        : 'the peer closed the connection');
      stream.destroy();
      this.connectionLost();
    });
    if (this.role === 'server') this.send((w) => writeDialectOffer(w));
  }

  /** The peer's root object (clients use it to log in). Never reference-counted. */
  rootObject(): RemoteReference {
    return new RemoteReference(this, 'root');
  }

  /** Live local objects the peer holds references to (the root excluded). */
  get localObjectCount(): number {
    return this.locals.size;
  }

  /** Live proxies for the peer's objects that we have not released. */
  get remoteReferenceCount(): number {
    return this.remotes.size;
  }

  callRemote(target: number | 'root', method: string, args: readonly unknown[], kwargs: KwArgs): Promise<PbValue> {
    // Nothing may precede the dialect handshake on the wire.
    if (this.dialect === undefined && this.connected && !this.closed) {
      return this.ready.then(() => this.callRemote(target, method, args, kwargs));
    }
    if (!this.connected || this.closed) {
      return Promise.reject(new PbError('PB_DEAD_REFERENCE', `cannot call ${method}(): the connection is closed${this.closeReason ? ` (${this.closeReason.message})` : ''}`));
    }
    const requestId = this.nextRequestId++;
    try {
      this.send((w) => writeCall(w, requestId, target, method, args, kwargs, this));
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { method, resolve, reject });
    });
  }

  releaseRemote(ref: RemoteReference): void {
    this.returnReceipts(ref, ref.receipts);
  }

  /** Sends `count` of the decrefs `ref` is owed; the proxy dies with its last receipt. */
  private returnReceipts(ref: RemoteReference, count: number): void {
    if (typeof ref.luid !== 'number' || ref.receipts === 0) return;
    const luid = ref.luid;
    const owed = Math.min(count, ref.receipts);
    ref.receipts -= owed;
    if (ref.receipts === 0) {
      ref.released = true;
      if (this.remotes.get(luid) === ref) this.remotes.delete(luid);
    }
    if (!this.connected || this.closed) return;
    // One write for them all: a peer may send the same reference thousands of times in one call.
    this.send((w) => {
      for (let i = 0; i < owed; i++) writeDecref(w, luid);
    });
  }

  /** Gives back what an incoming call brought and its method did not keep (Python's GC, for a Twisted peer). */
  private returnUnkept(received: Map<RemoteReference, number>): void {
    this.guard(() => {
      for (const [ref, count] of received) this.returnReceipts(ref, count);
    });
  }

  onDisconnect(listener: (reason: Error) => void): () => void {
    this.disconnectListeners.add(listener);
    return () => this.disconnectListeners.delete(listener);
  }

  /** Runs `hook` when the peer has released every reference to `object` (Twisted's logout-on-decref). */
  onRelease(object: Referenceable, hook: () => void): void {
    this.releaseHooks.set(object, hook);
  }

  /** Ends the connection; with a reason, that reason is what pending calls and listeners see. */
  close(reason?: BbgateError | Error): Promise<void> {
    if (reason) this.closeReason ??= reason;
    this.closed ??= new Promise((resolve) => {
      if (!this.connected || this.stream.destroyed) {
        this.stream.destroy();
        return resolve();
      }
      // A peer that never acknowledges the close must not keep us waiting; the timer is
      // not unref'd, since it may be the only thing left that ends this wait.
      const timer = setTimeout(() => {
        this.stream.destroy();
        resolve();
      }, CLOSE_WAIT_MS);
      whenEnded(this.stream, () => {
        clearTimeout(timer);
        this.stream.destroy();
        resolve();
      });
      this.stream.end();
    });
    return this.closed;
  }

  // ---- JellyContext / UnjellyContext -------------------------------------

  referenceFor(object: Referenceable): number {
    const known = this.localIds.get(object);
    if (known !== undefined) {
      this.locals.get(known)!.refcount++;
      return known;
    }
    if (this.locals.size > MAX_BROKER_REFS) {
      throw new PbError('PB_TOO_MANY_REFERENCES', `Maximum PB reference count exceeded (${MAX_BROKER_REFS} live objects)`);
    }
    const luid = this.nextLocalId++;
    this.locals.set(luid, { object, refcount: 1 });
    this.localIds.set(object, luid);
    return luid;
  }

  localIdFor(ref: RemoteReference): number | undefined {
    return ref.broker === this && typeof ref.luid === 'number' && !ref.released ? ref.luid : undefined;
  }

  remoteReference(luid: number): RemoteReference {
    let ref = this.remotes.get(luid);
    if (ref) ref.receipts++;
    else {
      if (this.remotes.size > MAX_BROKER_REFS) {
        throw new PbError('PB_TOO_MANY_REFERENCES', `the peer holds bbgate to more than ${MAX_BROKER_REFS} of its objects at once (Twisted never hands out more)`);
      }
      ref = new RemoteReference(this, luid);
      this.remotes.set(luid, ref);
    }
    if (this.receiving) this.receiving.set(ref, (this.receiving.get(ref) ?? 0) + 1);
    return ref;
  }

  localObject(luid: number): Referenceable | undefined {
    return this.locals.get(luid)?.object;
  }

  // ---- Incoming ------------------------------------------------------------

  private dataReceived(chunk: Buffer): void {
    if (!this.connected || this.closed) return;
    try {
      this.parser.feed(chunk);
    } catch (err) {
      this.fail(this.dialect === undefined && err instanceof BananaError
        ? new PbError('PB_NOT_PB', `the peer does not speak PB: ${err.message}`, { cause: err })
        : asError(err));
    }
  }

  private expressionReceived(expr: Sexp): void {
    if (!this.connected) return;
    if (this.dialect === undefined) {
      this.negotiate(expr);
      return;
    }
    const command = commandOf(expr);
    if (command === undefined || !Array.isArray(expr)) throw new PbError('PB_PROTOCOL', 'the peer sent an expression that is not a PB command');
    switch (command) {
      case 'message':
        return this.messageReceived(expr);
      case 'answer':
      case 'error':
        return this.replyReceived(command, expr);
      case 'decref':
        return this.decrefReceived(expr);
      case 'version': {
        const version = decodeVersion(expr)?.version;
        if (version !== PB_VERSION) throw new PbError('PB_VERSION', `the peer speaks PB version ${String(version)}; bbgate speaks ${PB_VERSION}`);
        this.settleVersion.resolve(PB_VERSION);
        return;
      }
      case 'cachemessage': {
        // bbgate never sends Cacheables, so there is nothing a cache message could address.
        const call = decodeCall(expr);
        if (call?.answerRequired) this.sendError(call.requestId, new PbFailure(PY.PbError, 'bbgate does not support cached objects (cachemessage)'));
        return;
      }
      case 'didNotUnderstand':
        this.logger?.warn({ command: toText(expr[1]) }, 'the peer did not understand a command bbgate sent');
        return;
      case 'decache':
      case 'uncache':
        throw new PbError('PB_PROTOCOL', `the peer sent ${command} for an object bbgate never cached`);
      default:
        throw new PbError('PB_PROTOCOL', `unknown PB command "${command}"`);
    }
  }

  private negotiate(expr: Sexp): void {
    if (this.role === 'client') {
      const offered = decodeDialectOffer(expr);
      if (offered === undefined) throw new PbError('PB_NOT_PB', 'the server did not open with a PB dialect offer');
      this.offered = offered;
      const choice = offered.find((d) => DIALECTS.includes(d));
      if (choice === undefined) {
        throw new PbError('PB_DIALECT', `the server offers dialects [${offered.join(', ')}]; bbgate speaks [${DIALECTS.join(', ')}]`);
      }
      this.send((w) => writeDialectChoice(w, choice));
      this.selectDialect(choice);
    } else {
      const choice = decodeDialectChoice(expr);
      if (choice === undefined) {
        throw new PbError('PB_DIALECT', 'the client selected a dialect the server did not offer');
      }
      this.selectDialect(choice);
    }
  }

  private selectDialect(dialect: string): void {
    this.dialect = dialect;
    this.writer.vocab = this.parser.vocab = dialect === 'pb';
    this.send((w) => writeVersion(w));
    this.settleReady.resolve();
  }

  private messageReceived(expr: Sexp[]): void {
    const call = decodeCall(expr);
    if (!call) throw new PbError('PB_PROTOCOL', 'malformed message command');
    const { requestId, target: objectId, method, answerRequired: reply } = call;
    const oneWayFailed = (err: unknown) => this.logger?.warn({ method, err: asError(err).message }, 'a one-way call failed');
    // Every reference the arguments bring is counted here; what the method does not keep goes back when it is done.
    const received = new Map<RemoteReference, number>();
    let unjellied = false;
    let result: unknown;
    try {
      const target = objectId === 'root' ? this.root : typeof objectId === 'number' ? this.locals.get(objectId)?.object : undefined;
      if (!target) throw new PbFailure(PY.PbError, 'Invalid Object ID');
      const incoming = this.unjellyCall(method, call.args, call.kwargs, received);
      unjellied = true;
      const handler = target.remoteMethod(method);
      if (!handler) throw new PbFailure(PY.NoSuchMethod, `No such method: remote_${method}`);
      result = handler.call(target, incoming);
    } catch (err) {
      // More of the peer's objects than Twisted would ever hand out: not a Twisted peer; drop it.
      if (!unjellied && err instanceof PbError && err.code === 'PB_TOO_MANY_REFERENCES') throw err;
      if (reply) this.sendError(requestId, PbFailure.fromError(err));
      else oneWayFailed(err);
      this.returnUnkept(received);
      return;
    }
    if (!isPromiseLike(result)) {
      if (reply) this.sendAnswer(requestId, result);
      this.returnUnkept(received);
      return;
    }
    // Nobody may wait for the outcome, but a rejection left unhandled would end the process.
    result.then(
      (value) => {
        if (reply) this.guard(() => this.sendAnswer(requestId, value));
        this.returnUnkept(received);
      },
      (err: unknown) => {
        if (reply) this.guard(() => this.sendError(requestId, PbFailure.fromError(err)));
        else oneWayFailed(err);
        this.returnUnkept(received);
      },
    );
  }

  private unjellyCall(method: string, netArgs: Sexp, netKw: Sexp, received: Map<RemoteReference, number>): RemoteCall {
    let args: PbValue;
    let kw: PbValue;
    this.receiving = received;
    try {
      args = unjelly(netArgs, this);
      kw = unjelly(netKw, this);
    } catch (err) {
      if (err instanceof JellyError) throw new PbFailure(PY.InsecureJelly, err.message);
      throw err;
    } finally {
      this.receiving = undefined;
    }
    if (!Array.isArray(args) || !(kw instanceof Map)) throw new PbFailure(PY.PbError, 'arguments must be a tuple and a dict');
    const kwargs = new Map<string, PbValue>();
    for (const [key, value] of kw) {
      const name = toText(key);
      if (name === undefined) throw new PbFailure(PY.PbError, 'keyword argument names must be strings');
      kwargs.set(name, value);
    }
    return new IncomingCall(method, args, kwargs, received);
  }

  private replyReceived(command: 'answer' | 'error', expr: Sexp[]): void {
    const reply = decodeReply(expr);
    const pending = reply ? this.pending.get(reply.requestId) : undefined;
    if (!reply || !pending) {
      throw new PbError('PB_PROTOCOL', `the peer sent an ${command} for request ${String(expr[1])}, which is not pending`);
    }
    this.pending.delete(reply.requestId);
    let value: PbValue;
    try {
      value = unjelly(reply.body, this);
    } catch (err) {
      // Twisted drops the connection here too: the reply cannot be understood.
      pending.reject(asError(err));
      throw err;
    }
    if (command === 'answer') pending.resolve(value);
    else pending.reject(value instanceof PbFailure ? value : new PbFailure(PY.RuntimeError, messageText(value)));
  }

  private decrefReceived(expr: Sexp[]): void {
    const luid = decodeDecref(expr);
    const local = luid === undefined ? undefined : this.locals.get(luid);
    if (luid === undefined || !local) throw new PbError('PB_PROTOCOL', `the peer released object ${String(expr[1])}, which it does not hold`);
    if (--local.refcount > 0) return;
    this.locals.delete(luid);
    this.localIds.delete(local.object);
    const hook = this.releaseHooks.get(local.object);
    if (hook) {
      this.releaseHooks.delete(local.object);
      hook();
    }
  }

  // ---- Outgoing ------------------------------------------------------------

  private sendAnswer(requestId: number, value: unknown): void {
    if (!this.connected || this.closed) return;
    try {
      this.send((w) => writeAnswer(w, requestId, value, this));
    } catch (err) {
      this.sendError(requestId, PbFailure.fromError(err));
    }
  }

  private sendError(requestId: number, failure: PbFailure): void {
    if (!this.connected || this.closed) return;
    this.send((w) => writeError(w, requestId, failure, this));
  }

  /** Writes one whole expression; a failure while encoding sends nothing. */
  private send(build: (w: BananaWriter) => void): void {
    try {
      build(this.writer);
    } catch (err) {
      this.writer.reset();
      throw err;
    }
    this.stream.write(this.writer.take());
  }

  // ---- Teardown --------------------------------------------------------------

  /** Runs work outside the data path (a late reply): what it throws ends the connection instead of the process. */
  private guard(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.fail(asError(err));
    }
  }

  private fail(err: Error): void {
    this.closeReason ??= err;
    this.logger?.warn({ err: err.message, code: (err as BbgateError).code }, 'closing the PB connection');
    this.stream.destroy();
  }

  private connectionLost(): void {
    if (!this.connected) return;
    this.connected = false;
    const reason = this.closeReason ?? new PbError('PB_CONNECTION_LOST', 'the connection was closed');
    this.closeReason = reason;
    this.settleReady.reject(reason);
    this.settleVersion.reject(reason);
    const lost = (method: string) =>
      new PbError('PB_CONNECTION_LOST', `connection lost while waiting for ${method}(): ${reason.message}`, { cause: reason });
    for (const p of this.pending.values()) p.reject(lost(p.method));
    this.pending.clear();
    for (const ref of this.remotes.values()) ref.released = true;
    this.remotes.clear();
    this.locals.clear();
    this.localIds.clear();
    for (const listener of [...this.disconnectListeners]) {
      try {
        listener(reason);
      } catch (err) {
        this.logger?.warn({ err: asError(err).message }, 'a disconnect listener failed');
      }
    }
    this.disconnectListeners.clear();
    // Objects handed out die with the connection; a pending logout still runs.
    for (const hook of this.releaseHooks.values()) hook();
    this.releaseHooks.clear();
  }
}

class IncomingCall implements RemoteCall {
  constructor(
    readonly method: string,
    readonly args: PbValue[],
    readonly kwargs: Map<string, PbValue>,
    /** The references this call brought and nobody has kept yet (the broker's list). */
    private readonly unkept: Map<RemoteReference, number>,
  ) {}

  arg(index: number, name: string): PbValue | undefined {
    return index < this.args.length ? this.args[index] : this.kwargs.get(name);
  }

  keep(value: unknown): void {
    forEachReference(value, (ref) => this.unkept.delete(ref));
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
