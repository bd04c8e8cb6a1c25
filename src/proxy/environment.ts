import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { hostPort } from '../address/host-port.js';
import { proxyFromUrl, type ProxyConfig } from '../address/proxy-string.js';
import { noProxyMatch, parentDomainEntries } from './no-proxy.js';

/**
 * The proxy for a PB connection to host:port, from the environment alone
 * (pure on `env`; an explicit --proxy-connection-string is the dialer's
 * business and wins over all of this).
 *
 * A proxied PB connection is a CONNECT tunnel, which is what an https:// URL
 * gets, so the variables are those proxy-from-env and curl read for https:
 * HTTPS_PROXY, then ALL_PROXY, lower case before upper case, an empty value
 * counting as unset. HTTP_PROXY is deliberately not read: it names the proxy
 * for plain-HTTP requests, which are forwarded rather than tunnelled, such a
 * proxy often refuses CONNECT, and in CGI-like settings a request can set it
 * ("httpoxy"). The reason then says HTTP_PROXY was ignored, for the probe.
 *
 * Loopback destinations (127.0.0.0/8, ::1 and its IPv4-mapped forms, `localhost` and names
 * under `.localhost`) are never proxied, NO_PROXY or not: a proxy cannot reach this machine's
 * loopback, and a host whose HTTPS_PROXY was set for apt must not lose its local master when
 * it switches from buildbot-worker (which ignores the variables) to bbgate. Names are judged as
 * written, not resolved, as NO_PROXY's are.
 *
 * One deviation from proxy-from-env: a value without a scheme means http://
 * (as in curl, Go and Python), not the scheme of the request, which would
 * make `HTTPS_PROXY=proxy:3128` a TLS proxy.
 *
 * Throws PROXY_SYNTAX, naming the variable, when the value that applies is
 * not a usable proxy URL: a proxy the user asked for is never skipped silently.
 */
export function proxyFromEnvironment(host: string, port: number, env: NodeJS.ProcessEnv = process.env): { proxy?: ProxyConfig; reason: string } {
  const target = hostPort(host, port);
  const chosen = variable(env, 'https_proxy') ?? variable(env, 'all_proxy');
  if (!chosen) {
    const http = variable(env, 'http_proxy');
    const ignored = http ? ` (${http.name} is set but not used: it is for plain-HTTP requests, and a PB connection is tunnelled with CONNECT like HTTPS; set HTTPS_PROXY or pass --proxy-connection-string)` : '';
    return { reason: `not proxied: neither HTTPS_PROXY nor ALL_PROXY is set${ignored}` };
  }
  if (isLoopback(host)) {
    return { reason: `not proxied: ${target} is this machine (a loopback destination), which ${chosen.name} never applies to; to tunnel to it through a proxy anyway, pass --proxy-connection-string` };
  }
  const noProxy = variable(env, 'no_proxy');
  const entry = noProxy && noProxyMatch(noProxy.value, host, port);
  if (noProxy && entry) return { reason: `not proxied: ${noProxy.name} entry "${entry}" matches ${target}` };

  const value = chosen.value.includes('://') ? chosen.value : `http://${chosen.value}`;
  const proxy = proxyFromUrl(value, { source: 'environment', envVar: chosen.name });
  const unmatched = noProxy ? `; no ${noProxy.name} entry matches ${target}` : '';
  const parents = noProxy ? parentDomainEntries(noProxy.value, host) : [];
  const hint = parents.length
    ? ` (an entry without a leading dot matches only that exact name: write ${parents.map((p) => `".${p}"`).join(', ')} to cover its subdomains)`
    : '';
  return { proxy, reason: `proxied through ${proxy.url.origin} from ${chosen.name}${unmatched}${hint}` };
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  const list = new BlockList();
  list.addAddress('::1', 'ipv6');
  list.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');
  return list.check(h, 'ipv6');
}

function variable(env: NodeJS.ProcessEnv, lower: string): { name: string; value: string } | undefined {
  for (const name of [lower, lower.toUpperCase()]) {
    const value = env[name];
    if (value) return { name, value };
  }
  return undefined;
}
