import { BbgateError } from '../errors.js';
import { offeredSchemes, parseChallenges } from './auth/challenges.js';
import type { ConnectReply } from './reply.js';

/** A proxy could not be reached, or would not open the tunnel (a proxy string that does not parse is ../address/proxy-string.ts's ProxySyntaxError). */
export class ProxyError extends BbgateError {}

/** Who was asked for what, named in every message; `proxy` is an origin, so it can never carry credentials. */
export interface Attempt {
  proxy: string;
  target: string;
  port: number;
}

/** Where in the handshake a failure happened decides whose fault it is. */
export type Phase = 'connect' | 'tls' | 'reply';

/** The typed error for a reply that is not 2xx. */
export function replyFailure(reply: ConnectReply, a: Attempt, credentialsSent: boolean): ProxyError {
  const squid = reply.headers['x-squid-error'] ? ` (X-Squid-Error: ${reply.headers['x-squid-error']})` : '';
  const said = `it answered "${reply.statusLine}"${squid}`;
  switch (reply.statusCode) {
    case 407: {
      const schemes = offeredSchemes(parseChallenges(reply.proxyAuthenticate));
      const offered = schemes.length ? `it offers ${schemes.join(', ')}` : 'it names no authentication scheme';
      const sent = credentialsSent
        ? 'the credentials sent were rejected'
        : `no credentials were sent: put them in the proxy URL, ${schemes.some((s) => /^(ntlm|negotiate)$/i.test(s)) ? 'http://DOMAIN%5CUSER:PASSWORD@HOST:PORT (NTLM)' : 'http://USER:PASSWORD@HOST:PORT'}`;
      return new ProxyError('PROXY_AUTH_REQUIRED', `the proxy ${a.proxy} requires authentication to tunnel to ${a.target}: ${said}; ${offered}; ${sent}`);
    }
    case 403:
      return new ProxyError('PROXY_FORBIDDEN', `the proxy ${a.proxy} refuses to tunnel to ${a.target}: ${said}; proxies often allow CONNECT only to port 443, so ask its administrators to allow port ${a.port}`);
    case 502:
    case 503:
    case 504:
      return new ProxyError('PROXY_BAD_GATEWAY', `the proxy ${a.proxy} could not reach the master at ${a.target}: ${said}; the master may be down, or not reachable from the proxy`);
    default:
      return new ProxyError('PROXY_ERROR', `the proxy ${a.proxy} would not tunnel to ${a.target}: ${said}`);
  }
}

/** The proxy answered the last leg of `scheme` with another 407: the credentials are wrong (the user name is not named: it may be sensitive too). */
export function authRejected(scheme: string, reply: ConnectReply, a: Attempt, hashed: boolean): ProxyError {
  const fix = {
    NTLM: `check the domain, user name and ${hashed ? 'hash (made by `bbgate ntlm-hash` for this very user and domain)' : 'password'}: DOMAIN%5CUSER or USER@DOMAIN in the proxy URL; NTLMv2 responses depend on the domain as well`,
    Negotiate: 'the proxy refused the Kerberos ticket: check that its service principal HTTP/<proxy host> is the one the proxy holds, and the clocks of both sides',
    Basic: 'check the user name and password in the proxy URL',
  }[scheme] ?? 'check the credentials';
  return new ProxyError('PROXY_AUTH_FAILED', `the proxy ${a.proxy} rejected the ${scheme} credentials (to tunnel to ${a.target}): it answered "${reply.statusLine}" to the last ${scheme} message; ${fix}`);
}

/** Credentials were given, but none of the schemes the proxy offers can use them (or the forced one is not offered). */
export function authUnsupported(offered: string[], a: Attempt, forced: string | undefined, hashed: boolean): ProxyError {
  const list = offered.length ? offered.join(', ') : 'no scheme at all';
  const why = forced
    ? `the proxy string forces ${forced} (#auth=${forced.toLowerCase()}), which it does not offer`
    : hashed
      ? 'a hash (#hash=) works with NTLM only'
      : 'bbgate speaks Basic, NTLM and Negotiate (Negotiate needs a Kerberos ticket: run kinit)';
  return new ProxyError('PROXY_AUTH_UNSUPPORTED', `the proxy ${a.proxy} offers ${list} to tunnel to ${a.target}; ${why}`);
}

