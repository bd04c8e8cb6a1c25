// `bbgate relay` in front of a real Buildbot 3.7 master: the Python buildbot-worker and a bbgate
// worker (through squid and the wss:// listener) run builds; strangers are refused before the
// master hears of them; a silent client, a flood, a per-worker limit and a master restart.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeSexp } from '../../src/pb/banana/writer.js';
import { Broker } from '../../src/pb/broker.js';
import { login } from '../../src/pb/login.js';
import { startMaster, startPythonWorker, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { testPki } from '../helpers/pki.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { PY_DIR, PYTHON } from '../helpers/python.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

/** The relay's greeting: the master's dialects, then its mark. */
const OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none'), Buffer.from('bbgate-relay')]);
const echo = (text: string) => `steps.ShellCommand(command=['echo', '${text}'], name='say')`;

async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
  const run = await bbgate(['probe', ...args, '--json']);
  return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
}

/** A PB client of bbgate's own on a raw socket to the relay, for calls no real worker makes. */
async function brokerTo(port: number): Promise<{ broker: Broker; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const broker = new Broker(socket, { role: 'client' });
  return { broker, closed: new Promise((resolve) => socket.on('close', () => resolve())) };
}

/** Opens a raw TCP connection that says nothing; resolves when the relay closes it, with what it received. */
function silentClient(port: number): { socket: Socket; closed: Promise<Buffer> } {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  return { socket, closed: new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks)))) };
}

