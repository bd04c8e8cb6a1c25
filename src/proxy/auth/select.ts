import type { ProxyConfig } from '../../address/proxy-string.js';
import { withDeadline } from '../../deadline.js';
import { basicToken } from '../../address/proxy-string.js';
import { BasicExchange } from './basic.js';
import type { AuthChallenge } from './challenges.js';
import { ntlmCredentials, type NtlmSecret } from './ntlm/credentials.js';
import { NtlmExchange } from './ntlm/exchange.js';
import { createNegotiateExchange, kerberosTimeout, requireNegotiateExchange } from './negotiate.js';
import type { AuthExchange, AuthSchemeName } from './scheme.js';

/**
 * Makes a Negotiate (Kerberos) exchange for `HTTP/<proxy host>`. Not `required` (the proxy offers
 * another scheme too): undefined without Kerberos credentials or library, so NTLM or Basic goes
 * next. `required` (forced, or the only scheme offered): every reason it cannot is an error that
 * says which (no ticket: run kinit).
 */
export type NegotiateFactory = (proxyHost: string, required: boolean) => Promise<AuthExchange | undefined>;

const kerberos: NegotiateFactory = (proxyHost, required) => (required ? requireNegotiateExchange(proxyHost) : createNegotiateExchange(proxyHost));

/** Strongest first: Negotiate only when Kerberos credentials exist, then NTLM, then Basic. */
const PREFERENCE: AuthSchemeName[] = ['Negotiate', 'NTLM', 'Basic'];

export type Selection = { exchange: AuthExchange } | { exchange?: undefined; why: 'no-credentials' | 'unsupported' };

/**
 * The exchange for a 407's challenges: the scheme the proxy string forces (#auth=), or the first
 * of PREFERENCE the proxy offers and bbgate has credentials for. A hashed credential (#hash=) is
 * NTLM's alone: Basic would send the hash as if it were the password. Kerberos that is set up but
 * broken (an expired ticket, clock skew) is the error only when no NTLM or Basic credentials can
 * take its place.
 */
export interface SelectOptions {
  /** How long Kerberos may take to make its token (it may wait on a KDC) before it counts as failed. */
  kerberosMs: number;
  negotiate?: NegotiateFactory;
}

export async function selectExchange(challenges: AuthChallenge[], proxy: ProxyConfig, proxyHost: string, { kerberosMs, negotiate = kerberos }: SelectOptions): Promise<Selection> {
  const offered = new Set(challenges.map((c) => c.scheme.toLowerCase()));
  const schemes = (proxy.auth ? [proxy.auth] : PREFERENCE).filter((scheme) => offered.has(scheme.toLowerCase()));
  const byPassword = schemes.map((scheme) => passwordExchange(scheme, proxy)).find((exchange) => exchange !== undefined);
  if (schemes.includes('Negotiate')) {
    try {
      const exchange = await withDeadline(negotiate(proxyHost, schemes.length === 1), kerberosMs, () => kerberosTimeout(proxyHost, kerberosMs));
      if (exchange) return { exchange };
    } catch (err) {
      if (!byPassword) throw err;
    }
  }
  if (byPassword) return { exchange: byPassword };
  return { why: proxy.username !== undefined || proxy.password !== undefined ? 'unsupported' : 'no-credentials' };
}

/** The exchange of a forced Basic, sent with the first CONNECT (no 407 needed to know the scheme). */
export function preemptiveExchange(proxy: ProxyConfig): AuthExchange | undefined {
  return proxy.auth === 'Basic' && proxy.password !== undefined && !proxy.passwordHash ? new BasicExchange(basicToken(proxy)) : undefined;
}

/** NTLM's or Basic's exchange when the proxy string holds what it needs; Negotiate needs no password. */
function passwordExchange(scheme: AuthSchemeName, proxy: ProxyConfig): AuthExchange | undefined {
  switch (scheme) {
    case 'Negotiate':
      return undefined;
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