/** The proxy's half of a multi-leg scheme made no sense (a malformed NTLM challenge, say). */
export function authProtocolFailure(scheme: string, err: Error, a: Attempt): ProxyError {
  return new ProxyError('PROXY_AUTH_PROTOCOL', `the proxy ${a.proxy} broke the ${scheme} handshake (to tunnel to ${a.target}): ${err.message}`, { cause: err });
}

/** A multi-leg scheme lost the connection its state lives on. */
export function authConnectionLost(scheme: string, a: Attempt): ProxyError {
  return new ProxyError(
    'PROXY_CLOSED',
    `the proxy ${a.proxy} closed the connection in the middle of the ${scheme} handshake (to tunnel to ${a.target}); ${scheme}'s messages must all ride one connection, so something between here and the proxy does not keep connections open`,
  );
}

/** The typed error for a socket error, by phase: before the proxy answered, the master was never involved. */
export function socketFailure(err: NodeJS.ErrnoException, phase: Phase, a: Attempt): ProxyError {
  const errno = err.code ?? '';
  const reset = errno === 'ECONNRESET' || errno === 'EPIPE';
  if (phase === 'tls') {
    const why = reset ? 'the connection was closed during the handshake (is it a plain http:// proxy?)' : `${errno ? `${errno}: ` : ''}${err.message}`;
    return new ProxyError('PROXY_TLS', `TLS with the proxy ${a.proxy} failed (to tunnel to ${a.target}): ${why}`, { cause: err });
  }
  if (phase === 'reply' || reset) {
    return new ProxyError('PROXY_CLOSED', `the connection to the proxy ${a.proxy} failed (${errno || err.message}) before it answered CONNECT ${a.target}`, { cause: err });
  }
  const unreachable = `cannot reach the proxy ${a.proxy} (to tunnel to ${a.target})`;
  switch (errno) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new ProxyError('PROXY_DNS', `cannot resolve the host name of the proxy ${a.proxy} (${errno}), so the master ${a.target} was not tried`, { cause: err });
    case 'ECONNREFUSED':
      return new ProxyError('PROXY_REFUSED', `${unreachable}: connection refused, nothing listens there`, { cause: err });
    case 'ETIMEDOUT':
      return new ProxyError('PROXY_TIMEOUT', `${unreachable}: the connection timed out (a firewall may be dropping it)`, { cause: err });
    default:
      return new ProxyError('PROXY_UNREACHABLE', `${unreachable}: ${describe(err)}`, { cause: err });
  }
}

/** When the proxy's name has several addresses, net fails with an AggregateError whose own message is empty. */
function describe(err: Error): string {
  return err instanceof AggregateError ? err.errors.map((e: Error) => e.message).join('; ') : err.message;
}

/** The proxy closed the connection cleanly before its header block was complete. */
export function closedFailure(phase: Phase, bytes: number, a: Attempt): ProxyError {
  if (phase === 'tls') return new ProxyError('PROXY_TLS', `TLS with the proxy ${a.proxy} failed (to tunnel to ${a.target}): the connection was closed during the handshake (is it a plain http:// proxy?)`);
  const when = bytes ? `in the middle of its answer (after ${bytes} bytes)` : 'without answering';
  return new ProxyError('PROXY_CLOSED', `the proxy ${a.proxy} closed the connection ${when} to CONNECT ${a.target}`);
}

/** No progress within the time allowed for this phase. */
export function timeoutFailure(phase: Phase, seconds: number, a: Attempt): ProxyError {
  const message = {
    connect: `no connection to the proxy ${a.proxy} within ${seconds} s (to tunnel to ${a.target}); a firewall may be dropping packets to it, or it is down`,
    tls: `the TLS handshake with the proxy ${a.proxy} did not finish within ${seconds} s (to tunnel to ${a.target})`,
    reply: `the proxy ${a.proxy} did not answer CONNECT ${a.target} within ${seconds} s; it may still be trying to reach the master, or it is not an HTTP proxy`,
  }[phase];
  return new ProxyError('PROXY_TIMEOUT', message);
}
