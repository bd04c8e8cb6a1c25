// The broker against a hand-driven peer on a loopback socket: exact bytes for the handshake and
// for each reply, and a clean, typed close for every protocol violation.
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { BananaParser, decodeSexps } from '../../src/pb/banana/parser.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { Broker, MAX_BROKER_REFS } from '../../src/pb/broker.js';
import { Referenceable, RemoteReference, type RemoteCall } from '../../src/pb/values/references.js';
import { waitFor } from '../helpers/wait.js';
import { memoryPair } from '../helpers/memory-duplex.js';

const b = (s: string) => Buffer.from(s);

/** A bbgate broker on one end of a loopback connection, raw bytes on the other. */
async function pair(role: 'client' | 'server', root?: Referenceable) {
  let brokerSocket!: Socket;
  const server = createServer((s) => (brokerSocket = s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const raw = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => raw.once('connect', resolve));
  await waitFor(() => brokerSocket !== undefined, 'the accepted socket', 10_000, 1);
  server.close();
  const broker = new Broker(brokerSocket, { role, ...(root ? { root } : {}) });
  let received = Buffer.alloc(0);
  raw.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  const rawClosed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
  raw.on('error', () => undefined);
  return {
    broker,
    raw,
    rawClosed,
    send: (sexp: Sexp, vocab = true) => raw.write(encodeSexp(sexp, vocab)),
    /** Waits until the bytes received decode to at least `n` expressions. */
    async expressions(n: number): Promise<Sexp[]> {
      for (let i = 0; i < 200; i++) {
        try {
          // The offer precedes the dialect, but it holds no vocabulary bytes, so one decoding fits all.
          const out = decodeSexps(received, true);
          if (out.length >= n) return out;
        } catch {
          // an incomplete expression: wait for more
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`expected ${n} expressions, got bytes ${received.toString('hex')}`);
    },
  };
}

/** A server broker past its handshake (offer, choice, version), raw bytes on the other end. */
async function serving(root: Referenceable) {
  const p = await pair('server', root);
  p.send(b('pb'), false);
  await p.broker.ready;
  await p.expressions(2);
  return p;
}

async function closedWith(broker: Broker, code: string): Promise<void> {
  const reason = await new Promise<Error>((resolve) => (broker.connected ? broker.onDisconnect(resolve) : resolve(broker.closeReason!)));
  assert.ok(reason instanceof BbgateError, `expected a typed error, got ${reason}`);
  assert.equal(reason.code, code, reason.message);
}

class Echo extends Referenceable {
  remote_echo(call: RemoteCall) {
    return call.args[0];
  }
}

describe('broker handshake', () => {
  it('a server offers ["pb", "none"], then takes the client\'s choice and sends version 6', async () => {
    const p = await pair('server');
    assert.deepEqual((await p.expressions(1))[0], [b('pb'), b('none')]);
    p.send(b('pb'), false);
    await p.broker.ready;
    assert.equal(p.broker.dialect, 'pb');
    assert.deepEqual(await p.expressions(2), [[b('pb'), b('none')], [b('version'), 6]]);
    await p.broker.close();
  });

  it('a client picks the first dialect it knows from the offer, in the server\'s order', async () => {
    const p = await pair('client');
    p.send([b('zz'), b('none'), b('pb')], false);
    await p.broker.ready;
    assert.equal(p.broker.dialect, 'none');
    const [choice, version] = await p.expressions(2);
    assert.deepEqual(choice, b('none'));
    assert.deepEqual(version, [b('version'), 6]);
    await p.broker.close();
  });

  it('a client refuses an offer with no dialect it knows (PB_DIALECT)', async () => {
    const p = await pair('client');
    p.send([b('msgpack')], false);
    await assert.rejects(p.broker.ready, (e: unknown) => (e as BbgateError).code === 'PB_DIALECT');
    await p.rawClosed;
  });

  it('a client names a peer that does not speak Banana as not PB (PB_NOT_PB)', async () => {
    const p = await pair('client');
    p.raw.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n' + 'x'.repeat(64));
    await closedWith(p.broker, 'PB_NOT_PB');
  });

  it('a server refuses a dialect it did not offer, and a wrong version', async () => {
    const p = await pair('server');
    p.send(b('msgpack'), false);
    await closedWith(p.broker, 'PB_DIALECT');
    const q = await pair('server');
    q.send(b('pb'), false);
    q.send([b('version'), 5]);
    await closedWith(q.broker, 'PB_VERSION');
  });
});

describe('broker messages, byte for byte', () => {
  it('answers a message on root with the exact answer bytes', async () => {
    const p = await serving(new Echo());
    p.send([b('message'), 1, b('root'), b('echo'), 1, [b('tuple'), 42], [b('dictionary')]]);
    const out = await p.expressions(3);
    assert.deepEqual(out[2], [b('answer'), 1, 42]);
    assert.equal(encodeSexp(out[2]!, true).toString('hex'), '0380' + '1b87' + '0181' + '2a81');
    await p.broker.close();
  });

  it('sends no answer when answerRequired is 0', async () => {
    const p = await serving(new Echo());
    p.send([b('message'), 1, b('root'), b('echo'), 0, [b('tuple'), 1], [b('dictionary')]]);
    p.send([b('message'), 2, b('root'), b('echo'), 1, [b('tuple'), 2], [b('dictionary')]]);
    const out = await p.expressions(3);
    assert.deepEqual(out[2], [b('answer'), 2, 2]);
    await p.broker.close();
  });

  it('answers errors with a CopyableFailure Twisted can match: no such object, no such method, insecure arguments', async () => {
    const p = await serving(new Echo());
    p.send([b('message'), 1, b('nothere'), b('echo'), 1, [b('tuple')], [b('dictionary')]]);
    p.send([b('message'), 2, b('root'), b('nosuch'), 1, [b('tuple')], [b('dictionary')]]);
    p.send([b('message'), 3, b('root'), b('echo'), 1, [b('tuple'), [b('os.system'), b('x')]], [b('dictionary')]]);
    const out = (await p.expressions(5)).slice(2) as Sexp[][];
    const types = out.map((e) => {
      assert.equal(Buffer.from(e[0] as Buffer).toString(), 'error');
      const [tag, state] = e[2] as [Buffer, Sexp[]];
      assert.equal(tag.toString(), 'twisted.spread.pb.CopyableFailure');
      const type = (state.slice(1) as Sexp[][]).find((kv) => Buffer.from((kv[0] as Sexp[])[1] as Buffer).toString() === 'type')!;
      return (type[1] as Buffer).toString();
    });
    assert.deepEqual(types, ['twisted.spread.pb.Error', 'twisted.spread.flavors.NoSuchMethod', 'twisted.spread.jelly.InsecureJelly']);
    assert.equal(p.broker.connected, true, 'a refused call does not end the connection');
    await p.broker.close();
  });

  it('answers a cachemessage with an error and stays connected', async () => {
    const p = await serving(new Echo());
    p.send([b('cachemessage'), 1, 5, b('x'), 1, [b('tuple')], [b('dictionary')]]);
    const out = await p.expressions(3);
    assert.deepEqual((out[2] as Sexp[]).slice(0, 2), [b('error'), 1]);
    assert.equal(p.broker.connected, true);
    await p.broker.close();
  });

  it('counts references: two sends, two decrefs, then the object is gone', async () => {
    const shared = new Echo();
    class Root extends Referenceable {
      remote_get() {
        return [shared, shared];
      }
    }
    const p = await serving(new Root());
    p.send([b('message'), 1, b('root'), b('get'), 1, [b('tuple')], [b('dictionary')]]);
    const out = await p.expressions(3);
    assert.deepEqual(out[2], [b('answer'), 1, [b('list'), [b('remote'), 1], [b('remote'), 1]]]);
    assert.equal(p.broker.localObjectCount, 1);
    p.send([b('decref'), 1]);
    p.send([b('message'), 2, 1, b('echo'), 1, [b('tuple'), 7], [b('dictionary')]]);
    assert.deepEqual((await p.expressions(4))[3], [b('answer'), 2, 7]);
    p.send([b('decref'), 1]);
    p.send([b('message'), 3, 1, b('echo'), 1, [b('tuple'), 7], [b('dictionary')]]);
    const invalid = (await p.expressions(5))[4] as Sexp[];
    assert.deepEqual(invalid.slice(0, 2), [b('error'), 3]);
    assert.equal(p.broker.localObjectCount, 0);
    await p.broker.close();
  });

  it('a client sends one decref per remote received, and none for root', async () => {
    const p = await pair('client');
    p.send([b('pb'), b('none')], false);
    await p.broker.ready;
    const call = p.broker.rootObject().callRemote('get');
    const [, , message] = await p.expressions(3);
    assert.deepEqual(message, [b('message'), 1, b('root'), b('get'), 1, [b('tuple')], [b('dictionary')]]);
    p.send([b('answer'), 1, [b('tuple'), [b('remote'), 9], [b('remote'), 9]]]);
    const [x, y] = (await call) as RemoteReference[];
    assert.equal(x, y);
    x!.release();
    x!.release();
    const out = await p.expressions(5);
    assert.deepEqual(out.slice(3), [[b('decref'), 9], [b('decref'), 9]]);
    await assert.rejects(x!.callRemote('ping'), (e: unknown) => (e as BbgateError).code === 'PB_DEAD_REFERENCE');
    await p.broker.close();
  });
});

describe('broker: the references a call brings', () => {
  /** A root whose methods keep nothing, keep their first argument, or answer later. */
  class Holder extends Referenceable {
    kept: RemoteReference[] = [];
    remote_print(): null {
      return null;
    }
    remote_keep(call: RemoteCall): null {
      call.keep(call.args[0]);
      this.kept.push(call.args[0] as RemoteReference);
      return null;
    }
    remote_later(): Promise<null> {
      return new Promise((resolve) => setImmediate(() => resolve(null)));
    }
    remote_fail(): never {
      throw new Error('refused');
    }
  }
  const message = (id: number, method: string, ...args: Sexp[]) =>
    [b('message'), id, b('root'), b(method), 1, [b('tuple'), ...args], [b('dictionary')]];
  const remote = (luid: number) => [b('remote'), luid];
  const commands = (out: Sexp[]) => out.map((e) => [Buffer.from((e as Sexp[])[0] as Buffer).toString(), (e as Sexp[])[1]]);

  it('gives back what a method did not keep, one decref per receipt, after its answer', async () => {
    const p = await serving(new Holder());
    const exchange = async (sexp: Sexp, replies: number) => {
      const before = (await p.expressions(0)).length;
      p.send(sexp);
      return commands((await p.expressions(before + replies)).slice(before));
    };
    assert.deepEqual(await exchange(message(1, 'print', remote(7), [b('list'), remote(7), remote(8)]), 4), [['answer', 1], ['decref', 7], ['decref', 7], ['decref', 8]]);
    assert.deepEqual(await exchange(message(2, 'later', remote(9)), 2), [['answer', 2], ['decref', 9]]);
    assert.deepEqual(await exchange(message(3, 'fail', remote(10)), 2), [['error', 3], ['decref', 10]]);
    assert.deepEqual(await exchange(message(4, 'nosuch', remote(11)), 2), [['error', 4], ['decref', 11]]);
    assert.equal(p.broker.remoteReferenceCount, 0);
    assert.equal(p.broker.connected, true);
    await p.broker.close();
  });

  it('keeps what a method keeps; a second receipt of it in another call goes back alone', async () => {
    const holder = new Holder();
    const p = await serving(holder);
    p.send(message(1, 'keep', remote(5)));
    p.send(message(2, 'print', remote(5)));
    const out = await p.expressions(2 + 3);
    assert.deepEqual(commands(out.slice(2)), [['answer', 1], ['answer', 2], ['decref', 5]]);
    const [kept] = holder.kept;
    assert.equal(kept!.released, false, 'the kept reference is still live');
    assert.equal(p.broker.remoteReferenceCount, 1);
    kept!.release();
    assert.deepEqual(commands((await p.expressions(2 + 4)).slice(5)), [['decref', 5]]);
    assert.equal(p.broker.remoteReferenceCount, 0);
    await p.broker.close();
  });

  it('600,000 references in 600 print calls are all given back: nothing is held', { timeout: 120_000 }, async () => {
    const [near, far] = memoryPair();
    const broker = new Broker(near, { role: 'server', root: new Holder() });
    const decrefs = new Set<number>();
    let decrefCount = 0;
    const lastAnswer = new Promise<void>((resolve) => {
      const parser = new BananaParser((e) => {
        const [command, id] = e as [Buffer, number];
        if (command.toString() === 'decref') {
          decrefCount++;
          decrefs.add(id);
        } else if (command.toString() === 'answer' && id === 600) resolve();
      });
      parser.vocab = true;
      far.on('data', (d: Buffer) => parser.feed(d));
    });
    far.write(encodeSexp(b('pb')));
    await broker.ready;
    let luid = 1;
    for (let call = 1; call <= 600; call++) {
      far.write(encodeSexp(message(call, 'print', [b('list'), ...Array.from({ length: 1000 }, () => remote(luid++))]), true));
    }
    await lastAnswer;
    // The last call's decrefs follow its answer in the same turn.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(decrefCount, 600_000);
    assert.equal(decrefs.size, 600_000);
    assert.equal(broker.remoteReferenceCount, 0);
    assert.equal(broker.connected, true);
    // The peer hangs up (an in-memory stream never closes on our end() alone).
    const lost = new Promise((resolve) => broker.onDisconnect(resolve));
    far.destroy();
    await lost;
  });

  it('holds no more than Twisted hands out: 1,026 live references close the connection (PB_TOO_MANY_REFERENCES)', async () => {
    const p = await serving(new Holder());
    p.send(message(1, 'print', [b('list'), ...Array.from({ length: MAX_BROKER_REFS + 1 }, (_, i) => remote(i + 1))]));
    assert.deepEqual(commands((await p.expressions(3)).slice(2, 3)), [['answer', 1]], 'the most a Twisted peer can hand out is accepted');
    p.send(message(2, 'print', [b('list'), ...Array.from({ length: MAX_BROKER_REFS + 2 }, (_, i) => remote(i + 1))]));
    await closedWith(p.broker, 'PB_TOO_MANY_REFERENCES');
  });
});

describe('broker: protocol violations close the connection with a typed error', () => {
  const cases: [string, Sexp, string][] = [
    ['an unknown command', [b('bogus'), 1], 'PB_PROTOCOL'],
    ['an answer to no request', [b('answer'), 99, 1], 'PB_PROTOCOL'],
    ['a decref for an object never handed out', [b('decref'), 3], 'PB_PROTOCOL'],
    ['a decache', [b('decache'), 1], 'PB_PROTOCOL'],
    ['a non-list expression', 5, 'PB_PROTOCOL'],
    ['a malformed message', [b('message'), b('x')], 'PB_PROTOCOL'],
  ];
  for (const [what, sexp, code] of cases) {
    it(`${what} → ${code}`, async () => {
      const p = await pair('server', new Echo());
      p.send(b('pb'), false);
      await p.broker.ready;
      p.send(sexp);
      await closedWith(p.broker, code);
      await p.rawClosed;
    });
  }

  it('a Banana violation after the handshake → its Banana code, and pending calls fail with PB_CONNECTION_LOST', async () => {
    const p = await pair('client');
    p.send([b('pb')], false);
    await p.broker.ready;
    const pending = p.broker.rootObject().callRemote('x');
    p.raw.write(Buffer.from('0201010101 82'.replace(/ /g, ''), 'hex'));
    await assert.rejects(pending, (e: unknown) => (e as BbgateError).code === 'PB_CONNECTION_LOST');
    await closedWith(p.broker, 'BANANA_STRING_TOO_LONG');
  });
});

describe('broker edge cases found by fuzzing', () => {
  it('after close() it neither reads nor writes, and the reason stays typed', async () => {
    const p = await pair('server', new Echo());
    p.send(b('pb'), false);
    await p.broker.ready;
    void p.broker.close();
    p.send([b('message'), 1, b('root'), b('echo'), 1, [b('tuple'), 1], [b('dictionary')]]);
    await p.rawClosed;
    assert.ok(p.broker.closeReason === undefined || p.broker.closeReason instanceof BbgateError, String(p.broker.closeReason));
  });

  it('sends a failure with a huge message from an async method, cut to fit, and stays connected', async () => {
    class Huge extends Referenceable {
      remote_huge() {
        return Promise.reject(new Error('x'.repeat(700000)));
      }
    }
    const p = await pair('server', new Huge());
    p.send(b('pb'), false);
    await p.broker.ready;
    p.send([b('message'), 1, b('root'), b('huge'), 1, [b('tuple')], [b('dictionary')]]);
    const out = await p.expressions(3);
    assert.deepEqual((out[2] as Sexp[]).slice(0, 2), [b('error'), 1]);
    assert.equal(p.broker.connected, true);
    await p.broker.close();
  });

  it('holds a call made before the handshake until the dialect is agreed', async () => {
    const p = await pair('client');
    const call = p.broker.rootObject().callRemote('early');
    await new Promise((resolve) => setTimeout(resolve, 20));
    p.send([b('pb'), b('none')], false);
    const [choice, , message] = await p.expressions(3);
    assert.deepEqual(choice, b('pb'));
    assert.deepEqual(message, [b('message'), 1, b('root'), b('early'), 1, [b('tuple')], [b('dictionary')]]);
    p.send([b('answer'), 1, 5]);
    assert.equal(await call, 5);
    await p.broker.close();
  });
});
