// Byte-level tests of the Banana framing, including every vector in Twisted's
// own twisted/spread/test/test_banana.py.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BananaError } from '../../src/errors.js';
import { BananaParser, decodeSexps } from '../../src/pb/banana/parser.js';
import { DEFAULT_MAX_EXPRESSION_BYTES, MIN_ELEMENT_COST } from '../../src/pb/banana/scanner.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { PyFloat } from '../../src/pb/values/values.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const b = (s: string) => Buffer.from(s, 'latin1');

function decodeOne(bytes: Buffer, vocab = false): Sexp {
  const out = decodeSexps(bytes, vocab);
  assert.equal(out.length, 1);
  return out[0]!;
}

function decodeByteByByte(bytes: Buffer, vocab = false): Sexp[] {
  const out: Sexp[] = [];
  const parser = new BananaParser((e) => out.push(e));
  parser.vocab = vocab;
  for (const byte of bytes) parser.feed(Buffer.from([byte]));
  return out;
}

/** A Banana prefix: base-128 digits, least significant first. */
function prefix(n: number): number[] {
  const out: number[] = [];
  do {
    out.push(n % 128);
    n = Math.floor(n / 128);
  } while (n > 0);
  return out;
}

function assertBananaError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof BananaError && err.code === code);
}

describe('Banana encoding: Twisted test_banana vectors', () => {
  it('encodes the size-class boundaries exactly (test_sizedIntegerTypes)', () => {
    const baseInt = 2 ** 31 - 1;
    const baseNeg = -(2 ** 31);
    const cases: [number | bigint, string][] = [
      [baseInt - 2, '7d 7f7f7f07 81'],
      [baseInt - 1, '7e 7f7f7f07 81'],
      [baseInt, '7f 7f7f7f07 81'],
      [baseInt + 1, '00 00000008 85'],
      [baseInt + 2, '01 00000008 85'],
      [baseInt + 3, '02 00000008 85'],
      [baseNeg + 2, '7e 7f7f7f07 83'],
      [baseNeg + 1, '7f 7f7f7f07 83'],
      [baseNeg, '0000000008 83'],
      [baseNeg - 1, '01 00000008 86'],
      [baseNeg - 2, '02 00000008 86'],
      [baseNeg - 3, '03 00000008 86'],
    ];
    for (const [value, bytes] of cases) {
      assert.deepEqual(encodeSexp(value as Sexp), hex(bytes), `encoding ${value}`);
      assert.deepEqual(encodeSexp(BigInt(value) as Sexp), hex(bytes), `encoding ${value}n`);
      assert.equal(decodeOne(hex(bytes)), Number(value));
    }
  });

  it('round-trips int2b128 values (test_int2b128)', () => {
    const values: (number | bigint)[] = [];
    for (let i = 0; i < 100; i++) values.push(i, 1000 + i, 1000000 + i);
    values.push(1024n ** 10n);
    for (const v of values) {
      const out = decodeOne(encodeSexp(v as Sexp));
      assert.equal(BigInt(out as number | bigint), BigInt(v));
    }
  });

  it('round-trips strings, ints, negatives, floats and lists (test_string … test_list)', () => {
    assert.deepEqual(decodeOne(encodeSexp(b('hello'))), b('hello'));
    assert.equal(decodeOne(encodeSexp(10151)), 10151);
    assert.equal(decodeOne(encodeSexp(1015)), 1015);
    assert.equal(decodeOne(encodeSexp(-1015)), -1015);
    assert.deepEqual(decodeOne(encodeSexp(new PyFloat(1015))), new PyFloat(1015));
    assert.equal(decodeOne(encodeSexp(-2147483648)), -2147483648);
    const foo: Sexp = [1, 2, [3, 4], [30.5, 40.2], 5, [b('six'), b('seven'), [b('eight'), 9]], [10], []];
    assert.deepEqual(decodeOne(encodeSexp(foo)), foo);
  });

  it('decodes byte by byte exactly as all at once (test_partial)', () => {
    const maxsize = 9223372036854775807n;
    const foo: Sexp = [1, 2, [3, 4], [30.5, 40.2], 5, [b('six'), b('seven'), [b('eight'), 9]], [10], maxsize * 3n, maxsize * 2n, maxsize * -2n];
    const bytes = encodeSexp(foo);
    assert.deepEqual(decodeByteByByte(bytes), [foo]);
    assert.deepEqual(decodeSexps(bytes), [foo]);
  });

  it('refuses integers beyond the 64-digit prefix both ways (test_encode/decodeTooLargeLong)', () => {
    const smallest = 1n << 448n;
    assert.throws(() => encodeSexp(smallest), (e: unknown) => e instanceof BananaError && e.code === 'BANANA_CANNOT_ENCODE');
    assert.throws(() => encodeSexp(-smallest), (e: unknown) => e instanceof BananaError && e.code === 'BANANA_CANNOT_ENCODE');
    assert.deepEqual(decodeOne(encodeSexp(smallest - 1n)), smallest - 1n);
    // 65 digits: what Twisted would produce with a doubled prefix limit.
    const tooLong = Buffer.concat([Buffer.alloc(64, 0), Buffer.from([1, 0x85])]);
    assertBananaError(() => decodeSexps(tooLong), 'BANANA_PREFIX_TOO_LONG');
    const tooLongNeg = Buffer.concat([Buffer.alloc(64, 0), Buffer.from([1, 0x86])]);
    assertBananaError(() => decodeSexps(tooLongNeg), 'BANANA_PREFIX_TOO_LONG');
  });

  it('refuses oversized lists and strings before allocating (test_oversizedList/String, test_crashString)', () => {
    assertBananaError(() => decodeByteByByte(hex('0201010101 80')), 'BANANA_LIST_TOO_LONG');
    assertBananaError(() => decodeByteByByte(hex('0201010101 82')), 'BANANA_STRING_TOO_LONG');
    assertBananaError(() => decodeSexps(hex('0000000004 80')), 'BANANA_LIST_TOO_LONG');
  });

  it('handles the pb vocabulary only in dialect "pb" (DialectTests)', () => {
    const legal = hex('10 87'); // "remote" is word 16
    assertBananaError(() => decodeSexps(legal, false), 'BANANA_BAD_VOCAB');
    assert.deepEqual(decodeOne(legal, true), b('remote'));
    assertBananaError(() => decodeSexps(hex('7a 87'), true), 'BANANA_BAD_VOCAB');
    assert.deepEqual(encodeSexp(b('remote'), true), legal);
    assert.deepEqual(encodeSexp(b('remote'), false), Buffer.concat([hex('06 82'), b('remote')]));
  });

  it('is stateless across decodes: an error does not poison the next one (test_statelessDecode)', () => {
    assertBananaError(() => decodeSexps(Buffer.concat([Buffer.alloc(65, 0x7f), hex('85')])), 'BANANA_PREFIX_TOO_LONG');
    assert.equal(decodeOne(hex('01 81')), 1);
  });
});

