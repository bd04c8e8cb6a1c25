import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import { domainToASCII } from 'node:url';
import { watchAcceptance } from './acceptance.js';
import { loadClientCertificate } from './client-certificate.js';
import { describeCertificate } from './describe.js';
import { FirstBytesTap } from './first-bytes.js';
import { closedFailure, handshakeFailure, timeoutFailure, type HandshakeContext } from './handshake-errors.js';
import type { TlsOptions } from './options.js';
import { checkPin, verifyPeer } from './peer-verification.js';
import { whenEnded } from '../stream-end.js';
import { resolveTrust } from './trust.js';

const DEFAULT_TIMEOUT_MS = 30_000;
/** The least time given to a TLS 1.3 server to accept or refuse us after the handshake. */
const MIN_ACCEPTANCE_WAIT_MS = 250;

async function handshake(socket: Duplex, options: TlsOptions, host: string | undefined): Promise<TLSSocket> {
  const { logger } = options;
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  // Tapped at once, so nothing the peer does while the files load goes unseen.
  const tap = new FirstBytesTap(socket);
  // Until TLS takes the stream over, a reset while the files load would be an error nobody hears.
  let early: Error | undefined;
  const onEarly = (err: Error) => {
    early ??= err;
  };
  tap.on('error', onEarly);
  // A pin without trustRoots takes the place of the chain and name checks: no CA is trusted.
  const pinOnly = options.fingerprint !== undefined && options.trustRoots === undefined;
  const trust = pinOnly ? undefined : await resolveTrust(options.trustRoots, logger);
  const client = options.certificate === undefined ? undefined : await loadClientCertificate(options.certificate, options.privateKey, logger);
  tap.off('error', onEarly);
  if (early) {
    throw closedFailure({ firstBytes: tap.firstBytes, ...(host !== undefined ? { serverName: host } : {}) }, 'during', early);
  }
  const tlsSocket = connect({
    socket: tap,
    // SNI carries DNS names only, in their ASCII form.
    ...(host !== undefined && !isIP(host) ? { servername: domainToASCII(host) || host } : {}),
    ...(trust ? { ca: trust.pem } : {}),
    ...(client ? { cert: client.cert, key: client.key } : {}),
    // Node's own check comes at the same point, right after the handshake, but destroys the
    // connection and the server's certificate with it; checking here lets the error name that
    // certificate. No application data is sent, and the socket is not handed out, before the verdict.
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  // Node emits a bad record that arrives with the handshake's last flight in the same read as
  // 'secureConnect', before any later listener exists: without this one that error would be
  // uncaught (a crashed worker, probe or relay). Destroying ends every wait on the socket.
  tlsSocket.on('error', (err) => tlsSocket.destroy(err));
  const context: HandshakeContext = {
    get firstBytes() {
      return tap.firstBytes;
    },
    ...(host !== undefined ? { serverName: host } : {}),
    ...(client ? { clientCertificate: client.leaf } : {}),
  };
  const accepted = watchAcceptance(tlsSocket);
  try {
    await secured(tlsSocket, Math.max(0, timeout - (Date.now() - started)), context, timeout);
    const handshakeMs = Date.now() - started;
    const failure = trust && verifyPeer(tlsSocket, options.verify === 'chain' ? undefined : host, trust);
    if (failure && options.verify !== 'none') throw failure;
    const wrongPin = options.fingerprint === undefined ? undefined : checkPin(tlsSocket, options.fingerprint);
    if (wrongPin) throw wrongPin;
    if (pinOnly) {
      logger?.info?.({ serverName: host }, "the server's certificate is the one fingerprint= pins; with no trustRoots, its chain and name are not checked");
    } else if (options.verify === 'none') {
      logger?.warn(
        { serverName: host, ...(failure ? { wouldHaveFailed: failure.code, reason: failure.message } : {}) },
        "TLS without verifying the server's certificate (verify none): anyone on the path can pose as the master",
      );
    } else if (options.verify === 'chain') {
      logger?.info?.({ serverName: host }, "the server's certificate chain is verified, but not the name in it (verify chain)");
    }
    const remaining = timeout - (Date.now() - started);
    if ((await accepted(Math.min(remaining, Math.max(MIN_ACCEPTANCE_WAIT_MS, 2 * handshakeMs)))) === 'closed') {
      throw closedFailure(context, 'right after');
    }
    const peer = describeCertificate(tlsSocket.getPeerCertificate());
    logger?.info?.({ serverName: host, protocol: tlsSocket.getProtocol(), cipher: tlsSocket.getCipher().name, subject: peer.subject, issuer: peer.issuer }, 'TLS established');
    return tlsSocket;
  } catch (err) {
    tlsSocket.destroy();
    throw handshakeFailure(err, context);
  }
}

/**
 * Settles at the first of the handshake's end, an error, the connection's end (also one
 * that came before the handshake began), or the deadline. The timer is ours and not
 * unref'd: it may be all that keeps the process waiting for this handshake.
 */
function secured(socket: TLSSocket, ms: number, context: HandshakeContext, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (err?: Error) => {
      clearTimeout(timer);
      stopWatching();
      socket.off('secureConnect', onSecure).off('error', finish);
      // Errors the dying socket still emits land in the listener handshake() adds at creation.
      if (err) reject(err);
      else resolve();
    };
    const onSecure = () => finish();
    const timer = setTimeout(() => finish(timeoutFailure(context, timeout)), ms);
    // An error is classified by handshakeFailure (plain bytes, an alert, a reset); a bare end is a hang-up.
    const stopWatching = whenEnded(socket, (err) => finish(err ?? closedFailure(context, 'during')));
    socket.once('secureConnect', onSecure).once('error', finish);
  });
}

/**
 * Runs a TLS client handshake over an open connection (a TCP socket or a proxy tunnel), checks
 * the server's identity as `options.verify` says, and resolves with the TLS socket once the
 * server has accepted us. Socket options (keep-alive, no-delay) belong on the raw socket.
 * Takes ownership of `socket`: on any failure it is destroyed, and the error is a BbgateError
 * (TLS_*, or NET_TIMEOUT when the peer never answers).
 */
export async function startTls(socket: Duplex, options: TlsOptions): Promise<TLSSocket> {
  const host = options.serverName?.replace(/^\[(.*)\]$/, '$1');
  try {
    if (options.verify === 'full' && !host) throw new TypeError("startTls: verify 'full' needs the serverName to check");
    return await handshake(socket, options, host);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
