import { isIP, type Socket } from 'node:net';
import { hostPort, isPort } from '../address/host-port.js';
import type { ProxyConfig } from '../address/proxy-string.js';
import { isBbgateError } from '../errors.js';
import { VERSION } from '../version.js';
import { offeredSchemes, parseChallenges, type AuthChallenge } from './auth/challenges.js';
import type { AuthExchange, AuthSchemeName } from './auth/scheme.js';
import { preemptiveExchange, selectExchange, type NegotiateFactory } from './auth/select.js';
import { authConnectionLost, authProtocolFailure, authRejected, authUnsupported, ProxyError, replyFailure, type Attempt } from './failures.js';
import { ProxyLink } from './link.js';
import type { ConnectReply } from './reply.js';

export interface TunnelOptions {
  /** Bounds the whole handshake: reaching the proxy, TLS with it, every authentication leg, and its answer. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** CA certificates (PEM) that verify an https:// proxy, in place of Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Makes Negotiate exchanges (tests and the Kerberos part pass one); without it Negotiate is never chosen. */
  negotiate?: NegotiateFactory;
}

/** One request of the handshake and what the proxy said to it, for the probe's --verbose. */
export interface AuthLeg {
  /** `CONNECT` (no credentials), or the scheme's message: `NTLM negotiate`, `NTLM authenticate`, `Basic`, `Negotiate`. */
  sent: string;
  /** The status code of the answer, with the schemes a 407 offered or whether it carried a challenge. */
  answer: string;
  ms: number;
  /** True when this leg went out on a new connection, the proxy having closed the last one. */
  reconnected: boolean;
}

export interface TunnelAuth {
  /** The schemes the proxy's first 407 offered (empty when no 407 came). */
  offered: string[];
  /** The scheme that got through, if any was needed. */
  scheme?: AuthSchemeName;
  legs: AuthLeg[];
}

export interface Tunnel {
  /** The connection to the proxy, now a byte pipe to host:port; bytes the far end sent along with the reply are buffered in it, first in line. */
  socket: Socket;
  statusLine: string;
  headers: Record<string, string>;
  auth: TunnelAuth;
}

/**
 * Opens an HTTP CONNECT tunnel to host:port through the proxy, authenticating as its 407s ask:
 * the first CONNECT goes without credentials (unless the proxy string forces Basic), so that a
 * password never travels as Basic to a proxy that would have taken NTLM or Negotiate. Legs of a
 * multi-leg scheme ride one connection; when the proxy closes after a 407 that starts a scheme,
 * the next leg opens a new one. Written on `net`/`tls` rather than undici's Client#connect, which
 * drops the reason phrase of the status line and cannot say which step failed.
 */
