// `bbgate probe` through the whole transport stack against real peers on loopback: a real
// Buildbot 3.7 master (plain, and on a Twisted ssl: port), real squid with Basic auth, and
// certificates from the test PKI. Each failure must name its layer and exit with its class.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { HOST_ALIAS, startSquid, type RunningSquid } from '../helpers/squid.js';

const login = ['--name', 'tw', '--password', 'tw-pass', '--json'];

describe('bbgate probe through proxies and TLS to a real Buildbot master', () => {
  let pki: TestPki;
  let plain: RunningMaster;
  let tls: RunningMaster;
  let squid: RunningSquid;
  let trust: string;
  let wrongTrust: string;
  const proxyUrl = (user = 'alice', password = 'pr0xy:pass@') => `http://${user}:${encodeURIComponent(password)}@127.0.0.1:${squid.port}`;

  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
    wrongTrust = await pki.trustDir(pki.otherRoot);
    const workers = [{ name: 'tw', password: 'tw-pass' }];
    plain = await startMaster({ workers });
    tls = await startMaster({
      workers,
      // The master's own TLS listener, as a Buildbot admin configures it (Twisted ssl: server string).
      extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=${pki.server.keyFile}:certKey=${pki.server.certFile}:extraCertChain=${pki.intermediate.certFile}' % fx['pbPort']}}`,
    });
    squid = await startSquid({ auth: { users: { alice: 'pr0xy:pass@' } }, allowPorts: [plain.pbPort, tls.pbPort], hosts: { [HOST_ALIAS]: '127.0.0.1' } });
  });
  after(async () => {
    await squid?.stop();
    await plain?.stop();
    await tls?.stop();
  });

  async function probe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args], env);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }

  const last = (r: ProbeJson) => r.steps.at(-1)!;

  it('logs in over TLS verified against trustRoots (exit 0)', async () => {
    const { status, report } = await probe([`tls:127.0.0.1:${tls.pbPort}:trustRoots=${trust}`, ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'tls', 'pb', 'login', 'keepalive']);
    assert.match(report.steps[4]!.message, /TLSv1\.[23].*issued by/);
  });

  it('pins the master\'s certificate: the tls line shows fingerprint= to copy; alone it is enough, with a trustRoots PEM file both hold', async () => {
    // Pin alone: no trustRoots, where the platform store would refuse the test PKI.
    const first = await probe([`tls:localhost:${tls.pbPort}:trustRoots=${trust}`, ...login]);
    assert.equal(first.status, 0, first.text);
    const pin = /fingerprint=([0-9A-F]{64})\b/.exec(first.report.steps[4]!.message)?.[1];
    assert.equal(pin, new X509Certificate(pki.server.cert).fingerprint256.replace(/:/g, ''), first.report.steps[4]!.message);
    const pinned = await probe([`tls:localhost:${tls.pbPort}:fingerprint=${pin}`, ...login]);
    assert.equal(pinned.status, 0, pinned.text);
    assert.match(pinned.report.steps[4]!.message, /fingerprint=[0-9A-F]{64} \(as pinned\)/);
    assert.equal(last(pinned.report).step, 'keepalive');
    // The pin with trustRoots naming one PEM file (the root) instead of a directory.
    const both = await probe([`tls:localhost:${tls.pbPort}:trustRoots=${pki.root.certFile}:fingerprint=${pin}`, ...login]);
    assert.equal(both.status, 0, both.text);
    // Another certificate's pin: TLS_FINGERPRINT (exit 4), naming the master's fingerprint.
    const wrong = await probe([`tls:localhost:${tls.pbPort}:fingerprint=${new X509Certificate(pki.otherServer.cert).fingerprint256.replace(/:/g, '')}`, ...login]);
    assert.equal(wrong.status, 4, wrong.text);
    assert.equal(last(wrong.report).code, 'TLS_FINGERPRINT');
    assert.match(last(wrong.report).message, new RegExp(`has the SHA-256 fingerprint ${pin}, not the pinned`));
    assert.match(last(wrong.report).hint!, /update fingerprint=/);
  });

  it('logs in through squid with Basic auth (exit 0), and the password appears nowhere', async () => {
    const { status, report, text } = await probe([`tcp:127.0.0.1:${plain.pbPort}`, '--proxy-connection-string', proxyUrl(), ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'connect', 'pb', 'login', 'keepalive']);
    assert.match(report.steps[2]!.message, /200/);
    assert.doesNotMatch(text, /pr0xy|tw-pass/);
    assert.match(squid.accessLog(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${plain.pbPort} alice`));
  });

  it('logs in through squid and TLS together, verified end to end (exit 0)', async () => {
    const { status, report } = await probe([`tls:127.0.0.1:${tls.pbPort}:trustRoots=${trust}`, '--proxy-connection-string', proxyUrl(), ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'connect', 'tls', 'pb', 'login', 'keepalive']);
  });

  it('takes the proxy from HTTPS_PROXY, and --no-env-proxy turns it off', async () => {
    const env = { HTTPS_PROXY: proxyUrl() };
    // By a name squid resolves to 127.0.0.1: HTTPS_PROXY never applies to a loopback master.
    const viaEnv = await probe([`tcp:${HOST_ALIAS}:${plain.pbPort}`, ...login], env);
    assert.equal(viaEnv.status, 0, JSON.stringify(viaEnv.report));
    assert.match(viaEnv.report.steps[1]!.message, /HTTPS_PROXY/);
    assert.equal(viaEnv.report.steps[2]!.step, 'connect');
    const direct = await probe([`tcp:127.0.0.1:${plain.pbPort}`, '--no-env-proxy', ...login], env);
    assert.equal(direct.status, 0);
    assert.equal(direct.report.steps[2]!.step, 'dns');
  });

  it('proxy failures exit 3: wrong credentials (407) and a port the proxy refuses (403)', async () => {
    const bad = await probe([`tcp:127.0.0.1:${plain.pbPort}`, '--proxy-connection-string', proxyUrl('alice', 'wrong'), ...login]);
    assert.equal(bad.status, 3);
    assert.equal(last(bad.report).code, 'PROXY_AUTH_FAILED');
    assert.match(last(bad.report).message, /rejected the Basic credentials.*407/);
    assert.doesNotMatch(bad.text, /wrong/);
    const none = await probe([`tcp:127.0.0.1:${plain.pbPort}`, '--proxy-connection-string', `tcp:127.0.0.1:${squid.port}`, ...login]);
    assert.equal(none.status, 3);
    assert.match(last(none.report).message, /no credentials were sent/);
    const denied = await probe([`tcp:127.0.0.1:${plain.apiPort}`, '--proxy-connection-string', proxyUrl(), ...login]);
    assert.equal(denied.status, 3);
    assert.equal(last(denied.report).code, 'PROXY_FORBIDDEN');
  });

  it('TLS failures exit 4, each with its own code: untrusted, wrong name, not TLS', async () => {
    const untrusted = await probe([`tls:127.0.0.1:${tls.pbPort}:trustRoots=${wrongTrust}`, ...login]);
    assert.equal(untrusted.status, 4);
    assert.equal(last(untrusted.report).code, 'TLS_UNTRUSTED');
    assert.match(last(untrusted.report).message, new RegExp(wrongTrust));
    const wrongName = await probe([`ssl:host=127.0.0.1:port=${tls.pbPort}:caCertsDir=${trust}:hostname=master.example.org`, ...login]);
    assert.equal(wrongName.status, 4);
    assert.equal(last(wrongName.report).code, 'TLS_HOSTNAME');
    const notTls = await probe([`tls:127.0.0.1:${plain.pbPort}:trustRoots=${trust}`, ...login]);
    assert.equal(notTls.status, 4);
    assert.equal(last(notTls.report).code, 'TLS_NOT_TLS');
  });

  it('a TLS port probed as plain tcp: is named not PB (exit 6)', async () => {
    const { status, report } = await probe([`tcp:127.0.0.1:${tls.pbPort}`, '--timeout', '1', ...login]);
    assert.equal(status, 6);
    assert.equal(last(report).code, 'PB_NOT_PB');
  });

  it('an ssl: string without caCertsDir= works but warns that nothing is verified', async () => {
    const { status, report } = await probe([`ssl:host=127.0.0.1:port=${tls.pbPort}`, ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.match(report.steps[0]!.warnings!.join('\n'), /verifies nothing/);
  });

  it('a wrong worker password through proxy and TLS is still an authentication failure (exit 5)', async () => {
    const { status, report } = await probe([`tls:127.0.0.1:${tls.pbPort}:trustRoots=${trust}`, '--proxy-connection-string', proxyUrl(), '--name', 'tw', '--password', 'nope', '--json']);
    assert.equal(status, 5);
    assert.equal(last(report).code, 'PB_UNAUTHORIZED');
  });
});
