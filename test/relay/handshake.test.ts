// The relay's two half-handshakes at the byte level: reading a worker's login (from bbgate's own
// broker, and from hostile bytes), refusing it, and greeting a master with the replay.
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { Broker } from '../../src/pb/broker.js';
import { PbFailure, PY } from '../../src/pb/values/failure.js';
import { login } from '../../src/pb/login.js';
import { greetMaster } from '../../src/relay/master-greeting.js';
import { readRefusal, refusal } from '../../src/relay/refusals.js';
import { HandshakeError, readWorkerHello, refuseLogin } from '../../src/relay/worker-hello.js';
import { delivered, memoryPair } from '../helpers/memory-duplex.js';

const OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none')]);
/** The relay's greeting: the same dialects, then its mark. */
const RELAY_OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none'), Buffer.from('bbgate-relay')]);
const VERSION = encodeSexp([Buffer.from('version'), 6], true);
const text = (s: string) => Buffer.from(s);

/** Everything one end receives, as it arrives. */
function collect(stream: Duplex): Buffer[] {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return chunks;
}

async function failure(promise: Promise<unknown>): Promise<HandshakeError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HandshakeError, `expected a HandshakeError, got ${String(err)}`);
    return err;
  }
  assert.fail('the handshake was expected to fail');
}

