// The relay behind a real haproxy (TCP mode) that sends PROXY headers: a listener with
// proxyFrom= takes the worker's address from the header (v2 and v1; before TLS on tls: and
// wss://), so `name@CIDR` rules and the logs see the worker, not haproxy. A listed address
// without a header is dropped; an unlisted one is an ordinary client. In front of a real
// Buildbot 3.7 master, probed by the real `bbgate probe`.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeSexp } from '../../src/pb/banana/writer.js';
import { Broker } from '../../src/pb/broker.js';
import { parseListener, resolveRelayConfig } from '../../src/relay/config.js';
import { proxyV2Header } from '../../src/relay/proxy-protocol.js';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { startHaproxy, type RunningHaproxy } from '../helpers/haproxy.js';
import { testPki } from '../helpers/pki.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

/** The worker's own address: loopback, but not the 127.0.0.1 haproxy and the relay trust. */
const WORKER_IP = '127.0.0.9';

async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
  const run = await bbgate(['probe', ...args, '--name', 'w', '--password', 'p', '--json']);
  return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
}

/** A raw client of the relay from `localAddress`; resolves `closed` with all it received when the relay hangs up. */
async function rawClient(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<Buffer> }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<Buffer>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
  await once(socket, 'connect');
  return { socket, closed };
}

describe('proxyFrom= in listener settings', () => {
  const configError = (text: string, message: RegExp) =>
    assert.throws(() => parseListener(text), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'RELAY_CONFIG');
      assert.match(err.message, message);
      assert.ok(err.message.includes(`"${text}"`), `the message names the listener: ${err.message}`);
      return true;
    });

  it('takes addresses and CIDRs, IPv4 and IPv6, on every kind of listener, and leaves them out of its name', () => {
    assert.deepEqual(parseListener('tcp:9989:proxyFrom=10.0.0.2/32,10.0.0.3/32'), { kind: 'tcp', name: 'tcp:9989', port: 9989, proxyFrom: ['10.0.0.2/32', '10.0.0.3/32'] });
    assert.deepEqual(parseListener('tcp:9989:interface=10.0.0.1:proxyFrom=10.0.0.2'), { kind: 'tcp', name: 'tcp:9989:interface=10.0.0.1', port: 9989, host: '10.0.0.1', proxyFrom: ['10.0.0.2'] });
    assert.deepEqual(parseListener('ssl:443:certKey=/k.pem:proxyFrom=2001\\:db8\\:\\:/32, 10.0.0.0/8').proxyFrom, ['2001:db8::/32', '10.0.0.0/8']);
    assert.deepEqual(parseListener('ws://0.0.0.0:80/pb#proxyFrom=10.0.0.0/24'), { kind: 'ws', name: 'ws://0.0.0.0:80/pb', port: 80, host: '0.0.0.0', path: '/pb', proxyFrom: ['10.0.0.0/24'] });
    const wss = parseListener('wss://[::]:443/pb#certKey=/k.pem&proxyFrom=::1,fd00::/8');
    assert.equal(wss.name, 'wss://[::]:443/pb');
    assert.deepEqual(wss.proxyFrom, ['::1', 'fd00::/8']);
    assert.equal(parseListener('tcp:9989').proxyFrom, undefined);
  });

  it('refuses what is not an address or a CIDR, naming the listener and the option', () => {
    configError('tcp:9989:proxyFrom=10.0.0.0/33', /proxyFrom: prefix length 33 is too long for an IPv4 address/);
    configError('tcp:9989:proxyFrom=', /proxyFrom: empty source address/);
    configError('tcp:9989:proxyFrom=10.0.0.1,,10.0.0.2', /proxyFrom: empty source address/);
    configError('tls:443:certKey=/k.pem:proxyFrom=haproxy.internal', /proxyFrom: "haproxy\.internal" is not an IPv4 or IPv6 address/);
    configError('ws://0.0.0.0:80/pb#proxyFrom=10.0.0.1/x', /proxyFrom: "x" is not a prefix length/);
    configError('ws://0.0.0.0:80/pb#proxyFrom=10.0.0.1&proxyFrom=10.0.0.2', /"proxyFrom" is given twice/);
    configError('ws://0.0.0.0:80/pb#certKey=/k.pem', /unknown option "certKey" after # \(allowed: proxyFrom\)/);
    configError('tcp:9989:proxyfrom=10.0.0.1', /unknown key "proxyfrom" \(allowed: port, interface, proxyFrom\)/);
    assert.throws(
      () => resolveRelayConfig({ listen: ['tcp:9989:proxyFrom=fe80::1%eth0'], upstream: 'tcp:m:9989', allow: ['*'] }),
      (err: Error & { code?: string }) => err.code === 'RELAY_CONFIG',
    );
  });
});

