import type WebSocket from 'ws';
import { BbgateError } from '../errors.js';
import { messageText, toNumber, toText, type PbValue } from '../pb/index.js';
import { decodeMessage, encodeMessage, type WireMessage } from './codec.js';

export interface MsgpackLogger {
  warn(fields: object, message: string): void;
}

/**
 * Serves one request of the master (`op` other than "response"): resolves with
 * the result, or throws to answer with `is_exception` and the error's message,
 * as buildbot-worker answers with str(exception).
 */
export type MsgpackHandler = (op: string, message: WireMessage) => unknown;

/** An error the master answered a request with (`is_exception`): its text, code MSGPACK_REMOTE_ERROR. */
export class MsgpackRemoteError extends BbgateError {
  constructor(
    readonly op: string,
    readonly remoteMessage: string,
  ) {
    super('MSGPACK_REMOTE_ERROR', `the master failed ${op}: ${remoteMessage}`);
  }
}

/**
 * The msgpack_experimental_v7 protocol over an open WebSocket: every message
 * one binary frame holding one map with `op` and `seq_number`; each side
 * numbers its own requests from 0; an answer is `{op: "response", seq_number,
 * result}`, with `is_exception: true` when it failed. Requests of the master
 * are served concurrently, as buildbot-worker serves them; answers go out as
 * each finishes. A message that is not msgpack ends the session
 * (MSGPACK_PROTOCOL); a closed socket fails every pending request
 * (MSGPACK_CONNECTION_LOST).
 */
export class MsgpackSession {
  /** Settles with the reason once the connection has ended. */
  readonly closed: Promise<BbgateError>;
  private nextSeq = 0;
  private readonly pending = new Map<number, { op: string; resolve(value: PbValue): void; reject(err: Error): void }>();
  private readonly listeners = new Set<(reason: BbgateError) => void>();
  private reason: BbgateError | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly handle: MsgpackHandler,
    private readonly logger: MsgpackLogger,
  ) {
    this.closed = new Promise((resolve) => this.listeners.add(resolve));
    ws.on('message', (data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean) => this.received(toBytes(data), isBinary));
    ws.on('close', (code: number, why: Buffer) => {
      const said = why.length ? `: ${why.toString('utf8')}` : '';
      this.end(new BbgateError('MSGPACK_CONNECTION_LOST', `the master closed the WebSocket (code ${code}${said})`));
    });
    ws.on('error', (err: Error) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      this.end(new BbgateError(code.startsWith('WS_ERR_') ? 'MSGPACK_PROTOCOL' : 'MSGPACK_CONNECTION_LOST', `the WebSocket to the master failed: ${err.message}`, { cause: err }));
    });
    ws.resume();
  }

  get connected(): boolean {
    return this.reason === undefined;
  }

  /** Sends a request and resolves with the master's result; rejects with MsgpackRemoteError or the session's end. */
  request(op: string, fields: Record<string, unknown> = {}): Promise<PbValue> {
    if (this.reason) return Promise.reject(this.reason);
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { op, resolve, reject });
      this.send({ ...fields, op, seq_number: seq });
    });
  }

  /** A WebSocket ping, resolved by its pong: the keepalive (the master's autobahn answers pings). */
  ping(): Promise<void> {
    if (this.reason) return Promise.reject(this.reason);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.ws.off('pong', done);
        resolve();
      };
      this.ws.on('pong', done);
      this.closed.then(reject, reject);
      this.ws.ping();
    });
  }

  /** Calls `listener` once when the connection ends; returns an unsubscribe. */
  onDisconnect(listener: (reason: BbgateError) => void): () => void {
    if (this.reason) {
      listener(this.reason);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Ends the session: with a reason (a dead keepalive, a broken peer) the socket is torn
   * down at once; without one the worker is leaving, and says so with a closing handshake.
   */
  close(reason?: BbgateError): void {
    if (reason) return this.end(reason);
    if (this.reason) return;
    this.ws.close(1000, 'the worker is stopping');
    this.end(new BbgateError('MSGPACK_CONNECTION_LOST', 'the worker closed the connection'), false);
  }

  private send(message: Record<string, unknown>): void {
    if (this.reason) return;
    this.ws.send(encodeMessage(message), { binary: true });
  }

  private received(data: Buffer, isBinary: boolean): void {
    if (this.reason) return;
    if (!isBinary) {
      // As buildbot-worker: a text frame is not a message of this protocol.
      this.logger.warn({ bytes: data.length }, 'ignoring a text WebSocket message from the master');
      return;
    }
    let message: WireMessage;
    try {
      message = decodeMessage(data);
    } catch (err) {
      this.end(err as BbgateError);
      return;
    }
    const op = toText(message.get('op'));
    const seq = toNumber(message.get('seq_number'));
    if (op === undefined || seq === undefined) {
      this.end(new BbgateError('MSGPACK_PROTOCOL', 'the master sent a message without an op and a seq_number'));
      return;
    }
    if (op === 'response') this.answered(seq, message);
    else void this.serve(op, seq, message);
  }

  private answered(seq: number, message: WireMessage): void {
    const waiter = this.pending.get(seq);
    if (!waiter) {
      this.logger.warn({ seq_number: seq }, 'the master answered a request the worker never sent; ignored');
      return;
    }
    this.pending.delete(seq);
    const result = message.get('result') ?? null;
    if (message.has('is_exception')) waiter.reject(new MsgpackRemoteError(waiter.op, messageText(result)));
    else waiter.resolve(result);
  }

  private async serve(op: string, seq: number, message: WireMessage): Promise<void> {
    let reply: Record<string, unknown>;
    try {
      reply = { op: 'response', seq_number: seq, result: (await this.handle(op, message)) ?? null };
    } catch (err) {
      reply = { op: 'response', seq_number: seq, result: (err as Error).message, is_exception: true };
    }
    this.send(reply);
  }

  private end(reason: BbgateError, terminate = true): void {
    if (this.reason) return;
    this.reason = reason;
    if (terminate) this.ws.terminate();
    for (const waiter of this.pending.values()) waiter.reject(reason);
    this.pending.clear();
    for (const listener of [...this.listeners]) listener(reason);
    this.listeners.clear();
  }
}

function toBytes(data: Buffer | Buffer[] | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
