import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import { BbgateError, networkError } from '../errors.js';
import { whenEnded } from '../stream-end.js';
import { describePeerBytes } from '../peer-bytes.js';
import type { WsEndpoint } from '../address/endpoint.js';
import { webSocketUrl } from '../address/websocket-url.js';

/** A finished upgrade: the byte stream PB runs over, and the server's 101 answer. */
export interface WebSocketUpgrade {
  stream: Duplex;
  statusCode: number;
  headers: string[];
}

/**
 * The largest WebSocket message bbgate accepts, as a client and in the
 * relay's listener. ws buffers a whole message before handing it on, per
 * connection, so this bounds what a peer can make the relay hold; Banana is a
 * byte stream, so nothing needs a message larger than this.
 */
export const WEBSOCKET_MAX_PAYLOAD = 256 * 1024;
/** bbgate cuts what it writes into messages this large: a quarter of WEBSOCKET_MAX_PAYLOAD, so a listener set lower still takes them. */
const MAX_MESSAGE_BYTES = 64 * 1024;

/** How much of a refusal's body the error quotes: enough for a line such as "no WebSocket listener at /x; try /pb". */
const BODY_QUOTE_BYTES = 300;
/** How long a refusal's body may take to arrive; the status line already says what matters. */
const BODY_WAIT_MS = 1000;

/** What an upgrade asks for: the URL (for messages and the Host header), its path, the patience, extra headers. */
export interface UpgradeTarget {
  url: string;
  path: string;
  /** Seconds the server has to answer the upgrade. */
  timeout: number;
  /** Extra request headers, e.g. the msgpack protocol's Basic authorization. */
  headers?: Record<string, string>;
  /** The largest message accepted (default WEBSOCKET_MAX_PAYLOAD). */
  maxPayload?: number;
  /**
   * Called as the upgrade completes, before any frame that came with the 101 is parsed:
   * the caller's listeners must be on by then, or those frames are lost.
   */
  onOpen?: (ws: WebSocket) => void;
}

/** A finished upgrade with the WebSocket itself, for protocols that speak in messages. */
export interface OpenWebSocket {
  ws: WebSocket;
  statusCode: number;
  headers: string[];
}

/**
 * Upgrades an established connection (TCP, a proxy tunnel, or TLS over
 * either) to WebSocket. `ws` does the HTTP upgrade and the framing, but never
 * connects by itself: `createConnection` hands it our socket, so proxy choice,
 * CONNECT and TLS verification stay those of every other transport. Writes
 * become binary messages of at most 64 KiB; what arrives, text or binary,
 * is bytes.
 */
export async function upgradeToWebSocket(socket: Duplex, endpoint: WsEndpoint): Promise<WebSocketUpgrade> {
  let stream!: Duplex;
  const { statusCode, headers } = await openWebSocket(socket, { url: webSocketUrl(endpoint), path: endpoint.path, timeout: endpoint.timeout, onOpen: (ws) => (stream = typedStream(ws)) });
  return { stream, statusCode, headers };
}

/** The upgrade itself (see upgradeToWebSocket), resolving with the open WebSocket. */
export function openWebSocket(socket: Duplex, target: UpgradeTarget): Promise<OpenWebSocket> {
  const { url, path } = target;
  return new Promise((resolve, reject) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    const settle = (err: BbgateError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopWatching();
      socket.destroy();
      reject(err);
    };
    // Our own timer rather than ws's handshakeTimeout, an unref'd idle timeout on the
    // socket that lets the process exit with the upgrade still pending.
    const timer = setTimeout(() => {
      settle(new BbgateError('NET_TIMEOUT', `${url}: no answer to the WebSocket upgrade (GET ${path}) within ${target.timeout} s`));
      ws.terminate();
    }, target.timeout * 1000);
    // A server that hung up before or during the upgrade: HTTP's own parser never hears
    // an end that came before it took the socket.
    let answered = false;
    const stopWatching = whenEnded(socket, (err) => {
      // Once the server has answered, what it answered decides (ws reports it below).
      if (answered) return;
      settle(err ? networkError(err, url) : new BbgateError('WS_PROTOCOL', `${url}: the server closed the connection without answering the WebSocket upgrade (GET ${path}): is this port a WebSocket listener?`));
      ws.terminate();
    });
    const ws = new WebSocket(url, {
      createConnection: () => socket as Socket,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: target.maxPayload ?? WEBSOCKET_MAX_PAYLOAD,
      ...(target.headers ? { headers: target.headers } : {}),
    });
    ws.on('upgrade', (res: IncomingMessage) => {
      answered = true;
      response = res;
    });
    // Registering this listener stops ws from failing with a bare "Unexpected server response: 404".
    ws.on('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      answered = true;
      void quoteBody(res).then((said) => {
        settle(refused(url, res, said));
        // Still CONNECTING, so this aborts the request; the error it emits lands in the listener below, after settling.
        ws.terminate();
      });
    });
    // Stays for the socket's life: once the caller has taken over, errors are its to report, and this one is a no-op.
    ws.on('error', (err: Error) => settle(handshakeError(err, url, path, response)));
    ws.once('open', () => {
      settled = true;
      clearTimeout(timer);
      stopWatching();
      target.onOpen?.(ws);
      resolve({
        ws,
        statusCode: response?.statusCode ?? 101,
        headers: Object.entries(response?.headers ?? {}).map(([name, value]) => `${name}: ${String(value)}`),
      });
    });
  });
}

