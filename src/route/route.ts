import type { Endpoint } from '../address/endpoint.js';
import type { PacSource } from '../address/pac-string.js';
import { withProxyCredentials, type ProxyCredentials } from '../address/proxy-credentials.js';
import type { ProxyConfig } from '../address/proxy-string.js';
import { isPacSource, type ProxySetting } from '../address/proxy-setting.js';
import { redactCredentials } from '../address/redact.js';
import { proxyFromEnvironment } from '../proxy/index.js';
import type { PacDecision } from '../proxy/pac/index.js';
import type { TlsLogger } from '../tls/index.js';

export interface TransportLogger extends TlsLogger {
  info(fields: object, message: string): void;
}

/** Everything a dial needs: where to, through which proxy, and the socket's settings. */
export interface RouteOptions {
  endpoint: Endpoint;
  /** From --proxy-connection-string (one proxy, or a PAC file): wins over the environment. */
  proxy?: ProxySetting;
  /** BBGATE_PROXY_USER/PASSWORD(_FILE)/HASH, read once at start-up: for proxies whose string lacks credentials (a PAC's, the environment's too). */
  proxyCredentials?: ProxyCredentials;
  /** Read HTTPS_PROXY/ALL_PROXY/NO_PROXY when no explicit proxy is given (default true). */
  environmentProxy?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Seconds between TCP keepalive probes on the socket (0 turns them off). */
  tcpKeepalive?: number;
  logger?: TransportLogger;
}

/** Where a dial goes, parsed once from what the user wrote: the endpoint, and the proxy given for it, if any. */
export interface Destination {
  endpoint: Endpoint;
  proxy?: ProxySetting;
  proxyCredentials?: ProxyCredentials;
}

/**
 * The route that the worker (from its tac), the probe (its flags or a tac) and the relay (its
 * upstream) dial: one function, so that a parsed endpoint and proxy mean the same whoever
 * dials them. The settings are the caller's own (the relay's keepalive, the probe's env).
 */
export function routeTo({ endpoint, proxy, proxyCredentials }: Destination, settings: Omit<RouteOptions, 'endpoint' | 'proxy' | 'proxyCredentials'> = {}): RouteOptions {
  return { endpoint, ...(proxy ? { proxy } : {}), ...(proxyCredentials ? { proxyCredentials } : {}), ...settings };
}

/** One way to the master: a CONNECT tunnel through a proxy, or a direct TCP connection. `label` names it in messages. */
export type Hop = { kind: 'proxy'; proxy: ProxyConfig; label: string } | { kind: 'direct'; label: string };

/** The ways to try, in order (a dead one falls through to the next), and why these. */
export interface RoutePlan {
  hops: Hop[];
  reason: string;
  /** Set when a PAC file chose the hops. */
  pac?: PacSource;
}

/** The PAC file the route asks, if its proxy setting is one. */
export function pacOf(options: RouteOptions): PacSource | undefined {
  return isPacSource(options.proxy) ? options.proxy : undefined;
}

/** Which proxy, if any, carries the connection, and why: the flag, the environment, or NO_PROXY (a PAC's plan is planFromPac's). */
export function chooseProxy(options: RouteOptions): RoutePlan {
  const { proxy, proxyCredentials } = options;
  if (proxy && !isPacSource(proxy)) {
    return { hops: [proxyHop(proxy, proxyCredentials)], reason: `${redactCredentials(proxy.url)} from --proxy-connection-string` };
  }
  if (options.environmentProxy === false) return { hops: [DIRECT], reason: 'direct: environment proxies are turned off' };
  const choice = proxyFromEnvironment(options.endpoint.host, options.endpoint.port, options.env ?? process.env);
  return { hops: [choice.proxy ? proxyHop(choice.proxy, proxyCredentials) : DIRECT], reason: choice.reason };
}

/** The PAC's answer as hops, and a reason that says it was the PAC's, naming SOCKS entries left out. */
export function planFromPac(pac: PacSource, decision: PacDecision, credentials?: ProxyCredentials): RoutePlan {
  const hops = decision.entries.map((e): Hop => (e.kind === 'direct' ? DIRECT : proxyHop(e.proxy, credentials, e.text)));
  const order = hops.map((h) => h.label).join(', then ');
  const skipped = decision.skipped.length ? `; skipped ${decision.skipped.join(', ')} (bbgate does not speak SOCKS)` : '';
  const tried = hops.length > 1 ? ', tried in order until one connects' : '';
  return { hops, reason: `${order} from the PAC file ${pac.text}${tried}${skipped}`, pac };
}

const DIRECT: Hop = { kind: 'direct', label: 'DIRECT' };

/** A hop through the proxy, given the environment's credentials where its string has none (the label names the proxy alone). */
function proxyHop(proxy: ProxyConfig, credentials: ProxyCredentials | undefined, label = redactCredentials(proxy.url.origin)): Hop {
  return { kind: 'proxy', proxy: withProxyCredentials(proxy, credentials), label };
}