describe('bbgate relay behind haproxy with PROXY headers, in front of a real Buildbot 3.7 master', () => {
  let master: RunningMaster;
  /** tcp:, wss:// and tls: listeners trusting 127.0.0.1, and rule w@127.0.0.9/32. */
  let relay: TestRelay;
  /** The same, but rule w@127.0.0.8/32. */
  let elsewhere: TestRelay;
  let haproxy: RunningHaproxy;
  let trust: string;
  const via = { tcpV2: 0, tcpV1: 0, wss: 0, tls: 0, elsewhere: 0 };

  before(async () => {
    const pki = await testPki();
    trust = await pki.trustDir(pki.root);
    const cert = { certKey: pki.server.certFile, privateKey: pki.server.keyFile, extraCertChain: pki.intermediate.certFile };
    master = await startMaster({ workers: [{ name: 'w', password: 'p' }] });
    relay = await startRelay({
      listen: [
        'tcp:0:interface=127.0.0.1:proxyFrom=127.0.0.1',
        `wss://127.0.0.1:0/pb#certKey=${cert.certKey}&privateKey=${cert.privateKey}&extraCertChain=${cert.extraCertChain}&proxyFrom=127.0.0.1`,
        `tls:0:interface=127.0.0.1:certKey=${cert.certKey}:privateKey=${cert.privateKey}:extraCertChain=${cert.extraCertChain}:proxyFrom=127.0.0.1/32`,
      ],
      upstream: `tcp:127.0.0.1:${master.pbPort}`,
      allow: [`w@${WORKER_IP}/32`],
      handshakeTimeout: 2,
    });
    elsewhere = await startRelay({
      listen: ['tcp:0:interface=127.0.0.1:proxyFrom=127.0.0.1'],
      upstream: `tcp:127.0.0.1:${master.pbPort}`,
      allow: ['w@127.0.0.8/32'],
    });
    haproxy = await startHaproxy([
      { target: relay.port(0), sendProxy: 'v2' },
      { target: relay.port(0), sendProxy: 'v1' },
      // TCP passthrough: TLS is the relay's, and the PROXY header comes before it.
      { target: relay.port(1), sendProxy: 'v2' },
      { target: relay.port(2), sendProxy: 'v2' },
      { target: elsewhere.port(0), sendProxy: 'v2' },
    ]);
    [via.tcpV2, via.tcpV1, via.wss, via.tls, via.elsewhere] = haproxy.ports as [number, number, number, number, number];
  });
  after(async () => {
    await haproxy?.stop();
    await relay?.stop();
    await elsewhere?.stop();
    await master?.stop();
  });

  /** The relay's log lines for a worker connection that came from WORKER_IP, on the given listener. */
  const fromWorker = (r: TestRelay, msg: string, listener: string) =>
    r.lines.filter((l) => l.msg === msg && String(l.fields.peer).startsWith(`${WORKER_IP}:`) && l.fields.listener === listener);

  it('counts PROXY header failures from the start, at 0', async () => {
    const text = await (await fetch(`http://127.0.0.1:${relay.relay.metricsAddress!.port}/metrics`)).text();
    assert.match(text, /^bbgate_relay_handshake_failures_total\{reason="proxy_header"\} 0$/m);
  });

  it('v2 through haproxy: the worker logs in by the rule for its own address, and the log names that address', async () => {
    // Earlier lines are startHaproxy's readiness checks, which did come from 127.0.0.1.
    const since = relay.lines.length;
    const { status, report, text } = await probe([`tcp:127.0.0.1:${via.tcpV2}:bindAddress=${WORKER_IP}`]);
    assert.equal(status, 0, text);
    assert.equal(report.steps.at(-2)!.step, 'login');
    const listener = relay.relay.addresses()[0]!.spec.name;
    await relay.waitForLog((l) => l.msg === 'connection closed' && String(l.fields.peer).startsWith(`${WORKER_IP}:`));
    assert.equal(fromWorker(relay, 'worker admitted', listener).length, 1);
    assert.equal(fromWorker(relay, 'worker admitted', listener)[0]!.fields.rule, `w@${WORKER_IP}/32`);
    assert.equal(fromWorker(relay, 'worker logged in', listener).length, 1);
    const haproxyPeer = relay.lines.slice(since).filter((l) => String(l.fields.peer ?? '').startsWith('127.0.0.1:'));
    assert.deepEqual(haproxyPeer, [], 'haproxy\'s address appears nowhere');
  });

  it('v2 through haproxy to a relay whose rule names another address: refused with RELAY_DENIED', async () => {
    const { status, report, text } = await probe([`tcp:127.0.0.1:${via.elsewhere}:bindAddress=${WORKER_IP}`]);
    assert.equal(status, 5, text);
    const login = report.steps.at(-1)!;
    assert.equal(login.code, 'RELAY_DENIED');
    // The worker is told what one not on the list is told; the relay's log says why.
    assert.match(login.message, /worker "w" is not allowed to log in through this relay/);
    assert.doesNotMatch(text, /127\.0\.0\.8|may only connect/);
    const refused = await elsewhere.waitForLog((l) => l.msg === 'worker refused');
    assert.match(String(refused.fields.peer), new RegExp(`^${WORKER_IP}:\\d+$`));
    assert.match(String(refused.fields.reason), new RegExp(`may only connect from 127\\.0\\.0\\.8/32, not from ${WORKER_IP.replace(/\./g, '\\.')}`));
    assert.equal(await elsewhere.metric('bbgate_relay_logins_total', { result: 'denied', reason: 'source_address' }), 1);
  });

  it('v1 (send-proxy) through haproxy: the same', async () => {
    const before = fromWorker(relay, 'worker logged in', relay.relay.addresses()[0]!.spec.name).length;
    const { status, text } = await probe([`tcp:127.0.0.1:${via.tcpV1}:bindAddress=${WORKER_IP}`]);
    assert.equal(status, 0, text);
    await waitFor(async () => fromWorker(relay, 'worker logged in', relay.relay.addresses()[0]!.spec.name).length === before + 1, 'a second login from the worker\'s address');
  });

  it('wss:// through haproxy in TCP mode: the header is read before TLS, which the relay terminates', async () => {
    const { status, report, text } = await probe([`wss://localhost:${via.wss}/pb#trustRoots=${trust}&bindAddress=${WORKER_IP}`]);
    assert.equal(status, 0, text);
    assert.ok(report.steps.some((s) => s.step === 'tls' && s.ok), text);
    await waitFor(async () => fromWorker(relay, 'worker logged in', relay.relay.addresses()[1]!.spec.name).length === 1, 'a login on the wss:// listener from the worker\'s address');
  });

  it('tls: through haproxy in TCP mode: the same', async () => {
    const { status, text } = await probe([`tls:localhost:${via.tls}:trustRoots=${trust}:bindAddress=${WORKER_IP}`]);
    assert.equal(status, 0, text);
    await waitFor(async () => fromWorker(relay, 'worker logged in', relay.relay.addresses()[2]!.spec.name).length === 1, 'a login on the tls: listener from the worker\'s address');
  });

  it('a client from a listed address that sends no header is dropped at the handshake timeout, and one that sends garbage at once', async () => {
    const before = await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'proxy_header' });
    const direct = await probe([`tcp:127.0.0.1:${relay.port(0)}`]);
    assert.notEqual(direct.status, 0, direct.text);
    assert.equal(direct.report.steps.at(-1)!.step, 'pb', direct.text);
    await waitFor(async () => (await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'proxy_header' })) === before + 1, 'the silent client counted');
    const warning = await relay.waitForLog((l) => l.msg === 'no valid PROXY header from a trusted load balancer');
    assert.equal(warning.level, 'warn');
    assert.match(String(warning.fields.peer), /^127\.0\.0\.1:\d+$/);
    // It waited for the header until the handshake timeout: the reason is the timeout's.
    assert.match(String(warning.fields.err), /no whole PROXY header within 2000 ms/);

    // PB bytes where the header should be, on the tcp: and the wss:// listener: dropped at once, and
    // the relay has not said a word (on tcp: it would otherwise send its dialect offer first).
    // "At once" is an order: both are dropped before a silent client that came first reaches the timeout.
    const order: string[] = [];
    const silent = await rawClient(relay.port(0), '127.0.0.1');
    const silentClosed = silent.closed.then(() => order.push('silent client dropped'));
    for (const [i, port] of [relay.port(0), relay.port(1)].entries()) {
      const garbage = await rawClient(port, '127.0.0.1');
      garbage.socket.write(Buffer.from([0x02, 0x82, 0x70, 0x62]));
      assert.equal((await garbage.closed).length, 0);
      order.push(`garbage ${i} dropped`);
    }
    await silentClosed;
    assert.deepEqual(order, ['garbage 0 dropped', 'garbage 1 dropped', 'silent client dropped']);
    await waitFor(async () => (await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'proxy_header' })) === before + 4, 'the garbage and the silent client counted');
  });

  it('v2 LOCAL (a load balancer\'s own connection) keeps the socket\'s address', async () => {
    const socket = connect({ host: '127.0.0.1', port: relay.port(0) });
    await once(socket, 'connect');
    socket.write(proxyV2Header(undefined, undefined));
    const broker = new Broker(socket, { role: 'client' });
    const since = relay.lines.length;
    await assert.rejects(broker.rootObject().callRemote('login', [Buffer.from('w')]), /worker "w" is not allowed to log in through this relay/);
    socket.destroy();
    const refused = await relay.waitForLog((l) => l.msg === 'worker refused' && relay.lines.indexOf(l) >= since);
    assert.match(String(refused.fields.peer), /^127\.0\.0\.1:\d+$/);
    assert.match(String(refused.fields.reason), /not from 127\.0\.0\.1$/);
  });

  it('a client from an unlisted address is an ordinary client: served without a header, and a header from it is garbage to PB', async () => {
    const { status, text } = await probe([`tcp:127.0.0.1:${relay.port(0)}:bindAddress=${WORKER_IP}`]);
    assert.equal(status, 0, text);

    const failures = async (reason: string) => relay.metric('bbgate_relay_handshake_failures_total', { reason });
    const [protocol, proxyHeader] = [await failures('protocol'), await failures('proxy_header')];
    // It claims to come from 127.0.0.8, then chooses PB's dialect; the relay reads it all as PB,
    // where the header's bytes run into a string length no client may send.
    const forger = await rawClient(relay.port(0), WORKER_IP);
    forger.socket.write(Buffer.concat([Buffer.from(`PROXY TCP4 127.0.0.8 127.0.0.1 1234 ${relay.port(0)}\r\n`), encodeSexp(Buffer.from('pb'))]));
    await forger.closed;
    await waitFor(async () => (await failures('protocol')) === protocol + 1, 'a PB protocol failure');
    assert.equal(await failures('proxy_header'), proxyHeader);
    assert.ok(!relay.lines.some((l) => String(l.fields.peer ?? '').startsWith('127.0.0.8:')));
  });
});

