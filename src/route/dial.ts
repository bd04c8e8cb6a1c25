import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Endpoint, TlsEndpoint, WsEndpoint } from '../address/endpoint.js';
import { redactCredentials } from '../address/redact.js';
import { connectThroughProxy, type TunnelAuth } from '../proxy/index.js';
import { describeCertificate, startTls, type TlsOptions } from '../tls/index.js';
import { connectTcp, resolveHost } from '../transport/tcp.js';
import { upgradeToWebSocket, type WebSocketUpgrade } from '../transport/websocket.js';
import { chooseProxy, type RouteOptions, type TransportLogger } from './route.js';

export type DialStep = 'proxy' | 'dns' | 'tcp' | 'connect' | 'tls' | 'websocket';

/** What a finished step says: one line, and the particulars the probe shows with --verbose. */
export type StepOutcome = string | { message: string; details: string[] };

/** Runs one layer of the dial; the probe passes one that times and reports each. */
export type StepRunner = <T>(step: DialStep, run: () => Promise<T>, describe: (value: T) => StepOutcome) => Promise<T>;

const untimed: StepRunner = (_step, run) => run();

/**
 * Turns an endpoint (and maybe a proxy) into a verified byte stream to the
 * master: TCP, or a CONNECT tunnel through the proxy, then TLS when the
 * endpoint asks for it, then the WebSocket upgrade for ws:// and wss://. TLS
 * inside a proxy tunnel is verified exactly like a direct one, which
 * buildbot-worker cannot do.
 */
export async function dial(options: RouteOptions, step: StepRunner = untimed): Promise<Duplex> {
  const { endpoint, logger } = options;
  const tls = tlsTarget(endpoint);
  for (const warning of tls?.warnings ?? []) logger?.warn({ endpoint: endpoint.host }, warning);
  const { proxy } = await step('proxy', async () => chooseProxy(options), (choice) => choice.reason);
  let socket: Socket;
  if (proxy) {
    const tunnel = await step(
      'connect',
      () => connectThroughProxy(proxy, endpoint.host, endpoint.port, { timeoutMs: endpoint.timeout * 1000 }),
      (t) => ({
        message: `${redactCredentials(proxy.url)} answered "${t.statusLine}" to CONNECT ${endpoint.host}:${endpoint.port}${describeAuth(t.auth)}`,
        details: [
          ...t.auth.legs.map((l) => `${l.reconnected ? 'on a new connection: ' : ''}${l.sent} → ${l.answer} (${l.ms.toFixed(1)} ms)`),
          ...Object.entries(t.headers).map(([name, value]) => `${name}: ${value}`),
        ],
      }),
    );
    socket = tunnel.socket;
  } else {
    const addresses = await step('dns', () => resolveHost(endpoint.host, endpoint.timeout), (a) => `${endpoint.host} → ${a.join(', ')}`);
    socket = await step('tcp', () => connectFirst(endpoint, addresses), (s) => `connected to ${s.remoteAddress}:${s.remotePort} from ${s.localAddress}:${s.localPort}`);
  }
  const keepalive = options.tcpKeepalive ?? 60;
  if (keepalive > 0) socket.setKeepAlive(true, keepalive * 1000);
  try {
    const secured: Duplex = tls ? await step('tls', () => startTls(socket, tlsOptions(tls, logger)), describeTls) : socket;
    if (endpoint.type !== 'ws') return secured;
    const upgrade = await step('websocket', () => upgradeToWebSocket(secured, endpoint), (u) => describeUpgrade(endpoint, u));
    return upgrade.stream;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** "; authenticated with NTLM (offered NTLM, Basic)", or nothing when the proxy asked for none. */
function describeAuth(auth: TunnelAuth): string {
  if (!auth.scheme) return '';
  return `; authenticated with ${auth.scheme}${auth.offered.length ? ` (offered ${auth.offered.join(', ')})` : ' (sent without asking: #auth=)'}`;
}

/** What the TLS step needs, the same for tls:, ssl: and wss://. */
type TlsTarget = Pick<TlsEndpoint, 'host' | 'serverName' | 'verify' | 'timeout' | 'trustRoots' | 'certificate' | 'privateKey' | 'warnings'>;

/** The endpoint's TLS settings, or undefined when it has no TLS (tcp:, ws://). */
function tlsTarget(endpoint: Endpoint): TlsTarget | undefined {
  if (endpoint.type === 'tls') return endpoint;
  return endpoint.type === 'ws' && endpoint.secure ? endpoint : undefined;
}

function tlsOptions(tls: TlsTarget, logger: TransportLogger | undefined): TlsOptions {
  return {
    serverName: tls.serverName ?? tls.host,
    verify: tls.verify,
    timeout: tls.timeout * 1000,
    ...(tls.trustRoots ? { trustRoots: tls.trustRoots } : {}),
    ...(tls.certificate ? { certificate: tls.certificate } : {}),
    ...(tls.privateKey ? { privateKey: tls.privateKey } : {}),
    ...(logger ? { logger } : {}),
  };
}

/** "GET /pb upgraded to WebSocket (HTTP 101)", with the server's answer headers as particulars. */
function describeUpgrade(endpoint: WsEndpoint, upgrade: WebSocketUpgrade): StepOutcome {
  return { message: `GET ${endpoint.path} upgraded to WebSocket (HTTP ${upgrade.statusCode})`, details: upgrade.headers };
}

async function connectFirst(endpoint: Endpoint, addresses: string[]): Promise<Socket> {
  let last: unknown;
  for (const address of addresses) {
    try {
      return await connectTcp(endpoint, address);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** The protocol, the cipher, and the chain the server presented, leaf first, as far as it goes. */
function describeTls(socket: TLSSocket): StepOutcome {
  const chain: DetailedPeerCertificate[] = [];
  for (let cert = socket.getPeerCertificate(true); cert && Object.keys(cert).length && !chain.includes(cert); cert = cert.issuerCertificate) {
    chain.push(cert);
  }
  const described = chain.map((c) => describeCertificate(c));
  const leaf = described[0];
  const parts = [`${socket.getProtocol() ?? 'TLS'} ${socket.getCipher()?.name ?? ''}`.trim()];
  if (leaf) parts.push(`certificate ${leaf.subject} (${leaf.san.join(', ') || 'no SAN'}) issued by ${leaf.issuer}, valid until ${leaf.validTo.slice(0, 10)}`);
  const details = described.map((c, i) => `${i === 0 ? 'certificate' : `issuer ${i}`}: ${c.subject}; issued by ${c.issuer}; valid ${c.validFrom.slice(0, 10)} to ${c.validTo.slice(0, 10)}${c.san.length ? `; ${c.san.join(', ')}` : ''}; SHA-256 ${c.fingerprint256}`);
  const top = described.at(-1);
  if (top) details.push(top.subject === top.issuer ? `anchored by the trusted root ${top.subject}` : `anchored by a trusted certificate for ${top.issuer}`);
  return { message: parts.join('; '), details };
}
