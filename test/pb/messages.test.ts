// PB's messages: each encoder's expression reads back through its decoder, in both dialects, and
// what does not have a message's shape decodes to nothing (its reader decides what that means).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { BananaWriter, encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { unjelly } from '../../src/pb/jelly/decode.js';
import {
  commandOf, decodeCall, decodeDecref, decodeDialectChoice, decodeDialectOffer, decodeReply, decodeVersion, encodeMessage,
  PB_VERSION, writeAnswer, writeCall, writeDecref, writeDialectChoice, writeDialectOffer, writeError, writeVersion,
} from '../../src/pb/messages.js';
import { PbFailure, PY } from '../../src/pb/values/failure.js';
import { Tuple } from '../../src/pb/values/values.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function roundTrip(vocab: boolean, write: (w: BananaWriter) => void): Sexp {
  const [expr, ...rest] = decodeSexps(encodeMessage(vocab, write), vocab);
  assert.equal(rest.length, 0);
  return expr!;
}

describe('PB messages', () => {
  for (const vocab of [false, true]) {
    it(`read back what they write (dialect ${vocab ? 'pb' : 'none'})`, () => {
      assert.deepEqual(decodeDialectOffer(roundTrip(vocab, writeDialectOffer)), ['pb', 'none']);
      assert.equal(decodeDialectChoice(roundTrip(vocab, (w) => writeDialectChoice(w, 'pb'))), 'pb');
      assert.deepEqual(decodeVersion(roundTrip(vocab, writeVersion)), { version: PB_VERSION });

      const call = roundTrip(vocab, (w) => writeCall(w, 9, 'root', 'login', [b('worker')], { k: 1 })) as Sexp[];
      assert.equal(commandOf(call), 'message');
      const decoded = decodeCall(call)!;
      assert.deepEqual({ ...decoded, args: unjelly(decoded.args), kwargs: unjelly(decoded.kwargs) },
        { requestId: 9, target: 'root', method: 'login', answerRequired: true, args: Tuple.from([b('worker')]), kwargs: new Map([['k', 1]]) });
      assert.equal(decodeCall(roundTrip(vocab, (w) => writeCall(w, 10, 4, 'print', [], {})) as Sexp[])!.target, 4);

      const answer = roundTrip(vocab, (w) => writeAnswer(w, 3, 'ok')) as Sexp[];
      assert.equal(commandOf(answer), 'answer');
      assert.deepEqual(unjelly(decodeReply(answer)!.body), 'ok');
      const error = roundTrip(vocab, (w) => writeError(w, 4, new PbFailure(PY.ValueError, 'bad'))) as Sexp[];
      assert.equal(commandOf(error), 'error');
      assert.equal(decodeReply(error)!.requestId, 4);
      assert.equal((unjelly(decodeReply(error)!.body) as PbFailure).type, PY.ValueError);

      const decref = roundTrip(vocab, (w) => writeDecref(w, 12)) as Sexp[];
      assert.equal(commandOf(decref), 'decref');
      assert.equal(decodeDecref(decref), 12);
    });
  }

  it('writes a dialect offer as Twisted does, without vocabulary', () => {
    assert.deepEqual(encodeMessage(true, writeDialectOffer), encodeSexp([b('pb'), b('none')]));
  });

  it('decodes nothing from expressions without the message\'s shape', () => {
    assert.equal(commandOf(b('message')), undefined);
    assert.equal(commandOf([]), undefined);
    assert.equal(commandOf([1, 2]), undefined);
    assert.equal(decodeDialectOffer(b('pb')), undefined);
    assert.deepEqual(decodeDialectOffer([b('pb'), 3]), ['pb', '?']);
    assert.equal(decodeDialectChoice(b('json')), undefined);
    assert.equal(decodeDialectChoice([b('pb')]), undefined);
    assert.equal(decodeVersion([b('answer'), 6]), undefined);
    assert.deepEqual(decodeVersion([b('version')]), { version: undefined });
    const message = (...parts: Sexp[]) => [b('message'), ...parts];
    assert.equal(decodeCall(message(1, b('root'), b('login'), 1, [b('tuple')])), undefined, 'no keywords');
    assert.equal(decodeCall(message(1.5, b('root'), b('login'), 1, [b('tuple')], [b('dictionary')])), undefined, 'a fractional request id');
    assert.equal(decodeCall(message(1, b('root'), 7, 1, [b('tuple')], [b('dictionary')])), undefined, 'a method that is no string');
    assert.equal(decodeCall(message(1, [], b('m'), 0, [b('tuple')], [b('dictionary')]))!.target, undefined);
    assert.equal(decodeCall(message(1, [], b('m'), 0, [b('tuple')], [b('dictionary')]))!.answerRequired, false);
    assert.equal(decodeReply([b('answer'), 1]), undefined);
    assert.equal(decodeReply([b('answer'), b('1'), b('x')]), undefined);
    assert.equal(decodeDecref([b('decref'), b('3')]), undefined);
  });
});