describe('bbgate relay in front of a real Buildbot 3.7 master', () => {
  let master: RunningMaster;
  let relay: TestRelay;
  let squid: RunningSquid;
  let pyWorker: RunningPythonWorker | undefined;
  let bbWorker: TestWorker | undefined;
  let trust: string;
  const workers = [
    { name: 'py-w', password: 'py-pass' },
    { name: 'bb-linux', password: 'bb-pass' },
    { name: 'stranger', password: 'stranger-pass' },
  ];
  const builders = [
    { name: 'py-b', workernames: ['py-w'], steps: [echo('built-by-python')] },
    { name: 'bb-b', workernames: ['bb-linux'], steps: [echo('built-by-bbgate')] },
  ];

  before(async () => {
    const pki = await testPki();
    trust = await pki.trustDir(pki.root);
    master = await startMaster({ workers, builders });
    relay = await startRelay({
      listen: ['tcp:0:interface=127.0.0.1', `wss://127.0.0.1:0/pb#certKey=${pki.server.certFile}&privateKey=${pki.server.keyFile}&extraCertChain=${pki.intermediate.certFile}`],
      upstream: `tcp:127.0.0.1:${master.pbPort}`,
      allow: ['py-w', 'bb-*'],
      handshakeTimeout: 2,
    });
    squid = await startSquid({ auth: { users: { alice: 'squid-pass' } }, allowPorts: [relay.port(1)] });
  });
  after(async () => {
    await bbWorker?.stop();
    await pyWorker?.stop();
    await relay?.stop();
    await squid?.stop();
    await master?.stop();
  });

  it('runs a build on the Python buildbot-worker connected through the TCP listener', async () => {
    pyWorker = await startPythonWorker({ masterPort: relay.port(0), name: 'py-w', password: 'py-pass' });
    const build = await master.runBuild('py-b');
    assert.equal(build.resultName, 'SUCCESS');
    assert.match(build.steps.find((s) => s.name === 'say')!.logs[0]!.stdout, /built-by-python/);
    await relay.waitForLog((l) => l.msg === 'worker admitted' && l.fields.worker === 'py-w');
    assert.equal(await relay.metric('bbgate_relay_connections', { state: 'relaying' }), 1);
  });

  it('runs a build on a bbgate worker that reaches the wss:// listener through squid', async () => {
    bbWorker = await startTestWorker({
      connection: `wss://localhost:${relay.port(1)}/pb#trustRoots=${trust}`,
      proxyConnectionString: `http://alice:squid-pass@127.0.0.1:${squid.port}`,
      workername: 'bb-linux',
      password: 'bb-pass',
    });
    await master.waitForWorker('bb-linux', { timeoutMs: 20000 });
    const build = await master.runBuild('bb-b');
    assert.equal(build.resultName, 'SUCCESS');
    assert.match(build.steps.find((s) => s.name === 'say')!.logs[0]!.stdout, /built-by-bbgate/);
    assert.ok(relay.lines.some((l) => l.msg === 'worker admitted' && l.fields.worker === 'bb-linux' && String(l.fields.listener).startsWith('wss://')));
  });

  it('refuses a worker that is not on the allow-list with a clear message, and the master never hears of it', async () => {
    const since = await master.logSize();
    const { status, report, text } = await probe([`tcp:127.0.0.1:${relay.port(0)}`, '--name', 'stranger', '--password', 'stranger-pass']);
    assert.equal(status, 5, text);
    const login = report.steps.at(-1)!;
    assert.equal(login.step, 'login');
    assert.equal(login.code, 'RELAY_DENIED');
    assert.match(login.message, /worker "stranger" is not allowed to log in through this relay/);
    const refused = await relay.waitForLog((l) => l.msg === 'worker refused' && l.fields.worker === 'stranger');
    assert.match(String(refused.fields.reason), /worker "stranger" is not on this relay's allow-list/);
    // The unmodified Python worker takes the refusal as a failed login and retries later.
    const stranger = await startPythonWorker({ masterPort: relay.port(0), name: 'stranger', password: 'stranger-pass', waitAttached: false });
    try {
      await stranger.waitForLog(/unauthorized login; check worker name and password/, 20000);
    } finally {
      await stranger.stop();
    }
    // A barrier: a login the relay does pass on (bb-* is allowed; the master knows no such worker).
    // Whatever of the stranger's reached the master came before it in the master's log.
    const barrier = await probe([`tcp:127.0.0.1:${relay.port(0)}`, '--name', 'bb-barrier', '--password', 'x']);
    assert.equal(barrier.status, 5, barrier.text);
    await master.waitForLog(/invalid login from unknown user 'bb-barrier'/, 10_000, since);
    const masterLog = (await master.log()).slice(since);
    assert.doesNotMatch(masterLog, /stranger/);
    assert.ok(await relay.metric('bbgate_relay_logins_total', { result: 'denied', reason: 'not_listed' }) >= 2);
  });

  it('cuts a worker that calls the root again after its login, before the call reaches the master', async () => {
    const since = await master.logSize();
    const { broker, closed } = await brokerTo(relay.port(0));
    // Admitted as py-w without ever answering the challenge, then a login as a worker the
    // allow-list refuses, with its right password: PB would allow it; the relay must not.
    await broker.rootObject().callRemote('login', [Buffer.from('py-w')]);
    const second = broker.rootObject().callRemote('login', [Buffer.from('stranger')]);
    await assert.rejects(second, /connection/i);
    await closed;
    await relay.waitForLog((l) => l.msg === 'worker cut off' && /called the root object's login\(\) after its login/.test(String(l.fields.err)));
    assert.doesNotMatch((await master.log()).slice(since), /stranger/);
    assert.ok(await relay.metric('bbgate_relay_logins_total', { result: 'denied', reason: 'policy_violation' }) >= 1);
  });

  it('closes a connection whose password the master refused, and counts it', async () => {
    const before = await relay.metric('bbgate_relay_logins_total', { result: 'failed', reason: 'master_refused' });
    const { status, report, text } = await probe([`tcp:127.0.0.1:${relay.port(0)}`, '--name', 'py-w', '--password', 'wrong']);
    assert.equal(status, 5, text);
    assert.equal(report.steps.at(-1)!.code, 'PB_UNAUTHORIZED');
    assert.equal(await relay.metric('bbgate_relay_logins_total', { result: 'failed', reason: 'master_refused' }), before + 1);
  });

  it('drops a client that connects and sends nothing after the handshake timeout', async () => {
    const before = await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'timeout' });
    const received = await silentClient(relay.port(0)).closed;
    assert.deepEqual(received, OFFER, 'the client gets the dialect offer and nothing else');
    assert.equal(await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'timeout' }), before + 1);
    await relay.waitForLog((l) => l.msg === 'connection closed' && /sent no PB login within 2 s/.test(String(l.fields.reason)));
  });

  it('tells workers the master is unreachable while it is down, keeps serving, and the workers reconnect after a restart', async () => {
    const port = master.pbPort;
    await master.stop();
    const down = await probe([`tcp:127.0.0.1:${relay.port(0)}`, '--name', 'bb-linux', '--password', 'bb-pass']);
    assert.equal(down.status, 2, down.text);
    assert.equal(down.report.steps.at(-1)!.code, 'RELAY_UPSTREAM');
    assert.match(down.report.steps.at(-1)!.message, /could not reach the Buildbot master \(NET_REFUSED\)/);
    assert.doesNotMatch(down.text, new RegExp(`127\\.0\\.0\\.1:${port}`), 'the worker is not told where the master is');
    assert.ok(await relay.metric('bbgate_relay_upstream_failures_total', { code: 'NET_REFUSED' }) >= 1);
    assert.equal((await relay.healthz()).status, 200);
    master = await startMaster({ workers, builders, pbPort: port });
    await master.waitForWorker('bb-linux', { timeoutMs: 60000 });
    await master.waitForWorker('py-w', { timeoutMs: 90000 });
    const build = await master.runBuild('bb-b');
    assert.equal(build.resultName, 'SUCCESS');
    // squid logs a tunnel when it closes: the bbgate worker's first one ended with the master.
    assert.match(squid.accessLog(), new RegExp(`CONNECT localhost:${relay.port(1)} .*alice`));
  });
});

