import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Endpoint, TlsEndpoint, WsEndpoint } from '../address/endpoint.js';
import { redactCredentials } from '../address/redact.js';
import { connectThroughProxy, type TunnelAuth } from '../proxy/index.js';
import { describeCertificate, pinOf, startTls, type TlsOptions } from '../tls/index.js';
import { connectTcp, resolveHost } from '../transport/tcp.js';
import { upgradeToWebSocket, type WebSocketUpgrade } from '../transport/websocket.js';
import type { PacSource } from '../address/pac-string.js';
import { hostPort } from '../address/host-port.js';
import { BbgateError, networkError } from '../errors.js';
import { decideByPac, forgetPac } from '../proxy/pac/index.js';
import { chooseProxy, pacOf, planFromPac, type Hop, type RouteOptions, type RoutePlan, type TransportLogger } from './route.js';

export type DialStep = 'pac' | 'proxy' | 'dns' | 'tcp' | 'connect' | 'tls' | 'websocket';

/** What a finished step says: one line, and the particulars the probe shows with --verbose (and warnings it always shows). */
export type StepOutcome = string | { message: string; details: string[]; warnings?: string[] };

/** Runs one layer of the dial; the probe passes one that times and reports each. */
export type StepRunner = <T>(step: DialStep, run: () => Promise<T>, describe: (value: T) => StepOutcome) => Promise<T>;

const untimed: StepRunner = (_step, run) => run();

/**
 * Turns an endpoint (and maybe a proxy) into a verified byte stream to the
 * master: TCP, or a CONNECT tunnel through the proxy, then TLS when the
 * endpoint asks for it, then the WebSocket upgrade for ws:// and wss://. TLS
 * inside a proxy tunnel is verified exactly like a direct one, which
 * buildbot-worker cannot do. A PAC file's answer may name several ways to the
 * master: they are tried in order (see failover).
 */
