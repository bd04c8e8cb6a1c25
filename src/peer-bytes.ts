// A peer's first bytes as messages show them, when what answered is not what was expected (TLS,
// PB, HTTP): they tell the user what listens there.

/** How many of a peer's first bytes a message shows. */
export const SHOWN_BYTES = 64;

const ESCAPES: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/**
 * The bytes in double quotes, as a person can read them and no terminal can be steered by them:
 * printable ASCII as it is, \t \r \n \" \\, every other byte as \xHH; more than `limit` bytes are
 * cut there, marked "…".
 */
export function showBytes(bytes: Buffer, limit = SHOWN_BYTES): string {
  let text = '';
  for (const b of bytes.subarray(0, limit)) {
    text += ESCAPES[b] ?? (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`);
  }
  return `"${text}"${bytes.length > limit ? '…' : ''}`;
}

const KNOWN: [test: (bytes: Buffer) => boolean, what: string][] = [
  // Banana: a list (02 80, or 03 80 from a bbgate relay, whose offer ends with its mark) of the
  // dialects the PB server offers, "pb" first.
  [(b) => b[0] === 0x03 && b[1] === 0x80 && b.includes('pb') && b.includes('bbgate-relay'), 'a bbgate relay\'s PB greeting, sent without TLS'],
  [(b) => b[0] === 0x02 && b[1] === 0x80 && b.includes('pb'), 'a Buildbot PB greeting, sent without TLS'],
  [(b) => b.subarray(0, 5).toString('latin1') === 'HTTP/', 'an HTTP server'],
  // An HTTP server answering a request it cannot parse (a TLS ClientHello) as HTTP/0.9: a bare page.
  [(b) => /^\s*<(!doctype html|html)\b/i.test(b.toString('latin1')), 'an HTTP server (a page with no status line)'],
  [(b) => b.subarray(0, 4).toString('latin1') === 'SSH-', 'an SSH server'],
  // A TLS record header: handshake (22) or alert (21), major version 3.
  [(b) => (b[0] === 0x16 || b[0] === 0x15) && b[1] === 0x03, 'a TLS server'],
];

/** The bytes shown, and what sent them when recognisable: `"SSH-2.0-OpenSSH_9.2p1\r\n": an SSH server`. */
export function describePeerBytes(bytes: Buffer): string {
  const known = KNOWN.find(([test]) => test(bytes));
  return known ? `${showBytes(bytes)}: ${known[1]}` : showBytes(bytes);
}
