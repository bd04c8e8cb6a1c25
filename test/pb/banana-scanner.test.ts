// The Banana scanner on its own: the element events both the parser and the relay's skimmer are
// built on, their order, their independence from chunking, and limits applied before any event.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BananaError } from '../../src/errors.js';
import { BananaScanner, type BananaEvents, type ParserLimits } from '../../src/pb/banana/scanner.js';
import { encodeSexp } from '../../src/pb/banana/writer.js';
import { PyFloat } from '../../src/pb/values/values.js';
import { rng } from '../helpers/random-values.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Records every event as text; strings are kept when `keep` says so. */
class Recorder implements BananaEvents {
  readonly events: string[] = [];
  /** For each kept string, whether the scanner handed over a fresh copy. */
  readonly owned: boolean[] = [];
  constructor(private readonly keep: (length: number) => boolean = () => true) {}
  listStart(count: number): void {
    this.events.push(`[${count}`);
  }
  listEnd(): void {
    this.events.push(']');
  }
  emptyList(): void {
    this.events.push('[]');
  }
  int(value: number | bigint): void {
    this.events.push(`int ${value}`);
  }
  float(value: number): void {
    this.events.push(`float ${value}`);
  }
  keepString(length: number): boolean {
    return this.keep(length);
  }
  string(bytes: Buffer | undefined, owned: boolean): void {
    if (bytes) this.owned.push(owned);
    this.events.push(bytes ? `str ${bytes.toString('latin1')}` : 'skipped');
  }
  word(index: number): void {
    this.events.push(`word ${index}`);
  }
}

function scan(bytes: Buffer, sizes: () => number, options: { vocab?: boolean; limits?: ParserLimits; keep?: (length: number) => boolean } = {}) {
  const recorder = new Recorder(options.keep);
  const scanner = new BananaScanner(recorder, options.limits);
  scanner.vocab = options.vocab ?? false;
  const ends: number[] = [];
  let last = 0;
  for (let pos = 0; pos < bytes.length;) {
    const n = Math.max(1, sizes());
    scanner.feed(bytes.subarray(pos, pos + n));
    pos += n;
    if (scanner.position !== last) ends.push((last = scanner.position));
  }
  return { events: recorder.events, owned: recorder.owned, ends, buffered: scanner.bufferedBytes };
}

describe('the Banana scanner', () => {
  const stream = Buffer.concat([
    encodeSexp([b('message'), 7, [b('x'), [], -3, 2n ** 70n], new PyFloat(2), 0.5, b('y'.repeat(300))], true),
    encodeSexp(b('alone')),
  ]);
  const expected = [
    '[6', 'word 26', 'int 7', '[4', 'str x', '[]', 'int -3', `int ${2n ** 70n}`, ']', 'float 2', 'float 0.5', `str ${'y'.repeat(300)}`, ']',
    'str alone',
  ];

  it('reports elements in stream order, lists around their elements, the same in any chunking', () => {
    const whole = scan(stream, () => stream.length, { vocab: true });
    assert.deepEqual(whole.events, expected);
    assert.deepEqual(scan(stream, () => 1, { vocab: true }).events, expected, 'one byte at a time');
    const random = rng(3);
    for (let i = 0; i < 50; i++) assert.deepEqual(scan(stream, () => Math.floor(random() * 40), { vocab: true }).events, expected);
  });

  it('knows where each top-level expression ends, and holds nothing once they are complete', () => {
    const first = stream.length - encodeSexp(b('alone')).length;
    const { ends, buffered } = scan(stream, () => 1, { vocab: true });
    assert.deepEqual(ends, [first, stream.length]);
    assert.equal(buffered, 0);
    // An integer whose prefix digits came in two chunks before its type byte.
    const scanner = new BananaScanner(new Recorder());
    scanner.feed(hex('01'));
    scanner.feed(hex('01'));
    assert.equal(scanner.bufferedBytes, 2);
    scanner.feed(hex('81'));
    assert.equal(scanner.bufferedBytes, 0);
    assert.equal(scanner.position, 3);
  });

  it('hands over a kept string as a view of the chunk when it is whole there, as a fresh copy when it spanned chunks', () => {
    const bytes = encodeSexp([b('ab'), b('cdef')]);
    assert.deepEqual(scan(bytes, () => bytes.length).owned, [false, false]);
    assert.deepEqual(scan(bytes, () => 1).owned, [true, true]);
  });

  it('skips the strings its reader does not keep, counting their bytes as they pass', () => {
    const bytes = encodeSexp([b('short'), Buffer.alloc(5000, 0x61)]);
    const keep = (length: number) => length < 10;
    assert.deepEqual(scan(bytes, () => 7, { keep }).events, ['[2', 'str short', 'skipped', ']']);
    const recorder = new Recorder(keep);
    const scanner = new BananaScanner(recorder);
    scanner.feed(bytes.subarray(0, 1000));
    assert.equal(scanner.bufferedBytes, 1000 - 2 - 7, 'the header and body of the unfinished string');
  });

  it('applies every limit before the element is reported', () => {
    const refused = (bytes: Buffer, code: string, options: { vocab?: boolean; limits?: ParserLimits } = {}) => {
      const recorder = new Recorder(() => assert.fail('no string may be announced past a limit'));
      const scanner = new BananaScanner(recorder, options.limits);
      scanner.vocab = options.vocab ?? false;
      assert.throws(() => scanner.feed(bytes), (e: unknown) => e instanceof BananaError && e.code === code);
      return recorder.events;
    };
    assert.deepEqual(refused(hex('01 00 28 82'), 'BANANA_STRING_TOO_LONG'), []);
    assert.deepEqual(refused(hex('01 00 28 80'), 'BANANA_LIST_TOO_LONG'), []);
    assert.deepEqual(refused(Buffer.alloc(65, 0), 'BANANA_PREFIX_TOO_LONG'), []);
    assert.deepEqual(refused(hex('01 80 01 80 01 80'), 'BANANA_TOO_DEEP', { limits: { maxDepth: 2 } }), ['[1', '[1']);
    assert.deepEqual(refused(hex('01 87'), 'BANANA_BAD_VOCAB'), []);
    assert.deepEqual(refused(hex('7f 87'), 'BANANA_BAD_VOCAB', { vocab: true }), []);
    assert.deepEqual(refused(hex('88'), 'BANANA_UNKNOWN_TYPE'), []);
    assert.deepEqual(refused(encodeSexp([1, 2, 3]), 'BANANA_EXPRESSION_TOO_LARGE', { limits: { maxExpressionBytes: 3 * 64 } }), ['[3', 'int 1', 'int 2']);
  });

  it('stays failed after a refusal, holding nothing', () => {
    const scanner = new BananaScanner(new Recorder());
    scanner.feed(hex('05 00'));
    assert.throws(() => scanner.feed(hex('88')), BananaError);
    assert.equal(scanner.bufferedBytes, 0);
    assert.throws(() => scanner.feed(encodeSexp(1)), (e: unknown) => e instanceof BananaError && e.code === 'BANANA_UNKNOWN_TYPE');
  });
});
