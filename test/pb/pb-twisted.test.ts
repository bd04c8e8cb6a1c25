// bbgate's PB client against a real Twisted PB server, and a real Twisted PB client against
// bbgate's PB server (test/python/pb_server.py, pb_client.py).
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Broker } from '../../src/pb/broker.js';
import { PbFailure, PY, UnauthorizedLogin } from '../../src/pb/values/failure.js';
import { login, PortalRoot, type Portal } from '../../src/pb/login.js';
import { Referenceable, RemoteReference, type RemoteCall } from '../../src/pb/values/references.js';
import { PyFloat, Tuple, tuple } from '../../src/pb/values/values.js';
import { PY_DIR, PYTHON } from '../helpers/python.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { sortSets, toTagged, type Tagged } from '../helpers/tagged.js';

class Mind extends Referenceable {
  printed: unknown[] = [];
  remote_print(call: RemoteCall): null {
    this.printed.push(call.arg(0, 'message'));
    return null;
  }
  remote_whoami(): string {
    return 'bbgate-mind';
  }
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Without NODELAY, Nagle holds each decref back behind the peer's delayed ACK.
    const s = createConnection({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('bbgate PB client ↔ real Twisted PB server', () => {
  let server: LineProcess;
  let port: number;

  before(async () => {
    server = startProcess(PYTHON, [PY_DIR + 'pb_server.py']);
    port = Number((await server.waitForLine(/^PORT \d+$/)).split(' ')[1]);
  });
  after(() => server.kill());

  async function session(user = 'alice', password = 'secret') {
    const broker = new Broker(await connect(port), { role: 'client' });
    const mind = new Mind();
    const perspective = await login(broker, user, password, mind);
    return { broker, mind, perspective };
  }

  it('logs in, serving the server\'s call to the mind before login completes', async () => {
    const { broker, mind, perspective } = await session();
    assert.deepEqual(mind.printed, ['attached']);
    await server.waitForLine(/"event": ?"login".*alice/);
    assert.equal(await perspective.callRemote('add', [2, 3]), 5);
    await broker.close();
    await server.waitForLine(/"event": ?"logout"/);
  });

  it('sends and receives every Buildbot type intact', async () => {
    const { broker, perspective } = await session();
    const args = [1, -2, 2 ** 31, -(2n ** 70n), 1.5, new PyFloat(2), NaN, Buffer.from('list'), 'text', 'ünï😀', null, true, false,
      [1, [2]], tuple(3, 4), new Map<unknown, unknown>([['k', Buffer.from('v')], [5, tuple(6)]]), new Set([7]), Buffer.alloc(100000, 1)];
    const result = await perspective.callRemote('echo', args, { kw1: 'x', kw2: null });
    assert.deepEqual(toTagged(result), toTagged([args, new Map([['kw1', 'x'], ['kw2', null]])]));
    await broker.close();
  });

  it('rejects a wrong password and an unknown user with UnauthorizedLogin', async () => {
    for (const [user, password] of [['alice', 'wrong'], ['mallory', 'secret']] as const) {
      const broker = new Broker(await connect(port), { role: 'client' });
      await assert.rejects(login(broker, user, password, new Mind()), (err: unknown) => {
        assert.ok(err instanceof UnauthorizedLogin);
        assert.equal(err.code, 'PB_UNAUTHORIZED');
        assert.equal(err.type, PY.UnauthorizedLogin);
        return true;
      });
      await broker.close();
    }
  });

  it('carries Python exceptions with their qualified type and parents', async () => {
    const { broker, perspective } = await session();
    await assert.rejects(perspective.callRemote('fail', ['value']), (err: unknown) => {
      assert.ok(err instanceof PbFailure);
      assert.equal(err.type, 'builtins.ValueError');
      assert.equal(err.value, 'boom');
      assert.deepEqual(err.parents, ['builtins.ValueError', 'builtins.Exception', 'builtins.BaseException', 'builtins.object']);
      return true;
    });
    await assert.rejects(perspective.callRemote('fail', ['pb']), (err: unknown) => err instanceof PbFailure && err.check(PY.PbError) === PY.PbError);
    await assert.rejects(perspective.callRemote('callMind', ['nosuch']), (err: unknown) => err instanceof PbFailure && err.value.includes('remote_nosuch'));
    assert.equal(await perspective.callRemote('callMind', ['whoami']), 'bbgate-mind');
    await broker.close();
  });

  it('decrefs exactly once per reference received: 5,000 commands leave the server\'s table as it was', async () => {
    const { broker, perspective } = await session();
    const baseline = await perspective.callRemote('localObjectCount');
    assert.equal(baseline, 2, 'root and the perspective; the challenger must already be released');
    for (let i = 0; i < 5000; i++) {
      const counter = await perspective.callRemote('makeRef');
      assert.ok(counter instanceof RemoteReference);
      assert.equal(await counter.callRemote('increment', [2]), 2);
      counter.release();
    }
    const [a, b] = (await perspective.callRemote('twice')) as Tuple<RemoteReference>;
    assert.equal(a, b, 'one proxy per luid');
    assert.equal(a!.receipts, 2);
    a!.release();
    const batch = (await perspective.callRemote('makeRefs', [50])) as RemoteReference[];
    for (const ref of batch) ref.release();
    assert.equal(await perspective.callRemote('localObjectCount'), baseline);
    assert.equal(broker.remoteReferenceCount, 1, 'only the perspective is still held');
    await broker.close();
  });

  it('gives back the references a call to the mind brings and the mind does not keep: 5 × 1,000 fit Twisted\'s 1,024', async () => {
    const { broker, perspective } = await session();
    const baseline = await perspective.callRemote('localObjectCount');
    // Without the decrefs, the second round would leave Twisted 2,000 live objects: it refuses past 1,024.
    for (let round = 0; round < 5; round++) {
      await perspective.callRemote('printRefs', [1000]);
      assert.equal(await perspective.callRemote('localObjectCount'), baseline, `round ${round}`);
    }
    assert.equal(broker.remoteReferenceCount, 1, 'only the perspective is still held');
    await broker.close();
  });

  it('fails pending calls and later calls with typed errors when the connection drops', async () => {
    const { broker, perspective } = await session();
    const lost = new Promise<Error>((resolve) => broker.onDisconnect(resolve));
    await assert.rejects(perspective.callRemote('disconnect'), (err: unknown) => (err as { code?: string }).code === 'PB_CONNECTION_LOST');
    assert.ok((await lost) instanceof Error);
    await assert.rejects(perspective.callRemote('add', [1, 2]), (err: unknown) => (err as { code?: string }).code === 'PB_DEAD_REFERENCE');
  });

  it('serves calls in both directions while its own calls are pending', async () => {
    const { broker, perspective } = await session();
    const slow = perspective.callRemote('slow', [0.3, 'late']);
    assert.equal(await perspective.callRemote('callMind', ['whoami']), 'bbgate-mind');
    assert.equal(await slow, 'late');
    await broker.close();
  });
});

describe('real Twisted PB client ↔ bbgate PB server', () => {
  const passwords = new Map([['alice', 'secret']]);
  const events: string[] = [];

  class Perspective extends Referenceable {
    constructor(private readonly mind: RemoteReference | null) {
      super();
    }
    remote_echo(call: RemoteCall) {
      return [Tuple.from(call.args), call.kwargs];
    }
    remote_add(call: RemoteCall) {
      return (call.args[0] as number) + (call.args[1] as number);
    }
    remote_fail(): never {
      throw new PbFailure(PY.ValueError, 'boom');
    }
    remote_callMind(call: RemoteCall) {
      return this.mind!.callRemote(String(call.args[0]));
    }
    remote_makeRef() {
      return new Counter();
    }
  }
  class Counter extends Referenceable {
    total = 0;
    remote_increment(call: RemoteCall) {
      this.total += (call.arg(0, 'n') as number | undefined) ?? 1;
      return this.total;
    }
  }

  const portal: Portal = {
    password: (user) => {
      const p = passwords.get(user.toString());
      return p === undefined ? undefined : Buffer.from(p);
    },
    async avatar(user, mind) {
      await mind!.callRemote('print', [], { message: 'attached' });
      events.push(`login ${user}`);
      return { perspective: new Perspective(mind), logout: () => events.push(`logout ${user}`) };
    },
  };
  let port: number;
  const tcp = createServer((socket) => {
    const broker: Broker = new Broker(socket, { role: 'server', root: new PortalRoot(portal, () => broker) });
  });

  before(async () => {
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    port = (tcp.address() as AddressInfo).port;
  });
  after(() => tcp.close());

  async function runClient(user: string, password: string, scenario: string): Promise<Record<string, unknown>[]> {
    const client = startProcess(PYTHON, [PY_DIR + 'pb_client.py', '127.0.0.1', String(port), user, password, scenario]);
    const code = await client.exited;
    assert.equal(code, 0, client.stderr());
    return client.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it('lets a Twisted client log in and call the perspective', async () => {
    const out = await runClient('alice', 'secret', 'basic');
    assert.deepEqual(out[0], { login: 'ok', printed: ['attached'] });
    const byCall = new Map(out.filter((o) => o.call).map((o) => [o.call, o]));
    const echo = byCall.get('echo')!.result as unknown[];
    assert.equal(JSON.stringify(echo).includes('"kw1"'), true);
    assert.deepEqual(echo[0], 'list');
    assert.deepEqual(byCall.get('add')!.result, ['int', '5']);
    assert.deepEqual(byCall.get('fail')!.error, { type: 'builtins.ValueError', parents: ['builtins.ValueError', 'builtins.Exception', 'builtins.BaseException', 'builtins.object'], value: 'boom' });
    assert.deepEqual(byCall.get('callMind')!.result, ['str', 'python-mind']);
    const increments = out.filter((o) => o.call === 'increment').map((o) => o.result);
    assert.deepEqual(increments, [['int', '5'], ['int', '10']]);
    assert.equal((byCall.get('nosuch')!.error as { type: string }).type, PY.NoSuchMethod);
    assert.deepEqual(out.at(-1), { done: true });
    assert.ok(events.includes('login alice') && events.includes('logout alice'));
  });

  it('echoes every type back exactly as the Twisted client sent it', async () => {
    const out = await runClient('alice', 'secret', 'basic');
    const echo = out.find((o) => o.call === 'echo')!.result as Tagged;
    const int = (n: number | bigint) => ['int', String(n)];
    // Sets have no order; Python may iterate the echoed set differently than the one it sent.
    assert.deepEqual(sortSets(echo), sortSets(['list', [
      ['tuple', [int(1), int(-2), int(2 ** 31), int(-(2n ** 31n) - 1n), int(2n ** 70n),
        ['float', '3ff8000000000000'], ['float', '7ff0000000000000'], ['bytes', Buffer.from('list').toString('hex')], ['str', 'text'], ['none'],
        ['bool', true], ['bool', false], ['list', [int(1), ['list', [int(2)]]]], ['tuple', [int(3), int(4)]],
        ['dict', [[['str', 'k'], ['bytes', '76']], [int(5), ['tuple', [int(6)]]]]], ['set', [int(7), int(8)]],
        ['frozenset', [int(9)]]]],
      ['dict', [[['str', 'kw1'], ['str', 'x']], [['str', 'kw2'], ['none']]]],
    ]]));
  });

  it('refuses a Twisted client with a wrong password or unknown user as Twisted would', async () => {
    for (const [user, password] of [['alice', 'nope'], ['nobody', 'secret']] as const) {
      const [line] = await runClient(user, password, 'badpass');
      assert.equal(line!.login, 'failed');
      assert.equal(line!.type, PY.UnauthorizedLogin);
      assert.deepEqual(line!.parents, [PY.UnauthorizedLogin, PY.LoginFailed, PY.Unauthorized, 'builtins.Exception', 'builtins.BaseException', 'builtins.object']);
    }
  });
});