export async function dial(options: RouteOptions, step: StepRunner = untimed): Promise<Duplex> {
  const { endpoint, logger } = options;
  const tls = tlsTarget(endpoint);
  for (const warning of tls?.warnings ?? []) logger?.warn({ endpoint: endpoint.host }, warning);
  const pac = pacOf(options);
  const plan = pac ? await planByPac(pac, options, step) : await step('proxy', async () => chooseProxy(options), (p) => p.reason);
  let socket: Socket;
  try {
    socket = plan.hops.length === 1 ? (await openHop(plan.hops[0]!, endpoint, step)).socket : (await step('connect', () => failover(plan.hops, endpoint), describeFailover)).socket;
  } catch (err) {
    // A PAC naming a dead proxy may have been changed since: the next dial fetches it again.
    if (pac) forgetPac(pac);
    throw err;
  }
  const keepalive = options.tcpKeepalive ?? 60;
  if (keepalive > 0) socket.setKeepAlive(true, keepalive * 1000);
  try {
    const secured: Duplex = tls ? await step('tls', () => startTls(socket, tlsOptions(tls, logger)), (s) => describeTls(s, tls)) : socket;
    if (endpoint.type !== 'ws') return secured;
    const upgrade = await step('websocket', () => upgradeToWebSocket(secured, endpoint), (u) => describeUpgrade(endpoint, u));
    return upgrade.stream;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** The PAC step (load, evaluate, the answer), then the proxy step saying which hops it gave. */
async function planByPac(pac: PacSource, { endpoint, proxyCredentials }: RouteOptions, step: StepRunner): Promise<RoutePlan> {
  const decision = await step('pac', () => decideByPac(pac, endpoint.host, endpoint.port, endpoint.timeout * 1000), (d) => ({
    message: `${pac.text} answered ${JSON.stringify(d.answer)} for ${d.url}`,
    details: [`the PAC file: ${d.how}`, `FindProxyForURL(${JSON.stringify(d.url)}, ${JSON.stringify(d.host)})`],
  }));
  return step('proxy', async () => planFromPac(pac, decision, proxyCredentials), (p) => p.reason);
}

/** A connected socket, and what its step(s) said, for the failover's message. */
interface Opened {
  socket: Socket;
  said: StepOutcome;
}

/** One hop with its own steps: the proxy's CONNECT, or DNS then TCP. */
async function openHop(hop: Hop, endpoint: Endpoint, step: StepRunner): Promise<Opened> {
  if (hop.kind === 'proxy') {
    const { proxy } = hop;
    let said: StepOutcome = '';
    const tunnel = await step(
      'connect',
      () => connectThroughProxy(proxy, endpoint.host, endpoint.port, { timeoutMs: endpoint.timeout * 1000 }),
      (t) => (said = {
        message: `${redactCredentials(proxy.url)} answered "${t.statusLine}" to CONNECT ${endpoint.host}:${endpoint.port}${describeAuth(t.auth)}`,
        details: [
          ...t.auth.legs.map((l) => `${l.reconnected ? 'on a new connection: ' : ''}${l.sent} → ${l.answer} (${l.ms.toFixed(1)} ms)`),
          ...Object.entries(t.headers).map(([name, value]) => `${name}: ${value}`),
        ],
      }),
    );
    return { socket: tunnel.socket, said };
  }
  const addresses = await step('dns', () => resolveHost(endpoint.host, endpoint.timeout), (a) => `${endpoint.host} → ${a.join(', ')}`);
  let said: StepOutcome = '';
  const socket = await step('tcp', () => connectFirst(endpoint, addresses), (s) => (said = `connected to ${s.remoteAddress}:${s.remotePort} from ${s.localAddress}:${s.localPort}`));
  return { socket, said };
}

/** What a multi-hop connect step reports: the hop that carried it, and the ones that fell through before it. */
interface FailoverResult extends Opened {
  hop: Hop;
  index: number;
  count: number;
  failed: { hop: Hop; err: BbgateError }[];
}

/**
 * Tries the hops in order, as browsers do with a PAC answer: a proxy that cannot be reached
 * (refused, unresolvable, silent, hung up, not TLS when it should be) or a direct connection
 * that fails at the network level falls through to the next. An answer from a proxy (407,
 * 403, 502) is its verdict and ends the dial, as do failures beyond the connection (TLS with
 * the master, PB). When every hop fails: PROXY_ALL_FAILED, naming each failure.
 */
async function failover(hops: Hop[], endpoint: Endpoint): Promise<FailoverResult> {
  const failed: FailoverResult['failed'] = [];
  // One timeout for the whole step, as for any other: each hop gets what the ones before it left.
  const deadline = Date.now() + endpoint.timeout * 1000;
  for (const [index, hop] of hops.entries()) {
    const left = (deadline - Date.now()) / 1000;
    if (left <= 0) {
      failed.push({ hop, err: new BbgateError('NET_TIMEOUT', `not tried: the ${endpoint.timeout} s of the connect step were used up`) });
      continue;
    }
    try {
      const opened = await openHop(hop, { ...endpoint, timeout: left }, describing);
      return { ...opened, hop, index, count: hops.length, failed };
    } catch (err) {
      const failure = err instanceof BbgateError ? err : networkError(err, hop.label);
      if (!FALLS_THROUGH.has(failure.code)) throw failure;
      failed.push({ hop, err: failure });
    }
  }
  const each = failed.map(({ hop, err }, i) => `${i + 1}) ${hop.label}: ${err.code}: ${err.message}`).join('; ');
  throw new BbgateError('PROXY_ALL_FAILED', `none of the ${hops.length} ways to ${hostPort(endpoint.host, endpoint.port)} the PAC file gave worked: ${each}`);
}

/** Runs each step and keeps what it said, so the failover's one step can report the hop's. */
const describing: StepRunner = async (_step, run, describe) => {
  const value = await run();
  describe(value);
  return value;
};

const FALLS_THROUGH = new Set<string>([
  'PROXY_DNS', 'PROXY_REFUSED', 'PROXY_UNREACHABLE', 'PROXY_TIMEOUT', 'PROXY_CLOSED', 'PROXY_TLS', 'PROXY_NOT_HTTP',
  'NET_DNS', 'NET_REFUSED', 'NET_TIMEOUT', 'NET_UNREACHABLE', 'NET_RESET',
]);

function describeFailover(r: FailoverResult): StepOutcome {
  const said = typeof r.said === 'string' ? { message: r.said, details: [] } : r.said;
  const after = r.failed.length ? `, after ${r.failed.map((f) => f.hop.label).join(' and ')} failed` : '';
  return {
    message: `${r.hop.label} (entry ${r.index + 1} of ${r.count} of the PAC's answer) carried the connection${after}: ${said.message}`,
    details: said.details,
    warnings: r.failed.map(({ hop, err }) => `${hop.label} failed, so the next entry was tried: ${err.code}: ${err.message}`),
  };
}

/** "; authenticated with NTLM (offered NTLM, Basic)", or nothing when the proxy asked for none. */
function describeAuth(auth: TunnelAuth): string {
  if (!auth.scheme) return '';
  return `; authenticated with ${auth.scheme}${auth.offered.length ? ` (offered ${auth.offered.join(', ')})` : ' (sent without asking: #auth=)'}`;
}

/** What the TLS step needs, the same for tls:, ssl: and wss://. */
type TlsTarget = Pick<TlsEndpoint, 'host' | 'serverName' | 'verify' | 'timeout' | 'trustRoots' | 'certificate' | 'privateKey' | 'fingerprint' | 'warnings'>;

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
    ...(tls.fingerprint ? { fingerprint: tls.fingerprint } : {}),
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

/** The protocol, the cipher, and the chain the server presented, leaf first, as far as it goes; what vouched for it. */
function describeTls(socket: TLSSocket, tls: TlsTarget): StepOutcome {
  const chain: DetailedPeerCertificate[] = [];
  for (let cert = socket.getPeerCertificate(true); cert && Object.keys(cert).length && !chain.includes(cert); cert = cert.issuerCertificate) {
    chain.push(cert);
  }
  const described = chain.map((c) => describeCertificate(c));
  const leaf = described[0];
  const parts = [`${socket.getProtocol() ?? 'TLS'} ${socket.getCipher()?.name ?? ''}`.trim()];
  // The fingerprint as fingerprint= takes it, to copy into a connection string.
  if (leaf) {
    parts.push(`certificate ${leaf.subject} (${leaf.san.join(', ') || 'no SAN'}) issued by ${leaf.issuer}, valid until ${leaf.validTo.slice(0, 10)}, ` +
      `fingerprint=${pinOf(leaf)}${tls.fingerprint ? ' (as pinned)' : ''}`);
  }
  const details = described.map((c, i) => `${i === 0 ? 'certificate' : `issuer ${i}`}: ${c.subject}; issued by ${c.issuer}; valid ${c.validFrom.slice(0, 10)} to ${c.validTo.slice(0, 10)}${c.san.length ? `; ${c.san.join(', ')}` : ''}; SHA-256 ${c.fingerprint256}`);
  const top = described.at(-1);
  if (tls.fingerprint && !tls.trustRoots) details.push('trusted for being the certificate fingerprint= pins; with no trustRoots, its chain and name were not checked');
  else if (top) details.push(top.subject === top.issuer ? `anchored by the trusted root ${top.subject}` : `anchored by a trusted certificate for ${top.issuer}`);
  return { message: parts.join('; '), details };
}
