// The probe's remaining diagnoses, each against a real peer on loopback (or in a network
// namespace of the test's own): an unresolvable name, a silent drop, a worker already
// connected, a PB service that is not Buildbot, a TLS peer with an expired or self-signed
// certificate, a proxy that is not HTTP or cannot reach the master, and --basedir.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { startMaster, startPythonWorker, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, CLI, type ProbeJson } from '../helpers/cli.js';
import { testPki, type Credential, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { PY_DIR, PYTHON } from '../helpers/python.js';
import { startProcess } from '../helpers/processes.js';
import { startSquid } from '../helpers/squid.js';

async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
  const run = await bbgate(['probe', ...args, '--json']);
  return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
}
const last = (r: ProbeJson) => r.steps.at(-1)!;

describe('probe diagnoses against a real master', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'dw', password: 'dw-pass' }, { name: 'tw', password: 'tw-pass' }] });
  });
  after(() => master?.stop());

  it('--basedir probes what the worker in it would do (a tac written by buildbot-worker)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bbgate-probe-basedir-'));
    try {
      execFileSync('/usr/bin/buildbot-worker', ['create-worker', '-q', join(dir, 'w'), `127.0.0.1:${master.pbPort}`, 'tw', 'tw-pass']);
      const { status, report, text } = await probe(['--basedir', join(dir, 'w')]);
      assert.equal(status, 0, text);
      assert.match(report.steps[0]!.message, /buildbot\.tac: worker "tw" at tcp:host=127\.0\.0\.1/);
      assert.equal(last(report).step, 'keepalive');
      assert.doesNotMatch(text, /tw-pass/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a worker that is already connected (exit 5), and leaves it connected', async () => {
    const worker = await startPythonWorker({ masterPort: master.pbPort, name: 'dw', password: 'dw-pass' });
    try {
      const { status, report } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--name', 'dw', '--password', 'dw-pass']);
      assert.equal(status, 5);
      assert.equal(last(report).code, 'PB_DUPLICATE_WORKER');
      const [w] = (await master.api('workers/dw')).workers as { connected_to: unknown[] }[];
      assert.equal(w!.connected_to.length, 1, 'the real worker is still connected');
    } finally {
      await worker.stop();
    }
  });
});

describe('probe diagnoses against other peers', () => {
  let pki: TestPki;
  let trust: string;
  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
  });

  it('names a PB service that is not Buildbot (exit 6)', async () => {
    const server = startProcess(PYTHON, [PY_DIR + 'pb_server.py']);
    try {
      const port = Number((await server.waitForLine(/^PORT \d+$/)).split(' ')[1]);
      const { status, report } = await probe([`tcp:127.0.0.1:${port}`, '--name', 'alice', '--password', 'secret']);
      assert.equal(status, 6);
      assert.equal(last(report).code, 'PB_NOT_BUILDBOT');
    } finally {
      server.kill();
    }
  });

  it('times a silent drop (no SYN-ACK) out with the timeout it used (exit 2)', async () => {
    // A listener that never accepts, its one-slot queue filled: the kernel drops further SYNs.
    const port = await freePort();
    const holder: ChildProcess = spawn(PYTHON, ['-c', [
      'import socket, sys, time',
      `s = socket.socket(); s.bind(("127.0.0.1", ${port})); s.listen(0)`,
      'fill = [socket.socket() for _ in range(3)]',
      `for c in fill: c.setblocking(False); c.connect_ex(("127.0.0.1", ${port}))`,
      'time.sleep(0.3); print("ready", flush=True); sys.stdin.read()',
    ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve));
      const { status, report } = await probe([`tcp:127.0.0.1:${port}`, '--timeout', '1']);
      assert.equal(status, 2);
      assert.equal(last(report).step, 'tcp');
      assert.equal(last(report).code, 'NET_TIMEOUT');
      assert.match(last(report).message, /no answer within 1 s/);
    } finally {
      holder.kill();
    }
  });

  async function tlsPeer(credential: Credential): Promise<{ port: number; close(): void }> {
    const server = createTlsServer({ cert: credential.cert, key: credential.key });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, close: () => server.close() };
  }

  it('names an expired certificate and a self-signed leaf (exit 4)', async () => {
    for (const [credential, code] of [[pki.expired, 'TLS_EXPIRED'], [pki.selfSigned, 'TLS_SELF_SIGNED']] as const) {
      const peer = await tlsPeer(credential);
      try {
        const { status, report } = await probe([`tls:localhost:${peer.port}:trustRoots=${trust}`]);
        assert.equal(status, 4, JSON.stringify(report));
        assert.equal(last(report).code, code);
      } finally {
        peer.close();
      }
    }
  });

  it('--verbose shows every certificate of the chain and its anchor', async () => {
    const server = createTlsServer({ cert: pki.serverChain, key: pki.server.key });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const run = await bbgate(['probe', `tls:localhost:${(server.address() as AddressInfo).port}:trustRoots=${trust}`, '--verbose', '--timeout', '1']);
      assert.match(run.stdout, /· certificate: CN=localhost/);
      assert.match(run.stdout, /· issuer 1: CN=bbgate Test Intermediate CA/);
      assert.match(run.stdout, /· anchored by the trusted root CN=bbgate Test Root CA|· anchored by a trusted certificate for CN=bbgate Test Root CA/);
    } finally {
      server.close();
    }
  });

  it('names a proxy that does not speak HTTP, and one that cannot reach the master (exit 3)', async () => {
    const garbage = createServer((s) => s.end('\x16\x03\x01 not http at all\r\n'));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const squid = await startSquid({ allowPorts: 'any' });
    try {
      const notHttp = await probe(['tcp:127.0.0.1:9', '--proxy-connection-string', `tcp:127.0.0.1:${(garbage.address() as AddressInfo).port}`]);
      assert.equal(notHttp.status, 3);
      assert.equal(last(notHttp.report).code, 'PROXY_NOT_HTTP');
      const closedPort = await freePort();
      const badGateway = await probe([`tcp:127.0.0.1:${closedPort}`, '--proxy-connection-string', squid.url]);
      assert.equal(badGateway.status, 3);
      assert.equal(last(badGateway.report).code, 'PROXY_BAD_GATEWAY');
    } finally {
      garbage.close();
      await squid.stop();
    }
  });

  it('names a host name that does not resolve (exit 2), in a network namespace whose only DNS server is absent', async () => {
    const ns = `bbgate-dns-${process.pid}`;
    const etc = `/etc/netns/${ns}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      mkdirSync(etc, { recursive: true });
      // `ip netns exec` mounts this over /etc/resolv.conf: the namespace's own loopback, where nothing listens.
      writeFileSync(join(etc, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      let out = '';
      let status = 0;
      try {
        out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, CLI, 'probe', 'tcp:no-such-master.bbgate-test.invalid:9989', '--json'], { encoding: 'utf8' });
      } catch (err) {
        out = (err as { stdout: string }).stdout;
        status = (err as { status: number }).status;
      }
      const report = JSON.parse(out) as ProbeJson;
      assert.equal(status, 2);
      assert.equal(last(report).step, 'dns');
      assert.equal(last(report).code, 'NET_DNS');
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
      rmSync(etc, { recursive: true, force: true });
    }
  });
});
