/**
 * MD4 (RFC 1320), which the NT hash is made of. Node 20's OpenSSL 3 keeps MD4 in its legacy
 * provider, off by default, so `createHash('md4')` throws on a stock install; this is the small
 * pure version, only ever fed a password of a few dozen bytes.
 */
export function md4(message: Uint8Array): Buffer {
  // Padding: a 1 bit, zeros to 56 mod 64 bytes, then the bit length as 64-bit little-endian.
  const length = message.length;
  const padded = Buffer.alloc((((length + 8) >> 6) + 1) * 64);
  padded.set(message);
  padded[length] = 0x80;
  const bits = BigInt(length) * 8n;
  padded.writeBigUInt64LE(bits & 0xffffffffffffffffn, padded.length - 8);

  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;
  const x = new Uint32Array(16);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) x[i] = padded.readUInt32LE(block + i * 4);
    const [aa, bb, cc, dd] = [a, b, c, d];
    // Round 1: F(x,y,z) = xy | ~xz, words in order, shifts 3 7 11 19.
    for (const i of [0, 4, 8, 12]) {
      a = rotl(a + ((b & c) | (~b & d)) + x[i]!, 3);
      d = rotl(d + ((a & b) | (~a & c)) + x[i + 1]!, 7);
      c = rotl(c + ((d & a) | (~d & b)) + x[i + 2]!, 11);
      b = rotl(b + ((c & d) | (~c & a)) + x[i + 3]!, 19);
    }
    // Round 2: G(x,y,z) = xy | xz | yz, plus 0x5A827999, words by column, shifts 3 5 9 13.
    for (const i of [0, 1, 2, 3]) {
      a = rotl(a + ((b & c) | (b & d) | (c & d)) + x[i]! + 0x5a827999, 3);
      d = rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4]! + 0x5a827999, 5);
      c = rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8]! + 0x5a827999, 9);
      b = rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12]! + 0x5a827999, 13);
    }
    // Round 3: H(x,y,z) = x ^ y ^ z, plus 0x6ED9EBA1, words in bit-reversed order, shifts 3 9 11 15.
    for (const i of [0, 2, 1, 3]) {
      a = rotl(a + (b ^ c ^ d) + x[i]! + 0x6ed9eba1, 3);
      d = rotl(d + (a ^ b ^ c) + x[i + 8]! + 0x6ed9eba1, 9);
      c = rotl(c + (d ^ a ^ b) + x[i + 4]! + 0x6ed9eba1, 11);
      b = rotl(b + (c ^ d ^ a) + x[i + 12]! + 0x6ed9eba1, 15);
    }
    a = (a + aa) >>> 0;
    b = (b + bb) >>> 0;
    c = (c + cc) >>> 0;
    d = (d + dd) >>> 0;
  }
  const digest = Buffer.alloc(16);
  [a, b, c, d].forEach((word, i) => digest.writeUInt32LE(word >>> 0, i * 4));
  return digest;
}

function rotl(value: number, shift: number): number {
  const v = value >>> 0;
  return ((v << shift) | (v >>> (32 - shift))) >>> 0;
}
