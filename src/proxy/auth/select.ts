import type { ProxyConfig } from '../../address/proxy-string.js';
import { basicToken } from '../../address/proxy-string.js';
import { BasicExchange } from './basic.js';
import type { AuthChallenge } from './challenges.js';
import { ntlmCredentials, type NtlmSecret } from './ntlm/credentials.js';
import { NtlmExchange } from './ntlm/exchange.js';
import type { AuthExchange, AuthSchemeName } from './scheme.js';

/** Makes a Negotiate (Kerberos) exchange for `HTTP/<proxy host>`, or undefined without Kerberos credentials. */
export type NegotiateFactory = (proxyHost: string) => Promise<AuthExchange | undefined>;

/**
 * Where Negotiate plugs in: ./negotiate.ts's createNegotiateExchange (issue 12's Kerberos part).
 * Until it is there, no Kerberos credentials are ever "at hand", so NTLM or Basic is used.
 */
const noKerberos: NegotiateFactory = async () => undefined;

/** Strongest first: Negotiate only when Kerberos credentials exist, then NTLM, then Basic. */
const PREFERENCE: AuthSchemeName[] = ['Negotiate', 'NTLM', 'Basic'];

export type Selection = { exchange: AuthExchange } | { exchange?: undefined; why: 'no-credentials' | 'unsupported' };

/**
 * The exchange for a 407's challenges: the scheme the proxy string forces (#auth=), or the first
 * of PREFERENCE the proxy offers and bbgate has credentials for. A hashed credential (#hash=) is
 * NTLM's alone: Basic would send the hash as if it were the password.
 */
export async function selectExchange(challenges: AuthChallenge[], proxy: ProxyConfig, proxyHost: string, negotiate: NegotiateFactory = noKerberos): Promise<Selection> {
  const offered = new Set(challenges.map((c) => c.scheme.toLowerCase()));
  const candidates = proxy.auth ? [proxy.auth] : PREFERENCE;
  for (const scheme of candidates) {
    if (!offered.has(scheme.toLowerCase())) continue;
    const exchange = await exchangeFor(scheme, proxy, proxyHost, negotiate);
    if (exchange) return { exchange };
  }
  return { why: proxy.username !== undefined || proxy.password !== undefined ? 'unsupported' : 'no-credentials' };
}

/** The exchange of a forced Basic, sent with the first CONNECT (no 407 needed to know the scheme). */
export function preemptiveExchange(proxy: ProxyConfig): AuthExchange | undefined {
  return proxy.auth === 'Basic' && proxy.password !== undefined && !proxy.passwordHash ? new BasicExchange(basicToken(proxy)) : undefined;
}

async function exchangeFor(scheme: AuthSchemeName, proxy: ProxyConfig, proxyHost: string, negotiate: NegotiateFactory): Promise<AuthExchange | undefined> {
  switch (scheme) {
    case 'Negotiate':
      return negotiate(proxyHost);
    case 'NTLM': {
      const secret = ntlmSecret(proxy);
      return proxy.username && secret ? new NtlmExchange(ntlmCredentials(proxy.username, secret)) : undefined;
    }
    case 'Basic':
      return proxy.password !== undefined && !proxy.passwordHash ? new BasicExchange(basicToken(proxy)) : undefined;
  }
}

function ntlmSecret(proxy: ProxyConfig): NtlmSecret | undefined {
  if (proxy.password === undefined) return undefined;
  if (proxy.passwordHash === 'nt') return { kind: 'nt-hash', hash: Buffer.from(proxy.password, 'hex') };
  if (proxy.passwordHash === 'ntlmv2') return { kind: 'ntlmv2-hash', hash: Buffer.from(proxy.password, 'hex') };
  return { kind: 'password', password: proxy.password };
}
