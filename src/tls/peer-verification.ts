import { isIP } from 'node:net';
import { checkServerIdentity, type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import { BbgateError } from '../errors.js';
import { certificateNames, describeCertificate, pinOf } from './describe.js';
import type { Trust } from './trust.js';

/** The certificates the server presented, leaf first, completed by Node with any issuer it found in our trust store. */
function peerChain(socket: TLSSocket): PeerCertificate[] {
  const chain: PeerCertificate[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.fingerprint256 && !chain.some((c) => c.fingerprint256 === cert!.fingerprint256)) {
    chain.push(cert);
    cert = cert.issuerCertificate;
  }
  return chain;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
]);

const OTHER_FAILURES: Record<string, string> = {
  INVALID_PURPOSE: 'is not meant for TLS servers (its extendedKeyUsage lacks serverAuth)',
};

function chainFailure(code: string, chain: PeerCertificate[], trust: Trust): BbgateError {
  const described = chain.map((c) => describeCertificate(c));
  const leaf = described[0]!;
  const whose = (i: number) => (i === 0 ? `the server's certificate "${leaf.subject}"` : `the certificate "${described[i]!.subject}" in the server's chain`);
  const now = new Date();
  if (code === 'CERT_HAS_EXPIRED') {
    const i = Math.max(0, described.findIndex((d) => now.getTime() > Date.parse(d.validTo)));
    return new BbgateError('TLS_EXPIRED', `${whose(i)} expired on ${described[i]!.validTo} (this machine's clock says ${now.toISOString()}): the master needs a renewed certificate`);
  }
  if (code === 'CERT_NOT_YET_VALID') {
    const i = Math.max(0, described.findIndex((d) => now.getTime() < Date.parse(d.validFrom)));
    return new BbgateError(
      'TLS_NOT_YET_VALID',
      `${whose(i)} is not valid before ${described[i]!.validFrom}, and this machine's clock says ${now.toISOString()}: check this machine's clock`,
    );
  }
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    const keep = trust.roots?.kind === 'file' ? `append a copy of it to ${trust.roots.path}` : `put a copy of it in ${trust.roots?.path ?? 'a trustRoots directory'}`;
    return new BbgateError(
      'TLS_SELF_SIGNED',
      `${whose(0)} is self-signed and not in ${trust.description}: to trust exactly this certificate, ${keep}, or pin it with fingerprint=${pinOf(leaf)} ` +
        `(its SHA-256 fingerprint is ${leaf.fingerprint256}: compare it with the master's before trusting it)`,
    );
  }
  const where = trust.roots ? `add that CA's certificate to ${trust.roots.path}` : "give trustRoots= a directory or PEM file holding that CA's certificate";
  if (UNTRUSTED.has(code)) {
    const top = described[described.length - 1]!;
    const story =
      top === leaf
        ? `was issued by "${leaf.issuer}"`
        : top.subject === top.issuer
          ? `chains up to the root CA "${top.subject}"`
          : `chains up to "${top.subject}", issued by "${top.issuer}"`;
    return new BbgateError('TLS_UNTRUSTED', `${whose(0)} ${story}, which is not in ${trust.description}: ${where}`);
  }
  const what = OTHER_FAILURES[code];
  return new BbgateError('TLS_UNTRUSTED', `${whose(0)} failed verification against ${trust.description}${what ? `: it ${what}` : ''} (OpenSSL: ${code})`);
}

function nameFailure(host: string, leaf: PeerCertificate): BbgateError {
  const described = describeCertificate(leaf);
  const names = certificateNames(described);
  const message = isIP(host)
    ? `the server's certificate "${described.subject}" is for ${names}, not for the IP address ${host}: connect by a name it lists, or have the master's certificate list ${host} as an "IP Address" subjectAltName`
    : `the server's certificate "${described.subject}" is for ${names}, not for "${host}": connect by a name it lists, or have the master's certificate include ${host}`;
  return new BbgateError('TLS_HOSTNAME', message);
}

/** Whether the server's certificate is the one pinned (64 hex digits, as `pinOf` writes it). */
export function checkPin(socket: TLSSocket, pinned: string): BbgateError | undefined {
  const leaf = describeCertificate(socket.getPeerCertificate());
  if (pinOf(leaf) === pinned) return undefined;
  return new BbgateError(
    'TLS_FINGERPRINT',
    `the server's certificate "${leaf.subject}" (issued by "${leaf.issuer}") has the SHA-256 fingerprint ${pinOf(leaf)}, not the pinned ${pinned}: ` +
      'it is not the certificate fingerprint= names',
  );
}

/**
 * What is wrong with the server's identity, if anything: OpenSSL's verdict on the chain (already
 * reached during the handshake, against our trust store), then, when `host` is given, whether
 * the certificate names it.
 */
export function verifyPeer(socket: TLSSocket, host: string | undefined, trust: Trust): BbgateError | undefined {
  const chain = peerChain(socket);
  if (!socket.authorized) return chainFailure(String(socket.authorizationError), chain, trust);
  if (host !== undefined && checkServerIdentity(host, chain[0]!)) return nameFailure(host, chain[0]!);
  return undefined;
}
