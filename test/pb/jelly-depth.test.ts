// What bbgate sends must be what a Banana parser takes: a value nested deeper than the
// parser's 256 levels (counting the message around it) is refused when it is written,
// not sent to be refused by the peer. Found by test/pb/fuzz.test.ts (a broker echoing a
// deeply nested argument back in its answer).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JellyError } from '../../src/errors.js';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { DEFAULT_MAX_DEPTH } from '../../src/pb/banana/scanner.js';
import { BananaWriter } from '../../src/pb/banana/writer.js';
import { jelly } from '../../src/pb/jelly/encode.js';

/** `depth` lists, each holding the next; the innermost holds a string (a list of its own in jelly). */
function nested(depth: number, inner: unknown = 'leaf'): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** A value as the arguments of a PB message: the message's list, then the argument tuple. */
function asMessageArgument(value: unknown): Buffer {
  const w = new BananaWriter();
  w.list(7);
  w.word('message');
  w.int(1);
  w.bytes(Buffer.from('root'));
  w.bytes(Buffer.from('echo'));
  w.int(1);
  w.list(2);
  w.word('tuple');
  jelly(w, value);
  jelly(w, {});
  return w.take();
}

describe('jelly: nesting a Banana peer accepts', () => {
  it('the deepest value a message can carry is written and parses', () => {
    // Two lists of envelope; a list per level; the innermost string is a list too.
    const deepest = DEFAULT_MAX_DEPTH - 2 - 1;
    const bytes = asMessageArgument(nested(deepest));
    assert.equal(decodeSexps(bytes).length, 1);
  });

  it('one level more is refused when written (JELLY_CANNOT_ENCODE), before anything is sent', () => {
    assert.throws(() => asMessageArgument(nested(DEFAULT_MAX_DEPTH - 2)), (err: JellyError) =>
      err.code === 'JELLY_CANNOT_ENCODE' && /nested more than 253 deep/.test(err.message));
  });

  it('dicts count their pair lists: the limit is on Banana lists, not on containers', () => {
    let v: unknown = 1;
    for (let i = 0; i < 127; i++) v = new Map([[1, v]]);
    assert.throws(() => asMessageArgument(v), (err: JellyError) => err.code === 'JELLY_CANNOT_ENCODE');
    let ok: unknown = 1;
    for (let i = 0; i < 126; i++) ok = new Map([[1, ok]]);
    assert.equal(decodeSexps(asMessageArgument(ok)).length, 1);
  });
});
