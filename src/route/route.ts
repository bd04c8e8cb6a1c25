import type { Endpoint } from '../address/endpoint.js';
import type { ProxyConfig } from '../address/proxy-string.js';
import { redactCredentials } from '../address/redact.js';
import { proxyFromEnvironment } from '../proxy/index.js';
import type { TlsLogger } from '../tls/index.js';

export interface TransportLogger extends TlsLogger {
  info(fields: object, message: string): void;
}

/** Everything a dial needs: where to, through which proxy, and the socket's settings. */
export interface RouteOptions {
  endpoint: Endpoint;
  /** From --proxy-connection-string: wins over the environment. */
  proxy?: ProxyConfig;
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
  proxy?: ProxyConfig;
}

/**
 * The route that the worker (from its tac), the probe (its flags or a tac) and the relay (its
 * upstream) dial: one function, so that a parsed endpoint and proxy mean the same whoever
 * dials them. The settings are the caller's own (the relay's keepalive, the probe's env).
 */
export function routeTo({ endpoint, proxy }: Destination, settings: Omit<RouteOptions, 'endpoint' | 'proxy'> = {}): RouteOptions {
  return { endpoint, ...(proxy ? { proxy } : {}), ...settings };
}

export interface ProxyChoice {
  proxy?: ProxyConfig;
  reason: string;
}

/** Which proxy, if any, carries the connection, and why: the flag, the environment, or NO_PROXY. */
export function chooseProxy(options: RouteOptions): ProxyChoice {
  if (options.proxy) return { proxy: options.proxy, reason: `${redactCredentials(options.proxy.url)} from --proxy-connection-string` };
  if (options.environmentProxy === false) return { reason: 'direct: environment proxies are turned off' };
  return proxyFromEnvironment(options.endpoint.host, options.endpoint.port, options.env ?? process.env);
}
