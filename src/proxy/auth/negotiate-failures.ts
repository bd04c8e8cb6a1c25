import { BbgateError, type ErrorCode } from '../../errors.js';

/** Negotiate (SPNEGO/Kerberos) could not produce a token for the proxy; the code says why. */
export class NegotiateError extends BbgateError {}

/**
 * What a Kerberos failure means, from the text GSSAPI gives it (major status, then MIT krb5's
 * minor status): the binding passes on only that text, not the status numbers. Matched on
 * MIT's fixed English strings (krb5's error table; libkrb5 is not translated on Debian).
 * First match wins: an expired ticket can also be reported as "no credentials".
 */
const KNOWN: Array<{ code: ErrorCode; pattern: RegExp; say: (spn: string) => string }> = [
  {
    code: 'PROXY_AUTH_NEGOTIATE_EXPIRED',
    pattern: /Ticket expired|credential\(s\) (have )?expired|Credentials expired/i,
    say: () => 'the Kerberos ticket has expired: run kinit again (or kinit -R while it is renewable)',
  },
  {
    code: 'PROXY_AUTH_NEGOTIATE_CLOCK_SKEW',
    pattern: /Clock skew too great/i,
    say: () => 'the KDC says this machine\'s clock is too far from its own (Kerberos allows 5 minutes): set the clock (NTP), then run kinit again',
  },
  {
    code: 'PROXY_AUTH_NEGOTIATE_UNKNOWN_SERVICE',
    pattern: /not found in Kerberos database|Server not found/i,
    say: (spn) => `the KDC knows no service principal ${spn}: name the proxy by the host name its Kerberos principal was registered for (often its fully qualified name, not an alias or an IP address)`,
  },
  {
    code: 'PROXY_AUTH_NEGOTIATE_KDC_UNREACHABLE',
    pattern: /Cannot contact any KDC|Cannot find KDC|Cannot resolve network address for KDC/i,
    say: () => 'no Kerberos KDC could be reached for the realm: check the realm\'s kdc entries in krb5.conf (KRB5_CONFIG) and the network path to them',
  },
  {
    code: 'PROXY_AUTH_NEGOTIATE_NO_TICKET',
    pattern: /No credentials were supplied|No Kerberos credentials|No credentials cache found|credentials cache .*not found|cannot find mechanisms to negotiate/i,
    say: () => `there is no Kerberos ticket (${whereTickets()}): run kinit, or name a client keytab in KRB5_CLIENT_KTNAME`,
  },
];

/** A failure of gss_init_sec_context (or of naming the service) as a typed error. */
export function gssFailure(err: unknown, proxyHost: string, spn: string): NegotiateError {
  // MIT puts "Unspecified GSS failure.  Minor code may provide more information: " before most
  // Kerberos errors; the minor status after it is the part that says anything.
  const detail = (err instanceof Error ? err.message : String(err)).replace(/^Unspecified GSS failure\.\s+Minor code may provide more information:\s*/, '').trim();
  const known = KNOWN.find((k) => k.pattern.test(detail));
  const what = known ? known.say(spn) : 'Kerberos failed';
  return new NegotiateError(
    known?.code ?? 'PROXY_AUTH_NEGOTIATE_FAILED',
    `Negotiate (Kerberos) authentication to the proxy ${proxyHost} failed: ${what} (GSSAPI: ${detail || 'no detail'})`,
    { cause: err },
  );
}

export function unavailable(proxyHost: string, reason: string): NegotiateError {
  return new NegotiateError('PROXY_AUTH_NEGOTIATE_UNAVAILABLE', `Negotiate (Kerberos) authentication to the proxy ${proxyHost} is unavailable: ${reason}`);
}

/** Kerberos took longer than its share of the handshake's time: most often a KDC that does not answer (off the VPN). */
export function kerberosTimeout(proxyHost: string, ms: number): NegotiateError {
  return new NegotiateError(
    'PROXY_AUTH_NEGOTIATE_KDC_UNREACHABLE',
    `Negotiate (Kerberos) authentication to the proxy ${proxyHost} failed: no Kerberos ticket for HTTP/${proxyHost} within ${(ms / 1000).toFixed(1)} s (a KDC that does not answer?)`,
  );
}

/** Where krb5 looks for tickets, so that "no ticket" says which cache was empty. Paths, never secrets. */
function whereTickets(): string {
  const cache = process.env.KRB5CCNAME ? `cache ${process.env.KRB5CCNAME}` : 'the default cache';
  return process.env.KRB5_CLIENT_KTNAME ? `${cache}, client keytab ${process.env.KRB5_CLIENT_KTNAME}` : cache;
}
