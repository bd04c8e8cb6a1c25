import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { BbgateError } from '../errors.js';
import { loadTrustRoots } from '../tls/index.js';
import { hostPort } from '../transport/host-port.js';
import type { ListenerSpec } from './config.js';
import { configError } from './config.js';
import { AddressSet } from './policy.js';
import { connectionAddresses, proxyHeaderGate } from './proxy-protocol.js';
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
  /**
   * A client that failed before it was a stream, for the log and metrics: its load balancer's
   * PROXY header (peer: the load balancer), or its TLS handshake.
   */
  onClientError(spec: ListenerSpec, peer: string, err: Error, stage: 'proxy_header' | 'tls'): void;
}

/**
 * Opens one listener. Certificates and keys are read here, before anything
 * listens, so that a bad file is a configuration error rather than a failed
 * connection later.
 */
export async function openListener(spec: ListenerSpec, events: ListenerEvents, handshakeTimeoutMs: number): Promise<Listener> {
  const proxyFrom = spec.proxyFrom && new AddressSet(spec.proxyFrom, (problem) => {
    throw configError(`listener ${spec.name}: proxyFrom: ${problem}`);
  });
  const headerFailed = (peer: string, err: Error) => events.onClientError(spec, peer, err, 'proxy_header');
  if (spec.kind === 'ws') {
    const ws = await listenWebSocket({
      host: spec.host,
      port: spec.port,
      path: spec.path,
      ...(spec.tls ? { tls: spec.tls } : {}),
      handshakeTimeoutMs,
      onSocket: (socket) => events.onSocket(socket, spec),
      ...(proxyFrom ? { proxyFrom } : {}),
      onClientError: (peer, err, stage) => events.onClientError(spec, peer, err, stage),
    }, (accepted) => events.onStream(accepted, spec));
    return { spec, address: ws.address, close: () => ws.close() };
  }
  // The TLS server never listens: the plain one in front hands it each connection once any
  // PROXY header is off, which a TLS server given the socket itself would read as a ClientHello.
  const tls = spec.kind === 'tls' ? tlsServer(spec, await tlsServerOptions(spec, handshakeTimeoutMs)) : undefined;
  const server = createTcpServer({ noDelay: true });
  const pass = proxyHeaderGate(proxyFrom, handshakeTimeoutMs, headerFailed);
  server.on('connection', (socket: Socket) => {
    if (!events.onSocket(socket, spec)) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    pass(socket, (client) => (tls ? tls.emit('connection', client) : events.onStream(accepted(client), spec)));
  });
  tls?.on('secureConnection', (socket: TLSSocket) => events.onStream(accepted(socket), spec));
  tls?.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    const { address, port } = connectionAddresses(socket).remote;
    const peer = hostPort(address, port);
    // Node 20 leaves a socket whose handshake timed out open.
    socket.destroy();
    events.onClientError(spec, peer, err, 'tls');
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
  const { remote, local } = connectionAddresses(socket);
  return { stream: socket, socket, remoteAddress: remote.address, remotePort: remote.port, localAddress: local.address, localPort: local.port };
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
      const where = hostPort(spec.host ?? '*', spec.port);
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
