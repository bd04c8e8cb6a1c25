import { loadKerberos, type GssClient } from './kerberos-binding.js';
import { gssFailure, NegotiateError, unavailable } from './negotiate-failures.js';
import type { AuthExchange } from './scheme.js';

export { kerberosTimeout, NegotiateError } from './negotiate-failures.js';

/**
 * Negotiate (RFC 4559: SPNEGO carrying Kerberos) for a proxy, with what MIT krb5 finds on its
 * own: the ticket cache (KRB5CCNAME, filled by kinit) or a client keytab (KRB5_CLIENT_KTNAME),
 * and krb5.conf (KRB5_CONFIG). Returns undefined when there is nothing to authenticate with: no
 * ticket, no keytab, or no Kerberos library. The caller then goes on to NTLM or Basic. Kerberos
 * that is set up but fails (expired ticket, clock skew, unknown service principal, unreachable
 * KDC) throws a NegotiateError saying which.
 */
export async function createNegotiateExchange(proxyHost: string): Promise<AuthExchange | undefined> {
  try {
    return await requireNegotiateExchange(proxyHost);
  } catch (err) {
    if (err instanceof NegotiateError && (err.code === 'PROXY_AUTH_NEGOTIATE_NO_TICKET' || err.code === 'PROXY_AUTH_NEGOTIATE_UNAVAILABLE')) return undefined;
    throw err;
  }
}

/**
 * The same, for when Negotiate is the only way in (the only scheme offered, or forced): every
 * reason it cannot be used, no ticket and no library included, is a NegotiateError.
 */
export async function requireNegotiateExchange(proxyHost: string): Promise<AuthExchange> {
  const host = proxyHost.replace(/^\[(.*)\]$/, '$1');
  // GSSAPI's host-based service name: krb5 turns HTTP@host into the principal HTTP/host@REALM.
  const service = `HTTP@${host}`;
  const spn = `HTTP/${host}`;
  const load = await loadKerberos();
  if (!load.ok) throw unavailable(host, load.reason);
  const kerberos = load.binding;

  let first: string;
  let client: GssClient;
  try {
    // No mutual authentication or other flags: the answer to CONNECT is a 200 that carries no
    // token to verify, and TLS to the master, inside the tunnel, proves the far end anyway.
    client = await kerberos.initializeClient(service, { mechOID: kerberos.GSS_MECH_OID_SPNEGO, flags: 0 });
    // The first token is made now, not at the first step: it is what asks the KDC for the
    // service ticket, and so the only way to know whether there are credentials at all.
    first = await client.step('');
  } catch (err) {
    throw gssFailure(err, host, spn);
  }
  if (!first) throw gssFailure(new Error('GSSAPI produced no initial token'), host, spn);

  let legs = 0;
  return {
    scheme: 'Negotiate',
    // One leg: a Kerberos AP-REQ is all the proxy needs, so a 407 after it is a refusal.
    // (Each token goes out once: a proxy's replay cache would refuse it a second time.)
    get done() {
      return legs > 0;
    },
    async step(challenge: string | undefined): Promise<string> {
      if (legs++ === 0) return `Negotiate ${first}`;
      if (challenge === undefined) {
        throw new NegotiateError('PROXY_AUTH_NEGOTIATE_FAILED', `the proxy ${host} refused the Kerberos ticket for ${spn} (it answered 407 Negotiate again)`);
      }
      // A proxy asking for more (another SPNEGO leg): GSSAPI answers it, if it has anything to say.
      let next: string;
      try {
        next = await client.step(challenge);
      } catch (err) {
        throw gssFailure(err, host, spn);
      }
      if (!next) throw new NegotiateError('PROXY_AUTH_NEGOTIATE_FAILED', `the proxy ${host} asked for another Negotiate leg, but Kerberos had nothing more to send for ${spn}`);
      return `Negotiate ${next}`;
    },
  };
}
