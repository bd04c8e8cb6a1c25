import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { BbgateError } from '../errors.js';
import { loadTrustRoots } from '../tls/index.js';
import type { ListenerSpec } from './config.js';
import { configError } from './config.js';
import { listenWebSocket, type AcceptedStream } from './websocket-listener.js';

export type { AcceptedStream };

export interface Listener {
  spec: ListenerSpec;
  address: AddressInfo;
  /** Stops accepting; connections already accepted are not touched. */
  close(): Promise<void>;
}

export interface ListenerEvents {
  /**
   * Every raw TCP connection, before TLS or HTTP: false closes it at once. The
   * relay counts connections here, so that clients stuck in a TLS or HTTP
   * handshake count toward --max-connections too.
   */
  onSocket(socket: Socket, spec: ListenerSpec): boolean;
  onStream(accepted: AcceptedStream, spec: ListenerSpec): void;
  /** A client that failed before it was a stream (a TLS handshake), for the log and metrics. */
  onClientError(spec: ListenerSpec, peer: string, err: Error): void;
}

/**
 * Opens one listener. Certificates and keys are read here, before anything
 * listens, so that a bad file is a configuration error rather than a failed
 * connection later.
 */
export async function openListener(spec: ListenerSpec, events: ListenerEvents, handshakeTimeoutMs: number): Promise<Listener> {
  if (spec.kind === 'ws') {
    const ws = await listenWebSocket({
      host: spec.host,
      port: spec.port,
      path: spec.path,
      ...(spec.tls ? { tls: spec.tls } : {}),
      handshakeTimeoutMs,
      onSocket: (socket) => events.onSocket(socket, spec),
    }, (accepted) => events.onStream(accepted, spec));
    return { spec, address: ws.address, close: () => ws.close() };
  }
  const server = spec.kind === 'tcp' ? createTcpServer({ noDelay: true }) : tlsServer(spec, await tlsServerOptions(spec, handshakeTimeoutMs));
  const refused = new WeakSet<Socket>();
  server.on('connection', (socket: Socket) => {
    if (!events.onSocket(socket, spec)) {
      refused.add(socket);
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (spec.kind === 'tcp') events.onStream(accepted(socket), spec);
  });
  server.on('secureConnection', (socket: TLSSocket) => events.onStream(accepted(socket), spec));
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    // Node 20 leaves a socket whose handshake timed out open.
    socket.destroy();
    // Node's TLS server wraps a socket before our 'connection' listener can refuse it; that refusal is no TLS failure.
    if (refused.has((socket as TLSSocket & { _parent?: Socket })._parent ?? socket)) return;
    events.onClientError(spec, `${socket.remoteAddress}:${socket.remotePort}`, err);
  });
  await listen(server, spec);
  return {
    spec,
    address: server.address() as AddressInfo,
    // server.close() stops listening at once; its callback would wait for every relayed connection to end.
    close: async () => void server.close(),
  };
}

function accepted(socket: Socket): AcceptedStream {
  return {
    stream: socket,
    socket,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
  };
}

/** A key that does not match its certificate is found here, by OpenSSL: a configuration error like any other. */
function tlsServer(spec: ListenerSpec, options: TlsOptions) {
  try {
    return createTlsServer(options);
  } catch (err) {
    throw configError(`listener ${spec.name}: the certificate and key cannot be used: ${(err as Error).message}`);
  }
}

async function tlsServerOptions(spec: Extract<ListenerSpec, { kind: 'tls' }>, handshakeTimeoutMs: number): Promise<TlsOptions> {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw configError(`listener ${spec.name}: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = Buffer.concat([read('certKey', spec.certKey), ...(spec.extraCertChain ? [Buffer.from('\n'), read('extraCertChain', spec.extraCertChain)] : [])]);
  const key = read('privateKey', spec.privateKey);
  let ca: string[] | undefined;
  if (spec.caCertsDir) {
    try {
      ca = (await loadTrustRoots(spec.caCertsDir)).pem;
    } catch (err) {
      throw configError(`listener ${spec.name}: caCertsDir: ${(err as Error).message}`);
    }
  }
  return {
    cert,
    key,
    ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
    // A client that connects and never completes TLS is dropped like one that never logs in.
    handshakeTimeout: handshakeTimeoutMs,
  };
}

function listen(server: Server, spec: ListenerSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      const where = `${spec.host ?? '*'}:${spec.port}`;
      const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : err.message;
      reject(err instanceof BbgateError ? err : configError(`cannot listen on ${where} (${spec.name}): ${why}`));
    };
    server.once('error', failed);
    server.listen({ port: spec.port, ...(spec.host !== undefined ? { host: spec.host } : {}) }, () => {
      server.off('error', failed);
      // Errors after listening belong to single connections, never to the process.
      server.on('error', () => undefined);
      resolve();
    });
  });
}
