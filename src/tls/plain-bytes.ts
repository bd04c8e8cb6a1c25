/**
 * Whether bytes a peer sent during the handshake cannot be TLS: every TLS record starts with a
 * content type from 20 to 24 and the major version 3. No bytes at all prove nothing.
 */
export function isPlainBytes(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  return bytes[0]! < 0x14 || bytes[0]! > 0x18 || (bytes.length > 1 && bytes[1] !== 0x03);
}

const KNOWN: [test: (bytes: Buffer) => boolean, what: string][] = [
  // Banana: a two-element list (02 80) of the dialects the PB server offers, "pb" first.
  [(b) => b[0] === 0x02 && b[1] === 0x80 && b.includes('pb'), 'a Buildbot PB greeting, sent without TLS'],
  [(b) => b.subarray(0, 5).toString('latin1') === 'HTTP/', 'an HTTP server'],
  [(b) => b.subarray(0, 4).toString('latin1') === 'SSH-', 'an SSH server'],
];

function isText(bytes: Buffer): boolean {
  return bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
}

/** The bytes as a person can read them (text if they are text, hex otherwise), and what sent them if recognisable. */
export function describePlainBytes(bytes: Buffer): string {
  const shown = isText(bytes) ? JSON.stringify(bytes.toString('latin1')) : `hex ${bytes.toString('hex').replace(/(..)(?!$)/g, '$1 ')}`;
  const known = KNOWN.find(([test]) => test(bytes));
  return known ? `${shown}: ${known[1]}` : shown;
}
