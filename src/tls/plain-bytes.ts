/**
 * Whether bytes a peer sent during the handshake cannot be TLS: every TLS record starts with a
 * content type from 20 to 24 and the major version 3. No bytes at all prove nothing.
 */
export function isPlainBytes(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  return bytes[0]! < 0x14 || bytes[0]! > 0x18 || (bytes.length > 1 && bytes[1] !== 0x03);
}
