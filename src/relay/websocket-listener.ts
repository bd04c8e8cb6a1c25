import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { hostPort } from '../address/host-port.js';
import { WEBSOCKET_MAX_PAYLOAD, webSocketByteStream } from '../transport/websocket.js';
import { frontDoor, listenOrFail, onTlsFailure, readTlsIdentity, requireClientCertificate, tlsServerOrFail, type TlsIdentityFiles } from './front-door.js';
import type { AddressSet } from './policy.js';
import { connectionAddresses } from './proxy-protocol.js';

export interface WebSocketListenerOptions {
  host: string;
  port: number;
  /** The one path upgrades are accepted on, compared with the request's path (percent-decoded, query ignored). */
  path: string;
  /** PEM file paths, with Twisted's names. */
  tls?: TlsIdentityFiles;
  /** With tls: the CAs (PEM) whose client certificates are required. */
  clientCa?: string[];
  /**
   * The largest message a client may send; default WEBSOCKET_MAX_PAYLOAD (256 KiB). ws
   * buffers a message whole, per connection, before the stream sees a byte of it.
   */
  maxPayload?: number;
  /** How long a client may take over the TLS handshake, and over its HTTP request; default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Sees each raw connection before any TLS or HTTP; when it returns false, the connection is destroyed at once. */
  onSocket?: (socket: Socket) => boolean;
  /** Sees each connection once its source is known (after any PROXY header); false destroys it at once. */
  onSource?: (socket: Socket) => boolean;
  /**
   * Load balancers whose connections open with a PROXY header (v1 or v2), read before TLS and
   * HTTP; its source becomes the stream's remoteAddress. Connections from elsewhere carry none.
   */
  proxyFrom?: AddressSet;
  /**
   * A client dropped before it was a stream: a connection from proxyFrom without a valid header
   * (`peer` is the load balancer), a failed TLS handshake, or an upgrade request that was cut
   * off, never finished, or is not HTTP.
   */
  onClientError?: (peer: string, err: Error, stage: 'proxy_header' | 'tls' | 'websocket') => void;
}

