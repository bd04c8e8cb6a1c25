import type { PeerCertificate } from 'node:tls';

/**
 * The names a client certificate gives its holder, for certNames=1: the subject's common
 * name(s) and the DNS names among its subjectAltNames. Other SAN kinds (IP addresses, e-mail,
 * URIs) name no worker and are left out.
 */
export function certificateNames(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'> | undefined): string[] {
  if (!cert) return [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  const names = cn === undefined ? [] : Array.isArray(cn) ? [...cn] : [cn];
  for (const { kind, value } of subjectAltNames(cert.subjectaltname ?? '')) {
    if (kind === 'DNS') names.push(value);
  }
  return names;
}

/**
 * Node's subjectaltname string: `DNS:a.example, IP Address:10.0.0.1`, where a value holding a
 * comma, quote or other special character is written as a JSON string (`DNS:"a, b"`) so that
 * no entry can pass for two.
 */
export function subjectAltNames(text: string): { kind: string; value: string }[] {
  const entries: { kind: string; value: string }[] = [];
  const entry = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  while (entry.lastIndex < text.length) {
    const start = entry.lastIndex;
    const m = entry.exec(text);
    // Not Node's format: nothing after this point is trusted as a name.
    if (!m || entry.lastIndex === start) break;
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        break;
      }
    }
    entries.push({ kind: m[1]!, value });
  }
  return entries;
}
