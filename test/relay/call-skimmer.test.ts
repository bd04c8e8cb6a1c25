// The relay's call skimmer at the byte level: the heads it reports match what the full Banana
// parser decodes, whatever the chunking, and (the two share one scanner) it refuses exactly the
// framing the parser refuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PB_VOCABULARY } from '../../src/pb/banana/constants.js';
import { BananaParser, decodeSexps } from '../../src/pb/banana/parser.js';
import { DEFAULT_MAX_EXPRESSION_BYTES, MIN_ELEMENT_COST } from '../../src/pb/banana/scanner.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { PyFloat } from '../../src/pb/values/values.js';
import { CallSkimmer, type CallHead } from '../../src/relay/call-skimmer.js';
import { expectedHead } from '../helpers/fuzz.js';
import { rng as seeded } from '../helpers/random-values.js';

function skim(bytes: Buffer, vocab: boolean, chunking: () => number): CallHead[] {
  const heads: CallHead[] = [];
  const skimmer = new CallSkimmer(vocab, (h) => heads.push({ ...h }));
  for (let pos = 0; pos < bytes.length;) {
    const n = Math.max(1, Math.floor(chunking() * 40));
    skimmer.feed(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return heads;
}

function randomSexp(random: () => number, depth = 0): Sexp {
  const pick = random();
  if (depth < 4 && pick < 0.3) return Array.from({ length: Math.floor(random() * 6) }, () => randomSexp(random, depth + 1));
  if (pick < 0.45) return Buffer.from(PB_VOCABULARY[Math.floor(random() * PB_VOCABULARY.length)]!, 'latin1');
  if (pick < 0.5) return Buffer.from('root');
  if (pick < 0.65) return Buffer.alloc(Math.floor(random() * (random() < 0.1 ? 5000 : 80)), 0x61 + Math.floor(random() * 26));
  if (pick < 0.8) return Math.floor(random() * 2 ** 20);
  if (pick < 0.85) return -Math.floor(random() * 1000);
  if (pick < 0.9) return BigInt(2 ** 31) * BigInt(Math.floor(random() * 1000) + 1);
  return random() < 0.5 ? new PyFloat(3) : random();
}

describe('the relay\'s call skimmer', () => {
  it('reports the head of each call a worker sends, as the parser decodes it, in any chunking', () => {
    const call = (id: number, target: Sexp, method: string, args: Sexp = [Buffer.from('tuple')]) =>
      [Buffer.from('message'), id, target, Buffer.from(method), 1, args, [Buffer.from('dictionary')]];
    const stream = Buffer.concat([
      encodeSexp(call(2, 7, 'respond', [Buffer.from('tuple'), Buffer.alloc(16, 1), [Buffer.from('remote'), 1]]), true),
      encodeSexp([Buffer.from('answer'), 3, [Buffer.from('list'), Buffer.alloc(100_000, 0x78)]], true),
      encodeSexp(call(3, Buffer.from('root'), 'login'), true),
      encodeSexp([Buffer.from('decref'), 4], true),
    ]);
    const expected: CallHead[] = [
      { command: 'message', requestId: 2, target: 7, method: 'respond', answerRequired: 1 },
      { command: 'answer', requestId: 3 },
      { command: 'message', requestId: 3, target: 'root', method: 'login', answerRequired: 1 },
      { command: 'decref', requestId: 4 },
    ];
    assert.deepEqual(skim(stream, true, () => 1), expected);
    assert.deepEqual(skim(stream, true, () => 0), expected, 'one byte at a time');
    assert.deepEqual(skim(stream, true, seeded(1)), expected);
  });

  it('agrees with the full parser on 2,000 random expression streams, in both dialects', () => {
    const random = seeded(7);
    for (let i = 0; i < 2000; i++) {
      const vocab = random() < 0.7;
      const exprs = Array.from({ length: 1 + Math.floor(random() * 4) }, () => randomSexp(random));
      const bytes = Buffer.concat(exprs.map((e) => encodeSexp(e, vocab)));
      const decoded = decodeSexps(bytes, vocab);
      const expected = decoded.map(expectedHead).filter((h): h is CallHead => h !== undefined);
      assert.deepEqual(skim(bytes, vocab, random), expected, `stream ${i}`);
    }
  });

  it('reads request ids as Twisted does: a LONGINT or a NEG 0 is a number, an inexact one is none', () => {
    // message, then an id written as LONGINT 5 (0x85), a target as NEG 0 (0x83), then INT 2^63 (a 10-digit prefix).
    const bytes = Buffer.concat([
      Buffer.from([0x05, 0x80]), encodeSexp(Buffer.from('message'), true), Buffer.from([0x05, 0x85, 0x83]), encodeSexp(Buffer.from('m')),
      Buffer.from([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81]),
    ]);
    const [decoded] = decodeSexps(bytes, true);
    assert.deepEqual(decoded, [Buffer.from('message'), 5, 0, Buffer.from('m'), 2n ** 63n]);
    assert.deepEqual(skim(bytes, true, () => 0), [{ command: 'message', requestId: 5, target: 0, method: 'm' }]);
  });

  it('charges elements against the expression budget exactly as the parser does', () => {
    const outcome = (feed: () => void) => {
      try {
        feed();
        return 'accepted';
      } catch (err) {
        return (err as { code?: string }).code ?? String(err);
      }
    };
    const fits = DEFAULT_MAX_EXPRESSION_BYTES / MIN_ELEMENT_COST - 1;
    const cases: [string, Buffer][] = [
      ['empty lists that fit', encodeSexp(Array.from({ length: fits }, () => []))],
      ['one empty list too many', encodeSexp(Array.from({ length: fits + 1 }, () => []))],
      ['small ints, one too many', encodeSexp(Array.from({ length: fits + 1 }, () => 1))],
      ['one-byte strings that just fit, in two lists', encodeSexp([Array.from({ length: fits - 3 }, () => Buffer.from('x')), [Buffer.from('y')]])],
      ['floats, one too many', encodeSexp([Array.from({ length: fits }, () => 0.5)])],
      ['vocabulary words, one too many', encodeSexp(Array.from({ length: fits + 1 }, () => Buffer.from('None')), true)],
      ['26 strings of 640 KiB', encodeSexp(Array.from({ length: 26 }, () => Buffer.alloc(640 * 1024)))],
    ];
    const expected = ['accepted', 'BANANA_EXPRESSION_TOO_LARGE', 'BANANA_EXPRESSION_TOO_LARGE', 'accepted', 'BANANA_EXPRESSION_TOO_LARGE', 'BANANA_EXPRESSION_TOO_LARGE', 'BANANA_EXPRESSION_TOO_LARGE'];
    const outcomes = cases.map(([name, bytes]) => {
      const parser = new BananaParser(() => undefined);
      parser.vocab = true;
      const parsed = outcome(() => parser.feed(bytes));
      // The skimmer sees the same stream twice over: the budget starts afresh with each expression.
      const skimmed = outcome(() => skim(Buffer.concat([bytes, bytes]), true, seeded(bytes.length)));
      assert.equal(skimmed, parsed, name);
      return parsed;
    });
    assert.deepEqual(outcomes, expected);
  });

  it('refuses exactly the framing the parser refuses, on 3,000 random byte strings', () => {
    const random = seeded(11);
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => (random() < 0.5 ? Math.floor(random() * 8) + 0x80 : Math.floor(random() * 256))));
      const vocab = random() < 0.5;
      const parser = new BananaParser(() => undefined);
      parser.vocab = vocab;
      const parserThrew = (() => {
        try {
          parser.feed(bytes);
          return false;
        } catch {
          return true;
        }
      })();
      const skimmerThrew = (() => {
        try {
          skim(bytes, vocab, random);
          return false;
        } catch {
          return true;
        }
      })();
      assert.equal(skimmerThrew, parserThrew, `input ${i}: ${bytes.toString('hex')}`);
    }
  });
});