describe('bbgate relay limits', () => {
  let master: RunningMaster;
  let relay: TestRelay;
  let held: TestWorker | undefined;

  before(async () => {
    master = await startMaster({ workers: [{ name: 'lim-w', password: 'lim-pass' }, { name: 'other-w', password: 'other-pass' }, { name: 'dup-w', password: 'dup-pass' }] });
    // maxPerSource as high as maxConnections: every client here comes from 127.0.0.1.
    relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${master.pbPort}`, allow: ['*'], maxConnections: 20, maxPerSource: 20, maxPerWorker: 1 });
  });
  after(async () => {
    await held?.stop();
    await relay?.stop();
    await master?.stop();
  });

  it('refuses a second connection for a worker name at its limit, without disturbing the first', async () => {
    held = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port()}`, workername: 'lim-w', password: 'lim-pass' });
    await master.waitForWorker('lim-w');
    const { status, report, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'lim-w', '--password', 'lim-pass']);
    assert.equal(status, 5, text);
    assert.equal(report.steps.at(-1)!.code, 'RELAY_LIMIT');
    assert.match(report.steps.at(-1)!.message, /worker "lim-w" already has 1 connection through this relay \(the limit is 1\)/);
    await master.waitForWorker('lim-w');
    assert.equal(await relay.metric('bbgate_relay_logins_total', { result: 'denied', reason: 'worker_limit' }), 1);
  });

  it('counts logins awaiting the master toward the limit, yet connections that only name a worker cannot lock the real one out', async () => {
    const displaced = await relay.metric('bbgate_relay_logins_total', { result: 'displaced', reason: 'newer_login' });
    // 30 logins that never answer the master's challenge: each takes the slot of the one before,
    // so they never hold more than --max-per-worker master connections between them.
    const squatters: Awaited<ReturnType<typeof brokerTo>>[] = [];
    for (let i = 0; i < 30; i++) {
      const squatter = await brokerTo(relay.port());
      await squatter.broker.rootObject().callRemote('login', [Buffer.from('other-w')]);
      squatters.push(squatter);
      if (i > 0) await squatters[i - 1]!.closed;
    }
    assert.equal(await relay.metric('bbgate_relay_connections', { state: 'login' }), 1);
    assert.equal(await relay.metric('bbgate_relay_logins_total', { result: 'displaced', reason: 'newer_login' }), displaced + 29);
    // The real worker answers its challenge at once, so the last squatter gives way to it.
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'other-w', '--password', 'other-pass']);
    assert.equal(status, 0, text);
    await squatters.at(-1)!.closed;
    await relay.waitForLog((l) => l.msg === 'login displaced by a newer one for the same worker' && l.fields.worker === 'other-w');
  });

  it('frees the slot of a login the master refused at once, not after its last words', async () => {
    // A client that stays connected after its wrong password, as a squatter would.
    const { broker, closed } = await brokerTo(relay.port());
    await assert.rejects(login(broker, 'other-w', 'wrong', null), (err: Error & { code?: string }) => err.code === 'PB_UNAUTHORIZED');
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'other-w', '--password', 'other-pass']);
    assert.equal(status, 0, text);
    await closed;
  });

  it('logs the master\'s refusal of a duplicate worker as that, not as a wrong password', async () => {
    const direct = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'dup-w', password: 'dup-pass' });
    try {
      await master.waitForWorker('dup-w');
      const since = await master.logSize();
      const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'dup-w', '--password', 'dup-pass']);
      assert.notEqual(status, 0, text);
      await master.waitForLog(/Got duplication connection from 'dup-w'/, 10000, since);
      const refused = await relay.waitForLog((l) => l.fields.worker === 'dup-w' && /duplicate/.test(l.msg));
      assert.equal(refused.msg, 'the master refused the worker as a duplicate: a connection for that name is attached and answering');
      assert.equal(await relay.metric('bbgate_relay_logins_total', { result: 'failed', reason: 'duplicate_worker' }), 1);
      assert.ok(!relay.lines.some((l) => l.fields.worker === 'dup-w' && /password/.test(l.msg)), 'not logged as a wrong password');
      await master.waitForWorker('dup-w');
    } finally {
      await direct.stop();
    }
  });

  it('cuts a respond() that could pass the master\'s answer to the login off as its verdict', async () => {
    const word = (w: string) => Buffer.from(w);
    const call = (id: number, target: number | Buffer, method: string, answer: number) =>
      encodeSexp([word('message'), id, target, word(method), answer, [word('tuple'), Buffer.alloc(16)], [word('dictionary')]], true);
    for (const [respond, why] of [[call(1, 1, 'respond', 1), /reuses its login's request id/], [call(2, 1, 'respond', 0), /asks for no answer/]] as const) {
      const client = silentClient(relay.port());
      client.socket.write(Buffer.concat([encodeSexp(word('pb')), encodeSexp([word('version'), 6], true), call(1, word('root'), 'login', 1), respond]));
      await client.closed;
      await relay.waitForLog((l) => l.msg === 'worker cut off' && why.test(String(l.fields.err)));
    }
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'other-w', '--password', 'other-pass']);
    assert.equal(status, 0, text);
  });

  it('refuses a flood past --max-connections at once, stays responsive, and serves a worker afterwards', async () => {
    const relaying = await relay.metric('bbgate_relay_connections', { state: 'relaying' });
    const capacity = 20 - relaying;
    const flood = Array.from({ length: 300 }, () => silentClient(relay.port()));
    let closed = 0;
    for (const c of flood) void c.closed.then(() => closed++);
    // "At once" is an order: every refusal comes before the first handshake timeout of those let in.
    await waitFor(() => closed >= 300 - capacity, 'the refusals past the limit');
    assert.equal(closed, 300 - capacity, 'the connections within the limit stay open until their handshake timeout');
    const health = await relay.healthz();
    assert.equal(health.status, 200);
    assert.equal(await relay.metric('bbgate_relay_connections', { state: 'handshake' }), capacity);
    assert.equal(await relay.metric('bbgate_relay_sockets'), 20, 'no more connections held than the limit');
    assert.equal(await relay.metric('bbgate_relay_connections_refused_total', { reason: 'max_connections' }), 300 - capacity);
    for (const c of flood) c.socket.destroy();
    await Promise.all(flood.map((c) => c.closed));
    await waitFor(async () => (await relay.metric('bbgate_relay_connections', { state: 'handshake' })) === 0, 'no connection left in the handshake');
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'other-w', '--password', 'other-pass']);
    assert.equal(status, 0, text);
    assert.ok(relay.lines.some((l) => l.msg.startsWith('connection refused: too many connections')));
  });
});

