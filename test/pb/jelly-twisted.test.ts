// Jelly + Banana cross-checked against real Twisted (test/python/twisted_codec.py): the same
// value must produce the same bytes on both sides, and each side must decode the other's bytes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JellyError } from '../../src/errors.js';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { BananaWriter } from '../../src/pb/banana/writer.js';
import { unjelly } from '../../src/pb/jelly/decode.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { FrozenSet, PyFloat, tuple, Tuple } from '../../src/pb/values/values.js';
import { TwistedCodec } from '../helpers/python.js';
import { randomValue, rng } from '../helpers/random-values.js';
import { fromTagged, sortSets, toTagged, type Tagged } from '../helpers/tagged.js';

function encode(v: unknown, vocab = true): Buffer {
  const w = new BananaWriter();
  w.vocab = vocab;
  jelly(w, v);
  return w.take();
}

function decode(bytes: Buffer, vocab = true): unknown[] {
  return decodeSexps(bytes, vocab).map((s) => unjelly(s));
}

const codec = new TwistedCodec();
after(() => codec.close());

async function twistedEncode(value: unknown, dialect = 'pb'): Promise<{ hex: string; value: Tagged }> {
  const reply = await codec.request({ op: 'encode', value: toTagged(value), dialect });
  assert.equal(reply.ok, true, String(reply.error));
  return { hex: reply.hex as string, value: reply.value as Tagged };
}

async function twistedDecode(bytes: Buffer, dialect = 'pb', chunk?: number): Promise<Tagged[]> {
  const reply = await codec.request({ op: 'decode', hex: bytes.toString('hex'), dialect, ...(chunk ? { chunk } : {}) });
  assert.equal(reply.ok, true, String(reply.error));
  return reply.values as Tagged[];
}