export interface AcceptedStream {
  /** The WebSocket as a byte stream: each message's payload in order; writes go out as binary messages of at most 64 KiB. */
  stream: Duplex;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** The underlying connection (a TLSSocket for wss://), for keepalive and idle timers. */
  socket: Socket;
}

export interface WebSocketListener {
  server: HttpServer | HttpsServer;
  /** Stops accepting, and resolves without waiting for upgraded connections, which are not touched. */
  close(): Promise<void>;
  address: AddressInfo;
}

/** As long as the relay gives a worker to log in (its --handshake-timeout default). */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Node looks for expired HTTP requests only this often (every 30 s by default), which would stretch a short timeout. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

/**
 * Listens for WebSocket connections (ws://, or wss:// with `tls`) on one
 * path and hands each upgraded connection over as a byte stream. Anything
 * else gets a short text answer naming the path and nothing more: a 404 for
 * another path, a 426 for a plain request on the right one. Errors on a
 * connection stay on that connection, and a client that does not finish its
 * TLS handshake or its HTTP request within handshakeTimeoutMs is dropped.
 * Rejects, before listening, when a certificate or key cannot be read, and
 * when the address cannot be bound.
 */
export async function listenWebSocket(options: WebSocketListenerOptions, onStream: (accepted: AcceptedStream) => void): Promise<WebSocketListener> {
  const where = hostPort(options.host, options.port);
  const timeout = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  // Once upgraded, a connection is no longer an HTTP request, and these no longer apply to it.
  const bounds = { headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: Math.min(timeout, MAX_TIMEOUT_CHECK_INTERVAL_MS) };
  const label = `WebSocket listener ${where}`;
  const identity = options.tls && (await readTlsIdentity(options.tls, label));
  const server = identity ? tlsServerOrFail(label, () => createHttpsServer({ ...identity, ...requireClientCertificate(options.clientCa), ...bounds, handshakeTimeout: timeout })) : createHttpServer(bounds);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: options.maxPayload ?? WEBSOCKET_MAX_PAYLOAD });
  // As Node's own servers would: HTTP keeps a half-closed socket open, TLS does not.
  const front = frontDoor({
    ...(options.onSocket ? { onSocket: options.onSocket } : {}),
    ...(options.onSource ? { onSource: options.onSource } : {}),
    ...(options.proxyFrom ? { proxyFrom: options.proxyFrom } : {}),
    timeoutMs: timeout,
    onProxyHeaderError: (peer, err) => options.onClientError?.(peer, err, 'proxy_header'),
    allowHalfOpen: !options.tls,
  }, (client) => server.emit('connection', client));
  const notHere = `no WebSocket listener at this path; this listener's path is ${options.path}\n`;

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!isOurPath(req, options.path)) return answer(res, 404, notHere);
    answer(res, 426, `this is a WebSocket listener: connect with a WebSocket client (Upgrade: websocket) to ${options.path}\n`, { Upgrade: 'websocket' });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws takes the socket over, nobody else listens for its errors.
    socket.on('error', () => socket.destroy());
    // Basic authorization in the upgrade is how a msgpack_experimental_v7 worker logs in; the relay carries PB only.
    if (/^basic\s/i.test(req.headers.authorization ?? '')) return refuseUpgrade(socket, MSGPACK_REFUSED, '403 Forbidden');
    if (!isOurPath(req, options.path)) return refuseUpgrade(socket, notHere);
    // ws answers a malformed upgrade (no key, wrong version) with 400 itself.
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tcp = socket as Socket;
      const stream = webSocketByteStream(ws);
      // The consumer adds its own listener; this one keeps an unheard error from ending the process.
      stream.on('error', () => undefined);
      const { remote, local } = connectionAddresses(tcp);
      onStream({ stream, socket: tcp, remoteAddress: remote.address, remotePort: remote.port, localAddress: local.address, localPort: local.port });
    });
  });
  // https reports a failed TLS handshake as a clientError too: only a connection past its handshake failed at HTTP.
  const secured = new WeakSet<Duplex>();
  if (identity) server.on('secureConnection', (socket: Duplex) => secured.add(socket));
  // Malformed or late HTTP gets a short answer; every failed client, TLS ones included, is destroyed,
  // which Node 20 does not always do by itself.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = httpStatus(err);
    if (status !== undefined && socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
    if (!identity || secured.has(socket)) {
      const { address, port } = connectionAddresses(socket as Socket).remote;
      options.onClientError?.(hostPort(address, port), err, 'websocket');
    }
  });
  // https passes TLS failures on as clientError as well; they are reported (and destroyed) here without relying on that.
  if (identity) onTlsFailure(server as HttpsServer, (peer, err) => options.onClientError?.(peer, err, 'tls'));

  await listenOrFail(front, options.host, options.port, (at, why) => `cannot listen for WebSocket connections on ${at}: ${why}`);
  // Node's HTTP server starts the timer behind headersTimeout and requestTimeout on 'listening',
  // which a server that never listens itself would not hear.
  server.emit('listening');
  return {
    server,
    address: front.address() as AddressInfo,
    // close()'s callback would wait for every upgraded connection to end, and those are the caller's to end;
    // the HTTP server's close() ends idle keep-alive connections (Node >= 19), and the handshake timeout bounds
    // the rest.
    close: async () => {
      front.close();
      server.close();
    },
  };
}

/** The answer to a client error the HTTP layer saw; none for a TLS failure or a reset, where HTTP was never spoken. */
function httpStatus(err: NodeJS.ErrnoException): string | undefined {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  return err.code?.startsWith('HPE_') ? '400 Bad Request' : undefined;
}

/** The request's path, percent-decoded and without its query, is the listener's. */
function isOurPath(req: IncomingMessage, path: string): boolean {
  const pathname = (req.url ?? '').split('?')[0]!;
  try {
    return decodeURIComponent(pathname) === path;
  } catch {
    return false;
  }
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** What a msgpack_experimental_v7 worker is told (it quotes the first line in its error). */
const MSGPACK_REFUSED = "this bbgate relay carries PB only: msgpack_experimental_v7 workers are refused; give the worker protocol 'pb' and the relay's address\n";

/** An upgrade request is answered on the raw socket: no HTTP response object exists for it. */
function refuseUpgrade(socket: Duplex, body: string, status = '404 Not Found'): void {
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