describe('bbgate relay --max-per-source', () => {
  let master: RunningMaster;
  let relay: TestRelay;

  before(async () => {
    master = await startMaster({ workers: [{ name: 'src-w', password: 'src-pass' }] });
    // --max-connections 50 leaves --max-per-source at its default, a tenth: 5.
    relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${master.pbPort}`, allow: ['*'], maxConnections: 50 });
  });
  after(async () => {
    await relay?.stop();
    await master?.stop();
  });

  it('60 idle sockets from one address hold 5 connections, not all 50, and a worker from another address logs in', async () => {
    assert.equal(relay.relay.config.maxPerSource, 5);
    const flood = Array.from({ length: 60 }, () => silentClient(relay.port()));
    // Each refused socket closes without a byte; the 5 admitted ones get the dialect offer.
    const received = await Promise.all(flood.map((c) => Promise.race([c.closed.then(() => 'closed'), new Promise<string>((resolve) => c.socket.once('data', () => resolve('offer')))])));
    assert.equal(received.filter((r) => r === 'offer').length, 5);
    assert.equal(received.filter((r) => r === 'closed').length, 55);
    assert.equal(await relay.metric('bbgate_relay_connections_refused_total', { reason: 'max_per_source' }), 55);
    assert.equal(await relay.metric('bbgate_relay_connections_refused_total', { reason: 'max_connections' }), 0);
    assert.equal(await relay.metric('bbgate_relay_sockets'), 5);
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port()}:bindAddress=127.0.0.2`, '--name', 'src-w', '--password', 'src-pass']);
    assert.equal(status, 0, text);
    const logged = await relay.waitForLog((l) => l.msg === 'connection refused: too many connections from one address (--max-per-source)');
    assert.equal(logged.fields.peer, '127.0.0.1');
    for (const c of flood) c.socket.destroy();
    await Promise.all(flood.map((c) => c.closed));
  });
});

