import { proxyFromUrl, type ProxyConfig } from '../../address/proxy-string.js';
import { ProxyError } from '../failures.js';

/** One usable entry of a PAC answer, in the order the answer gives them. */
export type PacEntry =
  | { kind: 'proxy'; proxy: ProxyConfig; text: string }
  | { kind: 'direct'; text: 'DIRECT' };

export interface PacAnswer {
  entries: PacEntry[];
  /** Entries bbgate cannot use (SOCKS), left out of `entries` and named in the probe's PAC step. */
  skipped: string[];
}

/** Longer answers are not a list of proxies; bounds what a hostile PAC can make bbgate hold and print. */
const MAX_ANSWER = 4096;
const MAX_ENTRIES = 32;

/**
 * Parses what FindProxyForURL returned: `PROXY host:port; HTTPS host:port; DIRECT`, entries
 * separated by ";", keywords in any case. `PROXY` and `HTTP` are plain HTTP proxies (port 80
 * when none is given, as browsers do), `HTTPS` a proxy spoken to over TLS (port 443). SOCKS
 * entries are skipped, since bbgate tunnels only through HTTP proxies; an answer left with
 * nothing usable, an empty one, or any entry that does not parse is PROXY_PAC_ANSWER: a typo
 * in a PAC file must not quietly turn into a direct connection. Pure.
 */
export function parsePacAnswer(answer: unknown): PacAnswer {
  if (typeof answer !== 'string') throw bad(`FindProxyForURL returned ${describe(answer)}, not a string such as "PROXY proxy.corp:3128; DIRECT"`);
  if (answer.length > MAX_ANSWER) throw bad(`FindProxyForURL returned ${answer.length} characters, more than the ${MAX_ANSWER} a list of proxies takes`);
  const parts = answer.split(';').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw bad(`FindProxyForURL returned ${JSON.stringify(answer)}: no entry (write "DIRECT" to connect directly)`);
  if (parts.length > MAX_ENTRIES) throw bad(`FindProxyForURL returned ${parts.length} entries, more than ${MAX_ENTRIES}`);
  const entries: PacEntry[] = [];
  const skipped: string[] = [];
  for (const part of parts) {
    const m = /^([A-Za-z0-9]+)(?:\s+(\S+))?$/.exec(part);
    const keyword = m?.[1]?.toUpperCase();
    const address = m?.[2];
    if (keyword === 'DIRECT' && address === undefined) entries.push({ kind: 'direct', text: 'DIRECT' });
    else if ((keyword === 'PROXY' || keyword === 'HTTP' || keyword === 'HTTPS') && address !== undefined) entries.push(proxyEntry(keyword, address, part));
    else if ((keyword === 'SOCKS' || keyword === 'SOCKS4' || keyword === 'SOCKS5') && address !== undefined) skipped.push(part);
    else throw bad(`the entry ${JSON.stringify(part)} of the answer ${JSON.stringify(answer)} is not DIRECT, PROXY HOST:PORT, HTTPS HOST:PORT or SOCKS HOST:PORT`);
  }
  if (entries.length === 0) {
    throw bad(`the answer ${JSON.stringify(answer)} names only SOCKS proxies, which bbgate does not support: it tunnels through HTTP proxies (PROXY or HTTPS entries) or connects DIRECT`);
  }
  return { entries, skipped };
}

function proxyEntry(keyword: 'PROXY' | 'HTTP' | 'HTTPS', address: string, text: string): PacEntry {
  const scheme = keyword === 'HTTPS' ? 'https' : 'http';
  // A host and port only: anything that would make a URL of more (user info, a path) is refused.
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/.test(address)) {
    throw bad(`the entry ${JSON.stringify(text)} does not name a HOST:PORT`);
  }
  try {
    return { kind: 'proxy', proxy: proxyFromUrl(`${scheme}://${address}`, { source: 'pac' }), text };
  } catch {
    throw bad(`the entry ${JSON.stringify(text)} does not name a valid HOST:PORT`);
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return `a ${typeof value}`;
}

function bad(message: string): ProxyError {
  return new ProxyError('PROXY_PAC_ANSWER', message);
}
