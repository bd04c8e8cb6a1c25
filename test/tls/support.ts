// Peers and probes shared by the TLS suites: real TLS and plain TCP servers on loopback, a raw
// TCP dialer, a logger that keeps what it is told, and an assertion on typed errors.
import assert from 'node:assert/strict';
import { createConnection, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions as NodeTlsServerOptions, type TLSSocket } from 'node:tls';
import { isBbgateError, type ErrorCode } from '../../src/errors.js';
import type { TlsLogger } from '../../src/tls/index.js';

/** What a Buildbot master sends first: the Banana list of the PB dialects it offers, ["pb", "none"]. */
export const PB_OFFER = Buffer.from([0x02, 0x80, 0x02, 0x82, 0x70, 0x62, 0x04, 0x82, 0x6e, 0x6f, 0x6e, 0x65]);

export interface Running {
  port: number;
  close(): Promise<void>;
}

async function listen(server: Server, host: string): Promise<Running> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TlsPeer extends Running {
  /** Per accepted TLS connection: the SNI name it asked for, and the subject CN of its client certificate. */
  seen: { servername: string | false | null; clientCN: string | undefined }[];
}

/** A Node TLS server (real OpenSSL) that greets each client with the PB offer, then echoes. */
export async function tlsPeer(options: NodeTlsServerOptions, host = '127.0.0.1'): Promise<TlsPeer> {
  const seen: TlsPeer['seen'] = [];
  const server = createTlsServer(options, (socket: TLSSocket) => {
    const cn = socket.getPeerCertificate().subject?.CN;
    seen.push({ servername: socket.servername, clientCN: Array.isArray(cn) ? cn[0] : cn });
    socket.on('error', () => {});
    socket.write(PB_OFFER);
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  return { ...(await listen(server, host)), seen };
}

/** A plain TCP server; `onConnection` decides what the client hears. */
export function plainPeer(onConnection: (socket: Socket) => void): Promise<Running> {
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  return listen(server, '127.0.0.1');
}

export function dial(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface LogEntry {
  level: 'warn' | 'info';
  fields: Record<string, unknown>;
  message: string;
}

export function recordingLogger(): TlsLogger & { entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  return {
    entries,
    warn: (fields, message) => entries.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
    info: (fields, message) => entries.push({ level: 'info', fields: fields as Record<string, unknown>, message }),
    text: () => entries.map((e) => `${e.level} ${e.message} ${JSON.stringify(e.fields)}`).join('\n'),
  };
}

/** Awaits a rejection with a BbgateError of `code` whose message matches every pattern; returns the message. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, ...patterns: (RegExp | string)[]): Promise<string> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(isBbgateError(error), `expected a BbgateError ${code}, got ${error === undefined ? 'success' : String(error)}`);
  assert.equal(error.code, code, error.message);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(error.message.includes(p), `${JSON.stringify(p)} not in: ${error.message}`);
    else assert.match(error.message, p);
  }
  return error.message;
}

/** The first `n` bytes read from a socket. */
export function readBytes(socket: Socket | TLSSocket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) {
        socket.off('data', onData);
        socket.pause();
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}