describe('reading a worker\'s login', () => {
  it('offers the dialects, announces PB 6, and learns the name from bbgate\'s own broker; the replay holds the version and the login', async () => {
    const [worker, relay] = memoryPair();
    const broker = new Broker(worker, { role: 'client' });
    const attempt = login(broker, 'build-01', 'secret', null);
    attempt.catch(() => undefined);
    const hello = await readWorkerHello(relay, 1000);
    assert.equal(hello.username, 'build-01');
    assert.equal(hello.dialect, 'pb');
    assert.deepEqual(hello.choice, encodeSexp(text('pb')));
    assert.equal(await broker.peerVersion, 6, 'the worker heard the relay\'s version announcement');
    const [version, call] = decodeSexps(hello.replay, true) as Sexp[][];
    assert.deepEqual(version, [text('version'), 6]);
    assert.deepEqual(call!.slice(0, 5), [text('message'), hello.requestId, text('root'), text('login'), 1]);
    assert.ok(!hello.replay.includes(text('secret')), 'the password is not in the first round trip at all');
    // A refusal answers that very login call, with a failure the worker's PB layer understands.
    refuseLogin(relay, hello, refusal('RELAY_DENIED', 'worker "build-01" is not on this relay\'s allow-list'));
    const err = await attempt.then(() => assert.fail('login was refused'), (e: unknown) => e);
    assert.ok(err instanceof PbFailure);
    assert.equal(err.code, 'PB_UNAUTHORIZED');
    assert.equal(err.type, 'bbgate.relay.WorkerNotAllowed');
    assert.ok(err.check(PY.UnauthorizedLogin), 'buildbot-worker retries an UnauthorizedLogin, and checks for it by its parents');
    assert.match(err.message, /login refused: worker "build-01" is not on this relay's allow-list/);
    const read = readRefusal(err);
    assert.equal(read?.code, 'RELAY_DENIED');
  });

  it('makes limit and upstream refusals look like a lost connection, which buildbot-worker retries', () => {
    for (const code of ['RELAY_LIMIT', 'RELAY_UPSTREAM'] as const) {
      const f = refusal(code, 'why');
      assert.ok(f.check(PY.PBConnectionLost));
      assert.equal(readRefusal(f)?.code, code);
    }
    assert.equal(readRefusal(new PbFailure(PY.RuntimeError, 'x')), undefined);
  });

  it('keeps bytes that arrive after the login apart, for the relay\'s guard to see first', async () => {
    const [worker, relay] = memoryPair();
    const received = collect(worker);
    const loginCall = encodeSexp([text('message'), 1, text('root'), text('login'), 1, [text('tuple'), text('w')], [text('dictionary')]], true);
    const extra = Buffer.from([0x01, 0x87, 0xff, 0xfe]);
    worker.write(Buffer.concat([encodeSexp(text('pb')), VERSION, loginCall, extra]));
    const hello = await readWorkerHello(relay, 1000);
    assert.deepEqual(hello.replay, Buffer.concat([VERSION, loginCall]));
    assert.deepEqual(hello.rest, extra);
    await delivered();
    assert.deepEqual(Buffer.concat(received), Buffer.concat([RELAY_OFFER, VERSION]));
  });

  const cases: [string, Buffer, RegExp][] = [
    ['a dialect that was not offered', encodeSexp(text('msgpack')), /did not answer the PB dialect offer/],
    ['no version announcement', Buffer.concat([encodeSexp(text('pb')), encodeSexp([text('message'), 1], true)]), /did not announce its PB version/],
    ['another PB version', Buffer.concat([encodeSexp(text('pb')), encodeSexp([text('version'), 5], true)]), /speaks PB version 5/],
    ['a first call that is not a login', Buffer.concat([encodeSexp(text('pb')), VERSION, encodeSexp([text('message'), 1, text('root'), text('shutdown'), 1, [text('tuple')], [text('dictionary')]], true)]), /admits logins only/],
    ['a login without a name', Buffer.concat([encodeSexp(text('pb')), VERSION, encodeSexp([text('message'), 1, text('root'), text('login'), 1, [text('tuple')], [text('dictionary')]], true)]), /carries no worker name/],
    ['an HTTP request', Buffer.from('GET /pb HTTP/1.1\r\nHost: relay.example.org\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n'), /does not speak PB/],
    ['a huge string', Buffer.concat([Buffer.from([0, 0, 0x40]), Buffer.from([0x82])]), /does not speak PB|more than/],
  ];
  for (const [what, bytes, message] of cases) {
    it(`fails with a protocol error for ${what}`, async () => {
      const [worker, relay] = memoryPair();
      worker.write(bytes);
      const err = await failure(readWorkerHello(relay, 1000));
      assert.equal(err.reason, 'protocol');
      assert.equal(err.code, 'RELAY_HANDSHAKE');
      assert.match(err.message, message);
    });
  }

  it('fails with "closed" when the client hangs up, and "timeout" when it says nothing', async () => {
    const [a, relayA] = memoryPair();
    a.end(encodeSexp(text('pb')));
    assert.equal((await failure(readWorkerHello(relayA, 1000))).reason, 'closed');
    const [, relayB] = memoryPair();
    const silent = await failure(readWorkerHello(relayB, 50));
    assert.equal(silent.reason, 'timeout');
    assert.match(silent.message, /no PB login within 0.05 s/);
  });

  it('settles for every one of 3,000 random byte streams with a typed error or a login, never anything else', async () => {
    let state = 0x9e3779b9;
    const random = () => ((state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
    const pieces = [encodeSexp(text('pb')), encodeSexp(text('none')), VERSION, encodeSexp([text('message'), 1, text('root'), text('login'), 1, [text('tuple'), text('w')], [text('dictionary')]], true)];
    for (let i = 0; i < 3000; i++) {
      const parts: Buffer[] = [];
      for (let n = Math.floor(random() * 5); n >= 0; n--) {
        if (random() < 0.6) parts.push(pieces[Math.floor(random() * pieces.length)]!);
        else parts.push(Buffer.from(Array.from({ length: Math.floor(random() * 12) }, () => Math.floor(random() * 256))));
      }
      const [worker, relay] = memoryPair();
      worker.end(Buffer.concat(parts));
      try {
        const hello = await readWorkerHello(relay, 1000);
        assert.equal(typeof hello.username, 'string');
      } catch (err) {
        assert.ok(err instanceof HandshakeError, `input ${i}: ${String(err)}`);
      }
    }
  });
});

describe('greeting the master', () => {
  const hello = {
    dialect: 'pb',
    choice: encodeSexp(text('pb')),
    replay: Buffer.concat([VERSION, Buffer.from('LOGIN')]),
    rest: Buffer.alloc(0),
    username: 'w',
    requestId: 1,
  };

  it('answers the offer with the worker\'s choice, replays its bytes, swallows the version and returns what follows', async () => {
    const [relay, master] = memoryPair();
    const received = collect(master);
    master.write(OFFER);
    const greeting = greetMaster(relay, hello, 1000);
    await delivered();
    master.write(Buffer.concat([VERSION, Buffer.from('for the worker')]));
    assert.deepEqual(await greeting, Buffer.from('for the worker'));
    assert.deepEqual(Buffer.concat(received), Buffer.concat([hello.choice, hello.replay]));
  });

  const failures: [string, Buffer, string, RegExp][] = [
    ['an offer without the worker\'s dialect', encodeSexp([text('none')]), 'PB_DIALECT', /offers dialects \[none\], not the worker's "pb"/],
    ['a greeting that is not an offer', encodeSexp(text('hello')), 'PB_NOT_PB', /did not open with a PB dialect offer/],
    ['another PB version', Buffer.concat([OFFER, encodeSexp([text('version'), 7], true)]), 'PB_PROTOCOL', /the master speaks PB version 7/],
    ['an HTTP answer', Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nBad Request'), 'PB_NOT_PB', /does not speak PB/],
  ];
  for (const [what, bytes, code, message] of failures) {
    it(`names ${what}`, async () => {
      const [relay, master] = memoryPair();
      master.write(bytes);
      const err = await greetMaster(relay, hello, 1000).then(() => assert.fail('expected a failure'), (e: unknown) => e);
      assert.ok(err instanceof BbgateError);
      assert.equal(err.code, code);
      assert.match(err.message, message);
    });
  }

  it('names a master that closes or stays silent', async () => {
    const [relay, master] = memoryPair();
    master.end();
    const closed = await greetMaster(relay, hello, 1000).then(() => undefined, (e: BbgateError) => e);
    assert.equal(closed?.code, 'PB_CONNECTION_LOST');
    const [quiet] = memoryPair();
    const silent = await greetMaster(quiet, hello, 50).then(() => undefined, (e: BbgateError) => e);
    assert.equal(silent?.code, 'PB_NOT_PB');
    assert.match(silent!.message, /no PB greeting from the master within 0.05 s/);
  });
});
