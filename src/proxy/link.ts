import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { proxyPort, type ProxyConfig } from '../address/proxy-string.js';
import { closedFailure, ProxyError, socketFailure, timeoutFailure, type Attempt, type Phase } from './failures.js';
import { parseConnectReply, type ConnectReply } from './reply.js';

export interface LinkOptions {
  /** The whole handshake's end (ms since the epoch), every connection and leg included. */
  deadline: number;
  /** The time allowed for it, for messages. */
  timeoutMs: number;
  signal?: AbortSignal;
  ca?: string | Buffer | Array<string | Buffer>;
}

/**
 * One connection to the proxy while the CONNECT handshake runs on it: requests go out, replies
 * come back whole, and a 407's body is skipped so the next leg can ride the same connection.
 * Every wait ends: by the data awaited, the peer closing or failing, the deadline, or the signal.
 */
export class ProxyLink {
  /** Replies read on this connection so far. */
  replies = 0;
  private received: Buffer = Buffer.alloc(0);
  private ready = false;
  private ended = false;
  private error: Error | undefined;
  private wake: () => void = () => undefined;

  private constructor(
    readonly socket: Socket,
    private readonly attempt: Attempt,
    private readonly options: LinkOptions,
  ) {
    socket.on('readable', this.onReadable);
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }

  /** Connects (and runs TLS with an https:// proxy); a `tcp:` string's timeout= bounds the connect. */
  static async open(proxy: ProxyConfig, attempt: Attempt, options: LinkOptions): Promise<ProxyLink> {
    const tls = proxy.url.protocol === 'https:';
    const endpoint = {
      host: proxy.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: proxyPort(proxy),
      ...(proxy.bindAddress ? { localAddress: proxy.bindAddress } : {}),
    };
    const socket: Socket = tls ? tlsConnect({ ...endpoint, ALPNProtocols: ['http/1.1'], ...(options.ca ? { ca: options.ca } : {}) }) : netConnect(endpoint);
    const link = new ProxyLink(socket, attempt, options);
    try {
      const connectMs = Math.min(options.deadline - Date.now(), (proxy.connectTimeoutS ?? Infinity) * 1000);
      socket.once('connect', link.onReady);
      await link.wait('connect', Date.now() + connectMs, connectMs, () => link.ready || undefined);
      if (tls) {
        link.ready = false;
        socket.once('secureConnect', link.onReady);
        await link.wait('tls', options.deadline, options.timeoutMs, () => link.ready || undefined);
      }
    } catch (err) {
      link.destroy();
      throw err;
    }
    return link;
  }

  /** Sends a request and reads the reply's header block; what follows it stays buffered. */
  async request(text: string): Promise<ConnectReply> {
    this.socket.write(text);
    const reply = await this.wait('reply', this.options.deadline, this.options.timeoutMs, () => {
      const state = parseConnectReply(this.received);
      if (state.kind === 'not-http') {
        throw new ProxyError('PROXY_NOT_HTTP', `the proxy ${this.attempt.proxy} does not speak HTTP (asked to tunnel to ${this.attempt.target}): ${state.detail}`);
      }
      return state.kind === 'reply' ? state : undefined;
    });
    this.replies++;
    this.received = reply.rest;
    return reply;
  }

  /**
   * After a 407: skips its body and says whether the connection can carry the next leg. It
   * cannot when the proxy said it will close, or the body's end can only be known by the close.
   */
  async finishReply(reply: ConnectReply): Promise<boolean> {
    const connection = `${reply.headers['connection'] ?? ''},${reply.headers['proxy-connection'] ?? ''}`.toLowerCase();
    const http10 = reply.statusLine.startsWith('HTTP/1.0');
    if (/\bclose\b/.test(connection) || (http10 && !/\bkeep-alive\b/.test(connection))) return false;
    const encoding = reply.headers['transfer-encoding'];
    if (encoding !== undefined && encoding.toLowerCase().trim() !== 'chunked') return false;
    const length = encoding !== undefined ? undefined : Number(reply.headers['content-length'] ?? '0');
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0 || length > MAX_407_BODY)) return false;
    // A 407's body is an error page: read to its end (bounded) so that the next leg starts clean.
    const end = await this.wait('reply', this.options.deadline, this.options.timeoutMs, () => {
      const found = length ?? chunkedBodyLength(this.received);
      if (found === 'malformed' || (found === undefined && this.received.length > MAX_407_BODY)) return -1;
      return found !== undefined && this.received.length >= found ? found : undefined;
    });
    if (end < 0) return false;
    this.received = this.received.subarray(end);
    return !this.ended;
  }

  /** Hands the socket over as a tunnel: listeners off, bytes already read put back first in line. */
  release(): Socket {
    this.detach();
    if (this.received.length) this.socket.unshift(this.received);
    this.socket.setNoDelay(true);
    return this.socket;
  }

  destroy(): void {
    this.detach();
    this.socket.destroy();
  }

  private detach(): void {
    this.socket.off('readable', this.onReadable).off('error', this.onError).off('end', this.onEnd).off('close', this.onEnd);
    this.socket.off('connect', this.onReady).off('secureConnect', this.onReady);
    // A late error after the hand-over is the tunnel user's; before it, ours, and ignored.
    if (this.socket.listenerCount('error') === 0) this.socket.on('error', () => undefined);
  }

  /** Resolves with check()'s first defined value, re-checked on every event of the socket. */
  private wait<T>(phase: Phase, until: number, allowedMs: number, check: () => T | undefined): Promise<T> {
    const { signal } = this.options;
    return new Promise<T>((resolve, reject) => {
      const done = (settle: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.wake = () => undefined;
        settle();
      };
      const onAbort = () => done(() => reject(signal!.reason));
      const timer = setTimeout(() => done(() => reject(timeoutFailure(phase, allowedMs / 1000, this.attempt))), Math.max(0, until - Date.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake = () => {
        try {
          const value = check();
          if (value !== undefined) return done(() => resolve(value));
          const error = this.error;
          if (error) return done(() => reject(socketFailure(error, phase, this.attempt)));
          if (this.ended) return done(() => reject(closedFailure(phase, this.received.length, this.attempt)));
        } catch (err) {
          done(() => reject(err));
        }
      };
      if (signal?.aborted) return onAbort();
      this.wake();
    });
  }

  private readonly onReadable = () => {
    for (let chunk: Buffer | null; (chunk = this.socket.read() as Buffer | null) !== null; ) this.received = Buffer.concat([this.received, chunk]);
    this.wake();
  };
  private readonly onError = (err: Error) => {
    this.error ??= err;
    this.wake();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };
  private readonly onReady = () => {
    this.ready = true;
    this.wake();
  };
}

/** The most of a 407's body bbgate reads through to keep the connection; past it, a new connection is cheaper. */
const MAX_407_BODY = 64 * 1024;

/**
 * The length of a complete chunked body at the start of `data` (its chunks, the last chunk and any
 * trailer lines), undefined while it is incomplete, 'malformed' when a size line is not hex.
 */
export function chunkedBodyLength(data: Buffer): number | 'malformed' | undefined {
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return data.length - at > 64 ? 'malformed' : undefined;
    const size = data.toString('latin1', at, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(size)) return 'malformed';
    at = lineEnd + 2;
    const n = parseInt(size, 16);
    if (n === 0) break;
    if (data.length < at + n + 2) return undefined;
    if (data[at + n] !== 0x0d || data[at + n + 1] !== 0x0a) return 'malformed';
    at += n + 2;
  }
  // Trailer lines, up to the empty line that ends the body.
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    if (lineEnd === at) return at + 2;
    at = lineEnd + 2;
  }
}
