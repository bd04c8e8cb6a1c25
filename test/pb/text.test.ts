// PyText, text sent as the pieces it was made of: byte for byte what real Twisted sends for the
// joined str, however it is cut, and refused (with nothing left written) when its UTF-8 exceeds the
// 640 KiB a Twisted peer accepts.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BananaError } from '../../src/errors.js';
import { SIZE_LIMIT } from '../../src/pb/banana/constants.js';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { BananaWriter, encodeSexp } from '../../src/pb/banana/writer.js';
import { unjelly } from '../../src/pb/jelly/decode.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { PyText } from '../../src/pb/values/values.js';
import { TwistedCodec } from '../helpers/python.js';
import { int, pick, rng, type Rng } from '../helpers/random-values.js';
import { toTagged } from '../helpers/tagged.js';

function encode(v: unknown): Buffer {
  const w = new BananaWriter();
  w.vocab = true;
  jelly(w, v);
  return w.take();
}

const codec = new TwistedCodec();
after(() => codec.close());

async function twistedHex(text: string): Promise<string> {
  const reply = await codec.request({ op: 'encode', value: toTagged(text), dialect: 'pb' });
  assert.equal(reply.ok, true, String(reply.error));
  return reply.hex as string;
}

/** `text` cut at random places, some pieces empty, some cuts inside a surrogate pair. */
function cut(r: Rng, text: string): PyText {
  const out = new PyText();
  let start = 0;
  while (start < text.length) {
    const end = Math.min(text.length, start + int(r, 3) * int(r, Math.max(2, text.length >> 2)));
    out.append(text.slice(start, end));
    start = end;
  }
  return out;
}

const ALPHABET = ['a', ' ', '\n', 'é', '‘', '’', '日', '😀', '\u0000', '\ufeff'];

function randomText(r: Rng, units: number): string {
  let s = '';
  while (s.length < units) s += pick(r, ALPHABET);
  return s;
}

function assertCannotEncode(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof BananaError && err.code === 'BANANA_CANNOT_ENCODE' && pattern.test(err.message));
}

describe('PyText', () => {
  it('is jellied byte for byte as Twisted jellies the joined str, wherever it is cut', async () => {
    const r = rng(1203);
    // UTF-8 lengths on both sides of each prefix size (1, 2 and 3 base-128 digits), in 1-, 3- and 4-byte characters.
    const texts = [
      '', 'unicode', 'x', '😀', 'a\n'.repeat(20),
      ...[127, 128, 16383, 16384].flatMap((n) => ['a'.repeat(n), 'a'.repeat(n % 3) + '‘'.repeat(Math.floor(n / 3)), 'ab'.repeat(n % 4 >> 1) + '😀'.repeat(n >> 2)]),
      ...Array.from({ length: 40 }, () => randomText(r, 1 + int(r, 3000))),
    ];
    for (const text of texts) {
      const expected = await twistedHex(text);
      assert.equal(encode(text).toString('hex'), expected, `the string ${JSON.stringify(text.slice(0, 40))}`);
      for (let i = 0; i < 3; i++) {
        const pieces = cut(r, text);
        assert.equal(pieces.toString(), text);
        assert.equal(pieces.length, text.length);
        assert.equal(encode(pieces).toString('hex'), expected, `${JSON.stringify(pieces.pieces.map((p) => p.slice(0, 20)))}`);
      }
    }
  });

  it('keeps a surrogate pair whole when the cut falls inside it', () => {
    const text = new PyText('a\ud83d', '\ude00b');
    assert.equal(encode(text).toString('hex'), encode('a😀b').toString('hex'));
    // Lone surrogates (which Python cannot encode) go out as U+FFFD, as before.
    assert.equal(encode(new PyText('\ud83d', 'x')).toString('hex'), encode('\ufffdx').toString('hex'));
  });

  it('sends up to 640 KiB of UTF-8 and refuses one byte more, leaving nothing of it written', () => {
    const most = '‘'.repeat(Math.floor(SIZE_LIMIT / 3)) + 'a'.repeat(SIZE_LIMIT % 3);
    assert.equal(Buffer.byteLength(most), SIZE_LIMIT);
    const w = new BananaWriter();
    w.text(new PyText(most.slice(0, 1000), most.slice(1000)).pieces, most.length);
    assert.deepEqual(decodeSexps(w.take()), [Buffer.from(most)]);

    for (const [text, pattern] of [
      [most + 'a', /655361 bytes of UTF-8/],
      ['😀'.repeat(SIZE_LIMIT / 4 + 1), /655364 bytes of UTF-8/],
      ['a'.repeat(SIZE_LIMIT + 1), /655361 characters/],
    ] as const) {
      const before = new BananaWriter();
      before.int(5);
      assertCannotEncode(() => before.text([text], text.length), pattern);
      assert.deepEqual(before.take(), encodeSexp(5), 'the refused text left bytes behind');
      assertCannotEncode(() => encode(new PyText(text)), pattern);
    }
  });

  it('decodes as the text it was made of', () => {
    const r = rng(7);
    const text = randomText(r, 70_000);
    const [value] = decodeSexps(encode(cut(r, text)), true).map((s) => unjelly(s));
    assert.equal(value, text);
  });
});
