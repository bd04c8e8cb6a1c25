// The relay with TLS on both sides: a tls: listener that requires client certificates, and an
// upstream to a real 3.7 master's TLS port reached through real squid (Basic auth), verified
// against trustRoots, through the same transport stack the worker uses.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

/** A client that sends plain text to a TLS port; resolves when the relay hangs up. */
function notTls(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('hello, this is not a TLS ClientHello\r\n'.repeat(4)));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.resume();
  });
}

describe('bbgate relay with TLS both ways and the master behind squid', () => {
  let pki: TestPki;
  let trust: string;
  let master: RunningMaster;
  let squid: RunningSquid;
  let relay: TestRelay;

  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
    master = await startMaster({
      workers: [{ name: 'tls-w', password: 'tls-pass' }],
      extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=${pki.server.keyFile}:certKey=${pki.server.certFile}:extraCertChain=${pki.intermediate.certFile}' % fx['pbPort']}}`,
    });
    squid = await startSquid({ auth: { users: { relay: 'squid:pass' } }, allowPorts: [master.pbPort] });
    relay = await startRelay({
      listen: [
        `tls:0:interface=127.0.0.1:certKey=${pki.server.certFile}:privateKey=${pki.server.keyFile}:extraCertChain=${pki.intermediate.certFile}:caCertsDir=${trust}`,
        `wss://127.0.0.1:0/pb#certKey=${pki.server.certFile}&privateKey=${pki.server.keyFile}`,
      ],
      upstream: `tls:127.0.0.1:${master.pbPort}:trustRoots=${trust}`,
      upstreamProxy: `http://relay:${encodeURIComponent('squid:pass')}@127.0.0.1:${squid.port}`,
      allow: ['tls-w'],
    });
  });
  after(async () => {
    await relay?.stop();
    await squid?.stop();
    await master?.stop();
  });

  async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args, '--json']);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }

  it('admits a worker with a client certificate and reaches the master through squid over verified TLS', async () => {
    const { status, report, text } = await probe([`tls:localhost:${relay.port()}:trustRoots=${trust}:certificate=${pki.client.certFile}:privateKey=${pki.client.keyFile}`, '--name', 'tls-w', '--password', 'tls-pass']);
    assert.equal(status, 0, text);
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'tls', 'pb', 'login', 'keepalive']);
    // squid logs a tunnel when it closes: the relay's, to the master's TLS port, as user "relay".
    await waitFor(() => squid.accessLog().includes(`CONNECT 127.0.0.1:${master.pbPort}`), "the tunnel in squid's access log");
    assert.match(squid.accessLog(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${master.pbPort} relay`));
    assert.doesNotMatch(relay.lines.map((l) => JSON.stringify(l)).join('\n'), /squid:pass|squid%3Apass/);
  });

  it('refuses a client without a certificate in the TLS handshake', async () => {
    const before = await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' });
    const { status, report, text } = await probe([`tls:localhost:${relay.port()}:trustRoots=${trust}`, '--name', 'tls-w', '--password', 'tls-pass']);
    assert.equal(status, 4, text);
    assert.equal(report.steps.at(-1)!.step, 'tls');
    assert.equal(report.steps.at(-1)!.code, 'TLS_HANDSHAKE');
    await waitFor(async () => (await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' })) > before, 'the failed handshake counted');
    assert.equal(await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' }), before + 1);
  });

  it('counts and drops a client that does not speak TLS, on the tls: and the wss:// listener alike', async () => {
    for (const i of [0, 1]) {
      const before = await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' });
      await notTls(relay.port(i));
      await waitFor(async () => (await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' })) > before, `the failed handshake on listener ${i} counted`);
      assert.equal(await relay.metric('bbgate_relay_handshake_failures_total', { reason: 'tls' }), before + 1, `listener ${i}`);
    }
  });
});

describe('certNames=1: a worker logs in only under a name its client certificate carries', () => {
  let pki: TestPki;
  let trust: string;
  let master: RunningMaster;
  let relay: TestRelay;
  /** Issued by the root to CN "someone", with the DNS name "san-w". */
  let sanClient: { certFile: string; keyFile: string };

  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
    sanClient = await pki.issue({ name: 'san-client', commonName: 'someone', issuer: pki.root, usage: 'client', sans: ['DNS:san-w'] });
    // pki.client's CN is worker-1.
    master = await startMaster({ workers: [{ name: 'worker-1', password: 'p1' }, { name: 'san-w', password: 'p2' }, { name: 'other-w', password: 'p3' }] });
    const identity = { certKey: pki.server.certFile, privateKey: pki.server.keyFile, extraCertChain: pki.intermediate.certFile };
    relay = await startRelay({
      listen: [
        `tls:0:interface=127.0.0.1:certKey=${identity.certKey}:privateKey=${identity.privateKey}:extraCertChain=${identity.extraCertChain}:caCertsDir=${trust}:certNames=1`,
        `wss://127.0.0.1:0/pb#certKey=${identity.certKey}&privateKey=${identity.privateKey}&extraCertChain=${identity.extraCertChain}&caCertsDir=${trust}&certNames=1`,
        `tls:0:interface=127.0.0.1:certKey=${identity.certKey}:privateKey=${identity.privateKey}:extraCertChain=${identity.extraCertChain}:caCertsDir=${trust}`,
      ],
      upstream: `tcp:127.0.0.1:${master.pbPort}`,
      allow: ['*'],
    });
  });
  after(async () => {
    await relay?.stop();
    await master?.stop();
  });

  async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args, '--json']);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }
  const tlsTo = (listener: number, cert: { certFile: string; keyFile: string }) =>
    `tls:localhost:${relay.port(listener)}:trustRoots=${trust}:certificate=${cert.certFile}:privateKey=${cert.keyFile}`;
  const wssTo = (cert: { certFile: string; keyFile: string }) =>
    `wss://localhost:${relay.port(1)}/pb#trustRoots=${trust}&certificate=${cert.certFile}&privateKey=${cert.keyFile}`;

  it('admits the name in the certificate\'s CN (tls:) and in a DNS subjectAltName (wss://)', async () => {
    const cn = await probe([tlsTo(0, pki.client), '--name', 'worker-1', '--password', 'p1']);
    assert.equal(cn.status, 0, cn.text);
    const san = await probe([wssTo(sanClient), '--name', 'san-w', '--password', 'p2']);
    assert.equal(san.status, 0, san.text);
  });

  it('refuses any other name as it refuses a name not on the allow-list, and the master never hears of it', async () => {
    const since = await master.logSize();
    for (const [target, cert, name] of [[tlsTo(0, pki.client), 'worker-1', 'other-w'], [wssTo(sanClient), 'someone', 'worker-1']] as const) {
      const { status, report, text } = await probe([target, '--name', name, '--password', 'p3']);
      assert.equal(status, 5, text);
      assert.equal(report.steps.at(-1)!.code, 'RELAY_DENIED');
      assert.match(report.steps.at(-1)!.message, new RegExp(`worker "${name}" is not allowed to log in through this relay`));
      assert.doesNotMatch(text, new RegExp(cert === 'someone' ? 'san-w|someone' : 'worker-1'), 'the worker is not told what its certificate would allow');
      const refused = await relay.waitForLog((l) => l.msg === 'worker refused' && l.fields.worker === name);
      assert.match(String(refused.fields.reason), /is not a name in its client certificate/);
    }
    assert.equal(await relay.metric('bbgate_relay_logins_total', { result: 'denied', reason: 'certificate_name' }), 2);
    assert.doesNotMatch((await master.log()).slice(since), /other-w|'worker-1'/);
  });

  it('a listener without certNames=1 lets one certificate log in under any allowed name', async () => {
    const { status, text } = await probe([tlsTo(2, pki.client), '--name', 'other-w', '--password', 'p3']);
    assert.equal(status, 0, text);
  });
});