describe('jelly against real Twisted', () => {
  before(async () => {
    const reply = await codec.request({ op: 'encode', value: ['none'] });
    assert.equal(reply.ok, true, `the Twisted codec does not run: ${String(reply.error)}`);
  });

  it('encodes fixed values byte for byte as Twisted does', async () => {
    const self: unknown[] = [1];
    self.push(self);
    const shared = [1];
    const cases: unknown[] = [
      null, true, false, 0, -1, 2 ** 31, -(2n ** 70n), 1.5, new PyFloat(2), NaN, -0, Infinity,
      Buffer.from('list'), 'list', 'text', '', Buffer.alloc(0), 'ünï😀',
      [], tuple(), new Map(), new Set(), new FrozenSet(),
      [1, [2, [3]]], tuple(1, 'a', Buffer.from('b')), new Map<unknown, unknown>([['k', 1], [2, null], [tuple(1, 2), [3]]]),
      self, [shared, shared], new Map([['a', shared], ['b', shared]]),
      { message: 'attached' },
    ];
    for (const v of cases) {
      const py = await twistedEncode(v);
      const value = fromTagged(py.value);
      assert.equal(encode(value).toString('hex'), py.hex, `value ${JSON.stringify(toTagged(v))}`);
    }
  });

  it('matches Twisted on the documented reference shapes', () => {
    const self: unknown[] = [1];
    self.push(self);
    const sexps = decodeSexps(encode(self, false), false);
    assert.deepEqual(sexps, [[Buffer.from('reference'), 1, [Buffer.from('list'), 1, [Buffer.from('dereference'), 1]]]]);
    // Ids are given at the second sighting: [l, d, d, l] numbers d first.
    const l: unknown[] = [];
    const d = new Map();
    const [outer] = decodeSexps(encode([l, d, d, l], false), false) as unknown[][];
    assert.deepEqual(outer![1], [Buffer.from('reference'), 2, [Buffer.from('list')]]);
    assert.deepEqual(outer![2], [Buffer.from('reference'), 1, [Buffer.from('dictionary')]]);
  });

  it('agrees with Twisted on 3000 random nested values, both directions', async () => {
    const seed = Number(process.env.BBGATE_SEED ?? Date.now() % 2 ** 31);
    const r = rng(seed);
    const values = Array.from({ length: 3000 }, () => randomValue(r));
    const encoded = await Promise.all(values.map((v) => twistedEncode(v)));
    const ours: Buffer[] = [];
    for (let i = 0; i < values.length; i++) {
      const py = encoded[i]!;
      // Build from Python's own view of the value, so set order is Python's and bytes can match.
      const value = fromTagged(py.value);
      const bytes = encode(value);
      ours.push(bytes);
      assert.equal(bytes.toString('hex'), py.hex, `seed ${seed}, value ${i}: bbgate's bytes differ from Twisted's`);
      const back = decode(Buffer.from(py.hex, 'hex'));
      assert.deepEqual(back.map(toTagged), [py.value], `seed ${seed}, value ${i}: bbgate decodes Twisted's bytes differently`);
    }
    const decoded = await Promise.all(ours.map((b, i) => twistedDecode(b, 'pb', i % 7 === 0 ? 1 : undefined)));
    for (let i = 0; i < values.length; i++) {
      // Python may iterate a rebuilt set in another order than the one it sent.
      assert.deepEqual(decoded[i]!.map(sortSets), [sortSets(encoded[i]!.value)], `seed ${seed}, value ${i}: Twisted decodes bbgate's bytes differently`);
    }
  });

  it('decodes a whole stream of Twisted expressions fed in random chunks', async () => {
    const r = rng(7);
    const values = Array.from({ length: 200 }, () => randomValue(r));
    const encoded = await Promise.all(values.map((v) => twistedEncode(v)));
    const stream = Buffer.concat(encoded.map((e) => Buffer.from(e.hex, 'hex')));
    const { BananaParser } = await import('../../src/pb/banana/parser.js');
    const got: unknown[] = [];
    const parser = new BananaParser((s) => got.push(unjelly(s)));
    parser.vocab = true;
    for (let i = 0; i < stream.length; ) {
      const n = 1 + Math.floor(r() * 50);
      parser.feed(stream.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(got.map(toTagged), encoded.map((e) => e.value));
  });

  it('uses no vocabulary in dialect "none", as Twisted', async () => {
    const v = tuple(Buffer.from('remote'), 'list', null);
    const py = await twistedEncode(v, 'none');
    assert.equal(encode(v, false).toString('hex'), py.hex);
  });

  it('refuses the types Twisted refuses, and tells malformed from insecure', () => {
    const bad = (sexp: unknown[], code: string) =>
      assert.throws(() => unjelly(sexp as never), (e: unknown) => e instanceof JellyError && e.code === code, JSON.stringify(sexp));
    const b = (s: string) => Buffer.from(s);
    bad([b('instance'), b('x')], 'JELLY_INSECURE');
    bad([b('class'), b('os.system')], 'JELLY_INSECURE');
    bad([b('module'), b('os')], 'JELLY_INSECURE');
    bad([b('function'), b('os.system')], 'JELLY_INSECURE');
    bad([b('os.system'), [b('dictionary')]], 'JELLY_INSECURE');
    bad([b('remote'), 1], 'JELLY_INSECURE'); // references need a broker
    bad([b('datetime'), b('2024 1 1 0 0 0 0')], 'JELLY_UNSUPPORTED');
    bad([b('boolean'), b('maybe')], 'JELLY_MALFORMED');
    bad([b('unicode'), Buffer.from([0xff])], 'JELLY_MALFORMED');
    bad([b('dereference'), 9], 'JELLY_MALFORMED');
    bad([b('dictionary'), [1]], 'JELLY_MALFORMED');
    bad([], 'JELLY_MALFORMED');
    bad([5], 'JELLY_MALFORMED');
  });

  it('keeps bytes and text apart, and tuples apart from lists', () => {
    const [v] = decode(encode(tuple(Buffer.from('x'), 'x', [1], tuple(1)))) as Tuple<unknown>[];
    assert.ok(v instanceof Tuple);
    assert.ok(Buffer.isBuffer(v[0]));
    assert.equal(v[1], 'x');
    assert.ok(Array.isArray(v[2]) && !(v[2] instanceof Tuple));
    assert.ok(v[3] instanceof Tuple);
  });
});
