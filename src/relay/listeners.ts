import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { loadTrustRoots } from '../tls/index.js';
import type { ListenerSpec } from './config.js';
import { configError } from './config.js';
import { frontDoor, listenOrFail, onTlsFailure, readTlsIdentity, requireClientCertificate, tlsServerOrFail } from './front-door.js';
import { AddressSet } from './policy.js';
import { connectionAddresses } from './proxy-protocol.js';
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
  /** The same connection once its source address is known (after a trusted PROXY header): false closes it at once. */
  onSource(socket: Socket, spec: ListenerSpec): boolean;
  onStream(accepted: AcceptedStream, spec: ListenerSpec): void;
  /**
   * A client that failed before it was a stream, for the log and metrics: its load balancer's
   * PROXY header (peer: the load balancer), its TLS handshake, or its WebSocket upgrade request.
   */
  onClientError(spec: ListenerSpec, peer: string, err: Error, stage: 'proxy_header' | 'tls' | 'websocket'): void;
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
    const clientCa = await clientCertificates(spec.tls?.caCertsDir, `listener ${spec.name}`);
    const ws = await listenWebSocket({
      host: spec.host,
      port: spec.port,
      path: spec.path,
      ...(spec.tls ? { tls: spec.tls } : {}),
      ...(clientCa ? { clientCa } : {}),
      handshakeTimeoutMs,
      onSocket: (socket) => events.onSocket(socket, spec),
      onSource: (socket) => events.onSource(socket, spec),
      ...(proxyFrom ? { proxyFrom } : {}),
      onClientError: (peer, err, stage) => events.onClientError(spec, peer, err, stage),
    }, (accepted) => events.onStream(accepted, spec));
    return { spec, address: ws.address, close: () => ws.close() };
  }
  const label = `listener ${spec.name}`;
  const tlsOptions = spec.kind === 'tls' ? await tlsServerOptions(spec, label, handshakeTimeoutMs) : undefined;
  const tls = tlsOptions && tlsServerOrFail(label, () => createTlsServer(tlsOptions));
  const server = frontDoor({ onSocket: (socket) => events.onSocket(socket, spec), onSource: (socket) => events.onSource(socket, spec), ...(proxyFrom ? { proxyFrom } : {}), timeoutMs: handshakeTimeoutMs, onProxyHeaderError: headerFailed },
    (client) => (tls ? tls.emit('connection', client) : events.onStream(accepted(client), spec)));
  if (tls) {
    tls.on('secureConnection', (socket: TLSSocket) => events.onStream(accepted(socket), spec));
    onTlsFailure(tls, (peer, err) => events.onClientError(spec, peer, err, 'tls'));
  }
  await listenOrFail(server, spec.host, spec.port, (where, why) => `cannot listen on ${where} (${spec.name}): ${why}`);
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

/** The TLS listener's server options: its identity, any client CAs (which make a certificate required), the handshake bound. */
async function tlsServerOptions(spec: Extract<ListenerSpec, { kind: 'tls' }>, label: string, handshakeTimeoutMs: number): Promise<TlsOptions> {
  return {
    ...(await readTlsIdentity(spec, label)),
    ...requireClientCertificate(await clientCertificates(spec.caCertsDir, label)),
    // A client that connects and never completes TLS is dropped like one that never logs in.
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** caCertsDir=: the CAs whose client certificates the listener requires, read before listening. */
async function clientCertificates(caCertsDir: string | undefined, label: string): Promise<string[] | undefined> {
  if (caCertsDir === undefined) return undefined;
  try {
    return (await loadTrustRoots(caCertsDir)).pem;
  } catch (err) {
    throw configError(`${label}: caCertsDir: ${(err as Error).message}`);
  }
}
