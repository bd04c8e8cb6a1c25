export interface PemBlock {
  /** What the block holds: `CERTIFICATE`, `PRIVATE KEY`, `RSA PRIVATE KEY`, … */
  label: string;
  /** The whole block, armour lines included. */
  text: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The PEM blocks in a text, in order; anything between them is ignored, as OpenSSL does. */
export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(BLOCK)].map((m) => ({ label: m[1]!, text: m[0] }));
}

export function isPrivateKeyLabel(label: string): boolean {
  return label.endsWith('PRIVATE KEY');
}
