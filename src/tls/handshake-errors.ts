import type { X509Certificate } from 'node:crypto';
import { BbgateError } from '../errors.js';
import { describeCertificate } from './describe.js';
import { describePeerBytes } from '../peer-bytes.js';
import { isPlainBytes } from './plain-bytes.js';

/** What we know about a failed handshake besides Node's error. */
export interface HandshakeContext {
  /** The first bytes the peer sent. */
  firstBytes: Buffer;
  /** The host we dialled. */
  serverName?: string;
  /** Ours, if we offered one. */
  clientCertificate?: X509Certificate;
}

function notTls(bytes: Buffer, cause?: unknown): BbgateError {
  return new BbgateError('TLS_NOT_TLS', `the peer answered with plain bytes, not TLS (${describePeerBytes(bytes)}): is this a plain tcp: port?`, { cause });
}

function ourCertificate(cert: X509Certificate): string {
  const { subject, issuer } = describeCertificate(cert);
  return `our client certificate "${subject}" (issued by "${issuer}")`;
}

const LOAD_BALANCER = 'a TLS-terminating load balancer or proxy with no healthy backend does this';

/** A peer that closed without a TLS alert, during the handshake or right after it. */
export function closedFailure(context: HandshakeContext, when: 'during' | 'right after', cause?: unknown): BbgateError {
  // A peer that sent something other than TLS and hung up told us what it is.
  if (isPlainBytes(context.firstBytes)) return notTls(context.firstBytes, cause);
  if (context.firstBytes.length === 0) {
    return new BbgateError(
      'TLS_HANDSHAKE',
      'the peer closed the connection during the TLS handshake without a word: it may not speak TLS on this port (a plain tcp: service), or a firewall or proxy cut the connection',
      { cause },
    );
  }
  const certificate = context.clientCertificate
    ? `it may have refused ${ourCertificate(context.clientCertificate)}`
    : 'it may require a client certificate (give certificate= and privateKey=)';
  // Right after it, the other common cause: nothing behind the server that completed the handshake.
  const guess = when === 'during' ? certificate : `${certificate}; or ${LOAD_BALANCER}`;
  return new BbgateError('TLS_HANDSHAKE', `the server closed the connection ${when} the TLS handshake, without a TLS alert: ${guess}`, { cause });
}

/** Alerts a server sends about the client's certificate. */
const CERTIFICATE_ALERTS = new Set([
  'BAD_CERTIFICATE',
  'UNSUPPORTED_CERTIFICATE',
  'CERTIFICATE_REVOKED',
  'CERTIFICATE_EXPIRED',
  'CERTIFICATE_UNKNOWN',
  'UNKNOWN_CA',
  'ACCESS_DENIED',
  'HANDSHAKE_FAILURE',
]);

function alertFailure(alert: string, context: HandshakeContext, cause: unknown): BbgateError {
  const name = `TLS alert "${alert.toLowerCase().replace(/_/g, ' ')}"`;
  const fail = (message: string) => new BbgateError('TLS_HANDSHAKE', message, { cause });
  const ours = context.clientCertificate;
  if (!ours && alert === 'CERTIFICATE_REQUIRED') {
    return fail(`the server requires a client certificate and we sent none (${name}): give certificate= (and privateKey=)`);
  }
  if (!ours && alert === 'HANDSHAKE_FAILURE') {
    return fail(`the server refused the handshake (${name}): it may require a client certificate (give certificate= and privateKey=), or share no cipher with us`);
  }
  if (ours && CERTIFICATE_ALERTS.has(alert)) {
    const why = alert === 'UNKNOWN_CA' ? ': it does not trust the CA that issued it' : '';
    return fail(`the server refused ${ourCertificate(ours)} (${name})${why}`);
  }
  if (alert === 'PROTOCOL_VERSION') return fail(`the server and bbgate have no TLS version in common (${name}; bbgate speaks TLS 1.2 and 1.3)`);
  if (alert === 'UNRECOGNIZED_NAME') return fail(`the server does not serve the name we asked for, "${context.serverName}" (${name})`);
  return fail(`the server ended the handshake with ${name}`);
}

/** Node's code for an alert received: OpenSSL's reason, e.g. ERR_SSL_TLSV1_ALERT_UNKNOWN_CA, ERR_SSL_TLSV1_UNRECOGNIZED_NAME. */
const RECEIVED_ALERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?([A-Z0-9_]+)$/;

/** A failed handshake as a typed error that says what the peer did. */
export function handshakeFailure(err: unknown, context: HandshakeContext): BbgateError {
  if (err instanceof BbgateError) return err;
  if (isPlainBytes(context.firstBytes)) return notTls(context.firstBytes, err);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const alert = /SSL alert number \d+/.test((err as Error).message) ? RECEIVED_ALERT.exec(code)?.[1] : undefined;
  if (alert) return alertFailure(alert, context, err);
  if (code === 'ECONNRESET' || code === 'EPIPE') return closedFailure(context, 'during', err);
  return new BbgateError('TLS_HANDSHAKE', `the TLS handshake failed: ${(err as Error).message}`, { cause: err });
}

/** No handshake within the time allowed. */
export function timeoutFailure(context: HandshakeContext, ms: number): BbgateError {
  if (isPlainBytes(context.firstBytes)) return notTls(context.firstBytes);
  const seconds = ms / 1000;
  return new BbgateError(
    'NET_TIMEOUT',
    context.firstBytes.length === 0
      ? `no answer to the TLS handshake within ${seconds} s: the peer accepted the connection, then said nothing (a plain tcp: service waiting for its client to speak, or a firewall swallowing TLS)`
      : `the TLS handshake did not finish within ${seconds} s`,
  );
}