export async function connectThroughProxy(proxy: ProxyConfig, host: string, port: number, options: TunnelOptions): Promise<Tunnel> {
  const target = hostPort(host, port);
  const attempt: Attempt = { proxy: proxy.url.origin, target, port };
  checkTarget(host, port, attempt);
  options.signal?.throwIfAborted();
  const linkOptions = { deadline: Date.now() + options.timeoutMs, timeoutMs: options.timeoutMs, ...(options.signal ? { signal: options.signal } : {}), ...(options.ca ? { ca: options.ca } : {}) };
  const open = () => ProxyLink.open(proxy, attempt, linkOptions);
  const auth: TunnelAuth = { offered: [], legs: [] };

  let exchange: AuthExchange | undefined = preemptiveExchange(proxy);
  let authorization = exchange ? await exchange.step(undefined) : undefined;
  /** Legs of `exchange` sent so far, and what the request about to go carries, by name. */
  let sent = exchange ? 1 : 0;
  let sending = exchange ? legName(exchange, sent) : 'CONNECT';
  const bound = () => exchange !== undefined && !exchange.done && sent > 0;
  /**
   * Whether the request about to go may go again on a new connection: a CONNECT without
   * credentials, Basic, or NTLM's NEGOTIATE carry no state of a connection; NTLM's AUTHENTICATE
   * answers this connection's challenge, and a Kerberos token is good for one use.
   */
  const replayable = () => exchange === undefined || (sent <= 1 && exchange.scheme !== 'Negotiate');
  let link = await open();
  let reconnected = false;
  try {
    for (;;) {
      const started = performance.now();
      let reply: ConnectReply;
      try {
        reply = await link.request(request(target, authorization));
      } catch (err) {
        // A proxy may close a kept-alive connection right after its 407 without saying so: a leg
        // that carries no connection-bound state may go again, once, on a new connection.
        const closedAfterReply = isBbgateError(err) && err.code === 'PROXY_CLOSED' && link.replies > 0;
        if (closedAfterReply && exchange && !replayable()) throw authConnectionLost(exchange.scheme, attempt);
        if (!closedAfterReply || reconnected) throw err;
        link.destroy();
        link = await open();
        reconnected = true;
        reply = await link.request(request(target, authorization));
      }
      const challenges = parseChallenges(reply.proxyAuthenticate);
      if (reply.statusCode === 407 && auth.offered.length === 0) auth.offered = offeredSchemes(challenges);
      auth.legs.push({ sent: sending, answer: answerName(reply, challenges, exchange), ms: performance.now() - started, reconnected });
      reconnected = false;
      if (reply.statusCode >= 200 && reply.statusCode <= 299) {
        if (exchange) auth.scheme = exchange.scheme;
        return { socket: link.release(), statusLine: reply.statusLine, headers: reply.headers, auth };
      }
      if (reply.statusCode !== 407) throw replyFailure(reply, attempt, authorization !== undefined);

      const midway = bound();
      if (exchange?.done) throw authRejected(exchange.scheme, reply, attempt, proxy.passwordHash !== undefined);
      if (!exchange) {
        // Kerberos may wait on a KDC that does not answer: it gets half the time left, so that
        // NTLM or Basic credentials still have time to get through when it gives up.
        const kerberosMs = Math.max(0, (linkOptions.deadline - Date.now()) / 2);
        const selection = await selectExchange(challenges, proxy, hostOf(proxy), { kerberosMs, ...(options.negotiate ? { negotiate: options.negotiate } : {}) });
        if (!selection.exchange) {
          if (selection.why === 'no-credentials') throw replyFailure(reply, attempt, false);
          throw authUnsupported(offeredSchemes(challenges), attempt, proxy.auth, proxy.passwordHash !== undefined);
        }
        exchange = selection.exchange;
        sent = 0;
      }
      const scheme = exchange.scheme;
      const challenge = challenges.find((c) => c.scheme.toLowerCase() === scheme.toLowerCase());
      if (midway && !challenge) throw authRejected(scheme, reply, attempt, proxy.passwordHash !== undefined);
      try {
        authorization = await exchange.step(challenge?.token);
      } catch (err) {
        throw authProtocolFailure(scheme, err as Error, attempt);
      }
      sending = legName(exchange, ++sent);
      if (!(await link.finishReply(reply))) {
        if (midway) throw authConnectionLost(scheme, attempt);
        link.destroy();
        link = await open();
        reconnected = true;
      }
    }
  } catch (err) {
    link.destroy();
    throw err;
  }
}

function hostOf(proxy: ProxyConfig): string {
  return proxy.url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** What a request carried, by name, never by value. */
function legName(exchange: AuthExchange, n: number): string {
  if (exchange.scheme === 'NTLM') return n === 1 ? 'NTLM negotiate' : 'NTLM authenticate';
  return n === 1 ? exchange.scheme : `${exchange.scheme} leg ${n}`;
}

function answerName(reply: ConnectReply, challenges: AuthChallenge[], exchange: AuthExchange | undefined): string {
  if (reply.statusCode !== 407) return String(reply.statusCode);
  const own = exchange && challenges.find((c) => c.scheme.toLowerCase() === exchange.scheme.toLowerCase());
  if (own?.token) return `407 ${own.scheme} challenge`;
  const offered = offeredSchemes(challenges);
  return `407 ${offered.length ? offered.join(', ') : '(no scheme)'}`;
}

function request(target: string, authorization: string | undefined): string {
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`, `User-Agent: bbgate/${VERSION}`];
  if (authorization !== undefined) lines.push(`Proxy-Authorization: ${authorization}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The target goes into the request line and Host: anything but a plain name or address could smuggle in headers. */
function checkTarget(host: string, port: number, a: Attempt): void {
  if (!isIP(host) && !/^[A-Za-z0-9_.-]+$/.test(host)) {
    throw new ProxyError('ENDPOINT_SYNTAX', `cannot ask the proxy ${a.proxy} for ${JSON.stringify(host)}: not a host name or IP address`);
  }
  if (!isPort(port)) {
    throw new ProxyError('ENDPOINT_SYNTAX', `cannot ask the proxy ${a.proxy} for ${a.target}: ports are whole numbers from 1 to 65535`);
  }
}