describe('Banana encoding: byte-level details', () => {
  it('writes prefixes least-significant digit first', () => {
    assert.deepEqual(encodeSexp(0), hex('00 81'));
    assert.deepEqual(encodeSexp(127), hex('7f 81'));
    assert.deepEqual(encodeSexp(128), hex('00 01 81'));
    assert.deepEqual(encodeSexp(300), hex('2c 02 81'));
    assert.deepEqual(encodeSexp(new PyFloat(1.5 - 0.5)), hex('84 3ff0000000000000'));
    assert.deepEqual(encodeSexp(1.5), hex('84 3ff8000000000000'));
  });

  it('accepts an empty prefix as 0 and NEG 0 as plain 0', () => {
    assert.equal(decodeOne(hex('81')), 0);
    assert.ok(Object.is(decodeOne(hex('83')), 0));
  });

  it('encodes the server dialect offer exactly as a Buildbot master sends it', () => {
    assert.deepEqual(encodeSexp([b('pb'), b('none')]), hex('02 80 02 82 7062 04 82 6e6f6e65'));
    assert.deepEqual(encodeSexp([b('version'), 6], true), hex('02 80 13 87 06 81'));
  });

  it('keeps floats that look like ints as PyFloat and special floats as numbers', () => {
    for (const f of [NaN, Infinity, -Infinity, -0, 0.1]) {
      const out = decodeOne(encodeSexp(f));
      assert.ok(Object.is(out, f), `float ${f}`);
    }
    assert.deepEqual(decodeOne(encodeSexp(new PyFloat(0))), new PyFloat(0));
  });

  it('accepts exactly 64 prefix digits and refuses 65, even while waiting for more bytes', () => {
    assert.equal(decodeOne(Buffer.concat([Buffer.alloc(64, 0), hex('81')])), 0);
    const parser = new BananaParser(() => undefined);
    parser.feed(Buffer.alloc(64, 0));
    assert.throws(() => parser.feed(Buffer.alloc(1, 0)), (e: unknown) => e instanceof BananaError && e.code === 'BANANA_PREFIX_TOO_LONG');
  });

  it('refuses unknown type bytes and the 640 KiB limits on send', () => {
    assertBananaError(() => decodeSexps(hex('00 88')), 'BANANA_UNKNOWN_TYPE');
    assertBananaError(() => decodeSexps(hex('ff')), 'BANANA_UNKNOWN_TYPE');
    assertBananaError(() => encodeSexp(Buffer.alloc(640 * 1024 + 1)), 'BANANA_CANNOT_ENCODE');
    assert.equal(encodeSexp(Buffer.alloc(640 * 1024)).length, 640 * 1024 + 4);
    assertBananaError(() => encodeSexp(new Array(640 * 1024 + 1).fill(0)), 'BANANA_CANNOT_ENCODE');
  });

  it('does not allocate a declared string before its bytes arrive', () => {
    const parser = new BananaParser(() => undefined);
    parser.feed(hex('00 00 28 82')); // declares 640 KiB
    assert.equal(parser.bufferedBytes, 4);
    parser.feed(Buffer.alloc(1000));
    assert.equal(parser.bufferedBytes, 1004);
  });

  it('bounds nesting depth and expression size', () => {
    const deep = Buffer.concat(Array.from({ length: 300 }, () => hex('01 80')));
    assertBananaError(() => decodeSexps(deep), 'BANANA_TOO_DEEP');
    const parser = new BananaParser(() => undefined, { maxExpressionBytes: 1000 });
    assert.throws(() => parser.feed(Buffer.concat([hex('05 80'), ...Array.from({ length: 5 }, () => Buffer.concat([hex('7f 01 82'), Buffer.alloc(255)]))])),
      (e: unknown) => e instanceof BananaError && e.code === 'BANANA_EXPRESSION_TOO_LARGE');
  });

  it('charges every element at least MIN_ELEMENT_COST, so one-byte elements cannot fill 16 MiB', () => {
    // A list of n empty lists: the outer header and each empty list are charged MIN_ELEMENT_COST.
    const fits = DEFAULT_MAX_EXPRESSION_BYTES / MIN_ELEMENT_COST - 1;
    const emptyLists = (n: number) => Buffer.concat([Buffer.from([...prefix(n), 0x80]), Buffer.alloc(n, 0x80)]);
    const out: Sexp[] = [];
    new BananaParser((e) => out.push(e)).feed(emptyLists(fits));
    assert.equal(out.length, 1);
    assert.equal((out[0] as Sexp[]).length, fits);
    assertBananaError(() => new BananaParser(() => undefined).feed(emptyLists(fits + 1)), 'BANANA_EXPRESSION_TOO_LARGE');
    // 16 MiB of them, as a hostile peer would send: refused, nothing delivered.
    const flood = new BananaParser(() => assert.fail('a flood of empty lists was delivered'));
    assertBananaError(() => flood.feed(emptyLists(640 * 1024)), 'BANANA_EXPRESSION_TOO_LARGE');
    // A string longer than the minimum is charged its wire bytes: 255 bytes of body, 2 of prefix, 1 of type.
    const strings = new BananaParser(() => undefined, { maxExpressionBytes: 3 * 258 + MIN_ELEMENT_COST });
    strings.feed(Buffer.concat([hex('03 80'), ...Array.from({ length: 3 }, () => Buffer.concat([hex('7f 01 82'), Buffer.alloc(255)]))]));
    // Each top-level expression starts a fresh budget.
    const each = new BananaParser(() => undefined, { maxExpressionBytes: 2 * MIN_ELEMENT_COST });
    each.feed(Buffer.concat(Array.from({ length: 100 }, () => hex('01 80 80'))));
    assertBananaError(() => each.feed(hex('02 80 80 80')), 'BANANA_EXPRESSION_TOO_LARGE');
  });

  it('delivers several expressions from one chunk, and one expression across many', () => {
    const bytes = Buffer.concat([encodeSexp([1, b('x')]), encodeSexp(b('y')), encodeSexp(Buffer.alloc(70000, 7))]);
    const out = decodeSexps(bytes);
    assert.equal(out.length, 3);
    const chunked: Sexp[] = [];
    const parser = new BananaParser((e) => chunked.push(e));
    for (let i = 0; i < bytes.length; i += 333) parser.feed(bytes.subarray(i, i + 333));
    assert.deepEqual(chunked, out);
  });
});

describe('Banana writer refuses what is not an integer', () => {
  it('throws a typed error for fractional and NaN values given as integers', async () => {
    const { BananaWriter } = await import('../../src/pb/banana/writer.js');
    const w = new BananaWriter();
    assertBananaError(() => w.int(1.5), 'BANANA_CANNOT_ENCODE');
    assertBananaError(() => w.int(NaN), 'BANANA_CANNOT_ENCODE');
  });
});
