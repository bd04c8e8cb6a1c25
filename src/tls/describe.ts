import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

/** A certificate as people read it: the same shape whether Node parsed it from a file or got it from a peer. */
export interface CertificateDescription {
  /** `CN=…, O=…`, in the certificate's own order. */
  subject: string;
  issuer: string;
  /** ISO 8601 (the certificate's notBefore / notAfter). */
  validFrom: string;
  validTo: string;
  /** subjectAltName entries as OpenSSL prints them: `DNS:localhost`, `IP Address:127.0.0.1`. */
  san: string[];
  /** SHA-256 of the DER, colon-separated hex: what people compare out of band. */
  fingerprint256: string;
}

type PeerName = Record<string, string | string[] | undefined>;

function peerName(name: PeerName | undefined): string {
  return Object.entries(name ?? {})
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${key}=${v}`))
    .join(', ');
}

function isoDate(text: string): string {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}

// Node writes an entry holding a comma as a JSON string (DNS:"a\u002cb"), so split only on
// commas outside quotes, then unquote.
const SAN_ENTRY = /(?:[^,"]|"(?:[^"\\]|\\.)*")+/g;
const QUOTED = /^([^:]+):(".*")$/;

function sanEntries(text: string | undefined): string[] {
  return (text?.match(SAN_ENTRY) ?? [])
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const quoted = QUOTED.exec(entry);
      return quoted ? `${quoted[1]}:${JSON.parse(quoted[2]!) as string}` : entry;
    });
}

export function describeCertificate(cert: X509Certificate | PeerCertificate): CertificateDescription {
  if (cert instanceof X509Certificate) {
    return {
      subject: cert.subject.split('\n').join(', '),
      issuer: cert.issuer.split('\n').join(', '),
      validFrom: isoDate(cert.validFrom),
      validTo: isoDate(cert.validTo),
      san: sanEntries(cert.subjectAltName),
      fingerprint256: cert.fingerprint256,
    };
  }
  return {
    subject: peerName(cert.subject as unknown as PeerName),
    issuer: peerName(cert.issuer as unknown as PeerName),
    validFrom: isoDate(cert.valid_from),
    validTo: isoDate(cert.valid_to),
    san: sanEntries(cert.subjectaltname),
    fingerprint256: cert.fingerprint256,
  };
}

/** A certificate's fingerprint as fingerprint= pins it (and a tls: string takes it unescaped): 64 upper-case hex digits. */
export function pinOf(description: CertificateDescription): string {
  return description.fingerprint256.replace(/:/g, '');
}

/** The names a certificate answers to: its subjectAltName entries, or its CN when it has none. */
export function certificateNames(description: CertificateDescription): string {
  if (description.san.length > 0) return description.san.join(', ');
  const cn = /(?:^|, )CN=([^,]*)/.exec(description.subject)?.[1];
  return cn === undefined ? 'no name at all' : `CN=${cn} only (no subjectAltName)`;
}
