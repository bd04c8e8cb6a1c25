import { EndpointSyntaxError } from './syntax-error.js';

// fingerprint=: a pin on the server's certificate (tls: and wss://, a bbgate extension): the
// SHA-256 of its DER, as `openssl x509 -noout -fingerprint -sha256` prints it.

const HEX = /^[0-9a-f]{64}$/i;
const BASE64 = /^[A-Za-z0-9+/_-]{43}=?$/;

/**
 * A pin as written, in the form kept: 64 upper-case hex digits, which a tls: string takes
 * unescaped. Takes 64 hex digits, with or without a colon between each pair (as openssl and
 * Node print them), or the 32 bytes in base64 (or base64url, padded or not), each optionally
 * after `sha256:`.
 */
export function parseFingerprint(description: string, value: string): string {
  const bare = value.replace(/^sha256:/i, '');
  const hex = bare.replace(/:/g, '');
  let bytes: Buffer | undefined;
  if (HEX.test(hex) && (hex === bare || /^([0-9a-f]{2}:){31}[0-9a-f]{2}$/i.test(bare))) bytes = Buffer.from(hex, 'hex');
  else if (BASE64.test(bare)) bytes = Buffer.from(bare.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes?.length !== 32) {
    throw new EndpointSyntaxError(
      description,
      `fingerprint= must be the SHA-256 fingerprint of the server's certificate: 64 hex digits (with or without a ":" between each pair) or 44 base64 characters, optionally after "sha256:"; not "${value}"`,
    );
  }
  return bytes.toString('hex').toUpperCase();
}
