// The streaming UTF-8 decoder of a command's output: however the bytes are cut into reads, what
// it gives is what TextDecoder gives for the whole stream at once (one U+FFFD per maximal
// invalid subpart, a BOM kept), the oracle being TextDecoder on random byte streams. (A decoder of
// its own through Buffer#toString, holding a cut character back, passed this too, but on Node 20.20
// it decoded build logs at 125 ms per 100 MB against TextDecoder's 72: the codec keeps TextDecoder.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TextDecoder } from 'node:util';
import { UTF8 } from '../../src/worker/python/codec.js';
import { int, pick, rng, type Rng } from '../helpers/random-values.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Valid characters of every length, and the invalid shapes: stray continuations, cut sequences, overlongs, surrogates, beyond U+10FFFF. */
const PIECES = [
  'a', '\n', 'é', '‘', '日', '😀', '\ufeff', '\u0000',
].map((s) => Buffer.from(s)).concat(['80', 'bf', 'c3', 'e2 82', 'f0 9f 98', 'c0 80', 'e0 80 80', 'ed a0 80', 'f4 90 80 80', 'f8', 'ff', 'fe', 'c2', 'e0 a0', 'f4 8f bf'].map(hex));

function randomBytes(r: Rng): Buffer {
  const parts: Buffer[] = [];
  for (let n = int(r, 200); n > 0; n--) parts.push(pick(r, PIECES));
  return Buffer.concat(parts);
}

/** Decodes `bytes` cut at random places (empty and one-byte reads among them), then flushes. */
function streamed(r: Rng, bytes: Buffer): string {
  const decoder = UTF8.decoder();
  let out = '';
  for (let at = 0; at < bytes.length; ) {
    const next = Math.min(bytes.length, at + pick(r, [0, 1, 2, 3, 5, 64, 1000]));
    out += decoder.decode(bytes.subarray(at, next), { stream: true });
    at = next;
  }
  return out + decoder.decode();
}

describe('the UTF-8 output decoder', () => {
  it('decodes any byte stream, cut anywhere, as TextDecoder decodes it whole (an oracle, 3000 streams)', () => {
    const whole = new TextDecoder('utf-8', { ignoreBOM: true });
    for (let seed = 1; seed <= 3000; seed++) {
      const r = rng(seed);
      const bytes = randomBytes(r);
      assert.equal(streamed(r, bytes), whole.decode(bytes), `seed ${seed}: ${bytes.toString('hex')}`);
    }
  });

  it('holds a cut character for the next read, and ends one left cut with U+FFFD', () => {
    const decoder = UTF8.decoder();
    const emoji = Buffer.from('😀');
    assert.equal(decoder.decode(Buffer.concat([Buffer.from('a'), emoji.subarray(0, 3)]), { stream: true }), 'a');
    assert.equal(decoder.decode(emoji.subarray(3), { stream: true }), '😀');
    assert.equal(decoder.decode(hex('e2 82'), { stream: true }), '');
    assert.equal(decoder.decode(), '\ufffd');
    assert.equal(decoder.decode(Buffer.from('\ufeffx'), { stream: true }), '\ufeffx', 'a BOM is kept');
  });
});
