// The relay's login guard on bytes: which commands a worker may send before and after the
// master's verdict (cachemessage held like message), and how the master's refusal is read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BananaWriter, encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { PbFailure, PY, UnauthorizedLogin } from '../../src/pb/values/failure.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { LoginGuard, type LoginVerdict } from '../../src/relay/login-guard.js';

const LOGIN_ID = 1;
const RESPOND_ID = 2;
const word = (w: string) => Buffer.from(w);
const args = (): Sexp[] => [[word('tuple')], [word('dictionary')]];
const call = (command: string, id: number, target: number | string, method: string, answer = 1) =>
  encodeSexp([word(command), id, typeof target === 'string' ? word(target) : target, word(method), answer, ...args()], true);
const respond = () => call('message', RESPOND_ID, 1, 'respond');

/** The master's answer to the login (a challenge and the challenger's reference, as far as the guard cares). */
const loginAnswer = () => encodeSexp([word('answer'), LOGIN_ID, [word('tuple'), word('challenge'), [word('remote'), 1]]], true);

function masterError(requestId: number, failure: PbFailure): Buffer {
  const w = new BananaWriter(1024);
  w.vocab = true;
  w.list(3);
  w.word('error');
  w.int(requestId);
  jelly(w, failure);
  return w.take();
}

function guarded(): { guard: LoginGuard; verdicts: LoginVerdict[] } {
  const verdicts: LoginVerdict[] = [];
  return { guard: new LoginGuard(true, LOGIN_ID, (v) => verdicts.push(v)), verdicts };
}

function accepted(): LoginGuard {
  const { guard, verdicts } = guarded();
  guard.workerBytes(respond());
  guard.masterBytes(loginAnswer());
  guard.masterBytes(encodeSexp([word('answer'), RESPOND_ID, [word('remote'), 2]], true));
  assert.deepEqual(verdicts, [{ outcome: 'accepted' }]);
  return guard;
}

const denied = (message: RegExp) => (err: Error & { code?: string }) => {
  assert.equal(err.code, 'RELAY_DENIED');
  assert.match(err.message, message);
  return true;
};

describe('the relay\'s login guard', () => {
  it('lets answers, errors and decrefs through before the verdict, and one respond()', () => {
    const { guard } = guarded();
    guard.workerBytes(encodeSexp([word('answer'), 5, 1], true));
    guard.workerBytes(encodeSexp([word('error'), 6, word('failure')], true));
    guard.workerBytes(encodeSexp([word('decref'), 1], true));
    guard.workerBytes(respond());
    assert.equal(guard.answeredChallenge, true);
  });

  it('drops any other command before the verdict', () => {
    for (const command of ['decache', 'uncache', 'version', 'didNotUnderstand', 'not_logged_in', 'bogus']) {
      const { guard } = guarded();
      assert.throws(() => guard.workerBytes(encodeSexp([word(command), 1], true)), denied(new RegExp(`sent "${command}" before the master accepted its password`)), command);
    }
    const { guard } = guarded();
    assert.throws(() => guard.workerBytes(encodeSexp([4, 1], true)), denied(/sent "a list without a command" before/));
  });

  it('holds cachemessage to the login like message: no respond() through it, no second login after it', () => {
    const before = guarded().guard;
    assert.throws(() => before.workerBytes(call('cachemessage', RESPOND_ID, 1, 'respond')), denied(/sent a cachemessage before the master accepted its password/));
    const root = guarded().guard;
    assert.throws(() => root.workerBytes(call('cachemessage', 3, 'root', 'login')), denied(/called the root object's login\(\) after its login/));
    const after = accepted();
    after.workerBytes(call('cachemessage', 7, 3, 'remote_print'));
    after.workerBytes(encodeSexp([word('decache'), 3], true));
    assert.throws(() => after.workerBytes(call('cachemessage', 8, 'root', 'login')), denied(/called the root object's login\(\) after its login/));
    assert.throws(() => after.workerBytes(call('message', 9, 'root', 'login')), denied(/called the root object's login\(\) after its login/));
  });

  it('reads the master\'s refusal: a wrong password, a duplicate worker, anything else', () => {
    const cases: [PbFailure | Buffer, LoginVerdict][] = [
      [new UnauthorizedLogin(), { outcome: 'refused', cause: 'password' }],
      [new PbFailure(PY.RuntimeError, 'rejecting duplicate worker'), { outcome: 'refused', cause: 'duplicate' }],
      [new PbFailure(PY.ValueError, "no perspective for 'w'"), { outcome: 'refused', cause: 'other', failure: "builtins.ValueError: no perspective for 'w'" }],
      [new PbFailure(PY.RuntimeError, 'rejecting duplicate worker, twice'), { outcome: 'refused', cause: 'other', failure: 'builtins.RuntimeError: rejecting duplicate worker, twice' }],
      [encodeSexp([word('error'), RESPOND_ID, word('a plain string')], true), { outcome: 'refused', cause: 'other', failure: 'an error that is no Twisted failure' }],
    ];
    for (const [failure, expected] of cases) {
      const { guard, verdicts } = guarded();
      guard.workerBytes(respond());
      guard.masterBytes(loginAnswer());
      guard.masterBytes(Buffer.isBuffer(failure) ? failure : masterError(RESPOND_ID, failure));
      assert.deepEqual(verdicts, [expected]);
      assert.throws(() => guard.workerBytes(call('message', 3, 1, 'print')), denied(/after the master refused its password/));
    }
  });
});