// Buildbot 3.7 opens its PB port with twisted.application.strports.listen, which knows only the
// reactor's own listeners: a haproxy: port string fails there ("can only concatenate str (not
// HAProxyServerParser) to str"). Twisted's PROXY endpoint itself is the peer here, in front of a
// real Twisted PB server that reports the address its broker sees.
describe('bbgate relay with PROXY protocol v2 toward a Twisted haproxy: endpoint', () => {
  let server: LineProcess;
  let relay: TestRelay;

  before(async () => {
    server = startProcess(PYTHON, [PY_DIR + 'pb_server.py', 'haproxy']);
    const port = Number((await server.waitForLine(/^PORT \d+$/)).split(' ')[1]);
    relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${port}`, allow: ['alice'], proxyProtocol: true });
  });
  after(async () => {
    await relay?.stop();
    server?.kill();
  });

  it('the server sees the worker\'s own address, not the relay\'s', async () => {
    await probe([`tcp:127.0.0.1:${relay.port()}:bindAddress=127.0.0.7`, '--name', 'alice', '--password', 'secret']);
    const login = JSON.parse(await server.waitForLine(/"event": ?"login"/)) as { user: string; peer: string };
    assert.deepEqual(login, { event: 'login', user: 'alice', peer: '127.0.0.7' });
  });
});