/** The server answered the upgrade with another HTTP status (code WS_UPGRADE_REFUSED); `status` is that status. */
export class UpgradeRefusedError extends BbgateError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('WS_UPGRADE_REFUSED', message);
  }
}

function refused(url: string, res: IncomingMessage, said: string | undefined): BbgateError {
  const status = `HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim();
  const redirect = res.headers.location ? `; it redirects to ${res.headers.location}` : '';
  const body = said ? ` (it said: ${JSON.stringify(said)})` : '';
  return new UpgradeRefusedError(res.statusCode ?? 0, `${url} answered "${status}" instead of upgrading to WebSocket${redirect}${body}`);
}

/** The first line of a short text body, if the server sent one in time. */
async function quoteBody(res: IncomingMessage): Promise<string | undefined> {
  const type = res.headers['content-type'];
  if (type !== undefined && !/^text\//i.test(type)) return undefined;
  const body = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = () => {
      clearTimeout(timer);
      res.off('data', onData);
      resolve(Buffer.concat(chunks).subarray(0, BODY_QUOTE_BYTES));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= BODY_QUOTE_BYTES) done();
    };
    const timer = setTimeout(done, BODY_WAIT_MS);
    res.on('data', onData);
    res.once('end', done);
    res.once('close', done);
    res.once('error', done);
  });
  const line = body.toString('utf8').split(/\r?\n/).find((l) => l.trim() !== '')?.trim();
  // Control characters could rewrite the terminal the probe prints to.
  return line === undefined || /[\x00-\x08\x0b-\x1f\x7f]/.test(line) ? undefined : line;
}

/** What went wrong before the upgrade finished, by what ws and Node's HTTP parser report. */
function handshakeError(err: Error, url: string, path: string, response: IncomingMessage | undefined): BbgateError {
  const errno = (err as NodeJS.ErrnoException).code ?? '';
  const request = `GET ${path}`;
  if (errno.startsWith('HPE_')) {
    const raw = (err as { rawPacket?: Buffer }).rawPacket;
    const bytes = raw && raw.length ? ` (${describePeerBytes(raw)})` : '';
    return new BbgateError('WS_PROTOCOL', `${url}: the answer to the WebSocket upgrade (${request}) is not HTTP${bytes}: is this port a WebSocket listener?`, { cause: err });
  }
  if (response) {
    return new BbgateError('WS_PROTOCOL', `${url} answered "HTTP 101" but the WebSocket handshake is invalid: ${err.message}`, { cause: err });
  }
  if (err.message === 'socket hang up') {
    return new BbgateError('WS_PROTOCOL', `${url}: the server closed the connection without answering the WebSocket upgrade (${request}): is this port a WebSocket listener?`, { cause: err });
  }
  return networkError(err, url);
}

/**
 * ws's byte stream over a WebSocket, which sends each write as one message,
 * made to cut a write into messages of at most 64 KiB: a Broker writes an
 * expression at a time, and a batch of log updates or an upload chunk can
 * exceed what the peer accepts in one message (WEBSOCKET_MAX_PAYLOAD).
 */
export function webSocketByteStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws);
  const write = stream._write.bind(stream);
  stream._write = (chunk: Buffer, encoding, callback) => {
    // All pieces are queued at once, in order; the write is done when its last piece is.
    let at = 0;
    for (; chunk.length - at > MAX_MESSAGE_BYTES; at += MAX_MESSAGE_BYTES) write(chunk.subarray(at, at + MAX_MESSAGE_BYTES), encoding, () => undefined);
    write(chunk.subarray(at), encoding, callback);
  };
  return stream;
}

/**
 * The byte stream, with ws's framing errors (WS_ERR_*) turned into
 * WS_PROTOCOL, so the PB session and the worker's log report a typed code
 * like every other transport failure.
 */
function typedStream(ws: WebSocket): Duplex {
  const stream = webSocketByteStream(ws);
  const destroy = stream._destroy.bind(stream);
  stream._destroy = (err, callback) =>
    destroy(err, (failure) => {
      const code = (failure as NodeJS.ErrnoException | null)?.code ?? '';
      callback(failure && code.startsWith('WS_ERR_') ? new BbgateError('WS_PROTOCOL', `the WebSocket peer broke the protocol: ${failure.message}`, { cause: failure }) : failure);
    });
  // Frames that came with the 101 are parsed before the caller can listen; a bad one must not
  // become an unheard error that ends the process (the caller still sees the stream close).
  stream.on('error', () => undefined);
  return stream;
}