describe('--max-per-source behind haproxy: the source is the one the PROXY header names', () => {
  let relay: TestRelay;
  let haproxy: RunningHaproxy;

  before(async () => {
    // No PB gets as far as the master here: a refused connection ends before PB, an admitted one at its dialect offer.
    relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1:proxyFrom=127.0.0.1'], upstream: 'tcp:127.0.0.1:9', allow: ['*'], maxPerSource: 2 });
    haproxy = await startHaproxy([{ target: relay.port(0), sendProxy: 'v2' }]);
  });
  after(async () => {
    await haproxy?.stop();
    await relay?.stop();
  });

  /** What became of a client through haproxy: the relay's dialect offer, or a close without a byte. */
  async function fate(localAddress: string): Promise<{ client: Awaited<ReturnType<typeof rawClient>>; got: 'offer' | 'closed' }> {
    const client = await rawClient(haproxy.ports[0]!, localAddress);
    const got = await Promise.race([once(client.socket, 'data').then(() => 'offer' as const), client.closed.then(() => 'closed' as const)]);
    return { client, got };
  }

  it('refuses the third connection from one worker address at once, and serves another address, though haproxy\'s is the same', async () => {
    const first = await fate(WORKER_IP);
    const second = await fate(WORKER_IP);
    const third = await fate(WORKER_IP);
    assert.deepEqual([first.got, second.got, third.got], ['offer', 'offer', 'closed']);
    assert.deepEqual(await third.client.closed, Buffer.alloc(0), 'refused before a byte');
    const other = await fate('127.0.0.10');
    assert.equal(other.got, 'offer');
    assert.equal(await relay.metric('bbgate_relay_connections_refused_total', { reason: 'max_per_source' }), 1);
    const logged = await relay.waitForLog((l) => l.msg === 'connection refused: too many connections from one address (--max-per-source)');
    assert.equal(logged.fields.peer, WORKER_IP);
    // A slot comes back when its connection closes.
    first.client.socket.destroy();
    await waitFor(async () => (await relay.metric('bbgate_relay_sockets')) === 2, 'the relay sees the first connection closed');
    assert.equal((await fate(WORKER_IP)).got, 'offer');
    for (const c of [first, second, other]) c.client.socket.destroy();
  });
});
