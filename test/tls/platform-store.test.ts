// trustRoots replaces this machine's CA store; it does not add to it. Here the machine's store
// (SSL_CERT_FILE, which bbgate reads as OpenSSL and so Twisted do) holds the CA of a real
// Buildbot master's TLS port, and trustRoots holds an unrelated CA: every path that dials the
// master (the probe, a worker process, the relay's upstream) must refuse the master as
// untrusted. The same runs without trustRoots are the control: they succeed, so these tests fail
// if the store were unioned with trustRoots, or if SSL_CERT_FILE were not read at all.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, bbgateEnv, CLI, type ProbeJson } from '../helpers/cli.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../cli/support.js';

const WORKER = 'store-w';
const PASSWORD = 'store-pass';

describe("trustRoots replaces this machine's CA store (SSL_CERT_FILE trusts the master, trustRoots does not)", () => {
  let pki: TestPki;
  let master: RunningMaster;
  /** The machine's store trusts the master's CA. */
  let trusting: NodeJS.ProcessEnv;
  /** The machine's store holds only an unrelated CA. */
  let untrusting: NodeJS.ProcessEnv;
  let unrelated: string;
  const processes: LineProcess[] = [];
  const upstream = (trustRoots?: string) => `tls:127.0.0.1:${master.pbPort}${trustRoots ? `:trustRoots=${trustRoots}` : ''}`;

  before(async () => {
    pki = await testPki();
    unrelated = await pki.trustDir(pki.otherRoot);
    trusting = { SSL_CERT_FILE: pki.root.certFile, NODE_EXTRA_CA_CERTS: '' };
    untrusting = { SSL_CERT_FILE: pki.otherRoot.certFile, NODE_EXTRA_CA_CERTS: '' };
    master = await startMaster({
      workers: [{ name: WORKER, password: PASSWORD }],
      extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=${pki.server.keyFile}:certKey=${pki.server.certFile}:extraCertChain=${pki.intermediate.certFile}' % fx['pbPort']}}`,
    });
  });
  after(async () => {
    for (const p of processes) p.kill();
    await Promise.all(processes.map((p) => p.exited));
    await master?.stop();
  });

  /** `bbgate …` as a child process with stdout read line by line (JSON log lines). */
  function spawnBbgate(args: string[], env: NodeJS.ProcessEnv): LineProcess {
    const p = startProcess(process.execPath, [CLI, ...args], { env: bbgateEnv(env) });
    processes.push(p);
    return p;
  }

  async function probe(connection: string, env: NodeJS.ProcessEnv): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', connection, '--name', WORKER, '--password', PASSWORD, '--json'], env);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }

  describe('bbgate probe', () => {
    it('control: without trustRoots, logs in through the CA that SSL_CERT_FILE holds (and not without it)', async () => {
      const ok = await probe(upstream(), trusting);
      assert.equal(ok.status, 0, ok.text);
      assert.match(ok.report.steps.find((s) => s.step === 'tls')!.message, /issued by/);
      const refused = await probe(upstream(), untrusting);
      assert.equal(refused.status, 4, refused.text);
      assert.equal(refused.report.steps.at(-1)!.code, 'TLS_UNTRUSTED');
      assert.match(refused.report.steps.at(-1)!.message, /this machine's CA store/);
    });

    it('with trustRoots holding an unrelated CA: TLS_UNTRUSTED, naming the trustRoots directory, exit 4', async () => {
      const { status, report, text } = await probe(upstream(unrelated), trusting);
      assert.equal(status, 4, text);
      const tls = report.steps.at(-1)!;
      assert.equal(tls.step, 'tls');
      assert.equal(tls.code, 'TLS_UNTRUSTED');
      assert.ok(tls.message.includes(`not in the trustRoots directory ${unrelated}`), tls.message);
    });
  });

  describe('a bbgate worker process (bbgate start --nodaemon)', () => {
    async function startWorker(connection: string): Promise<LineProcess> {
      const dir = join(tempDir('bbgate-store-'), 'w');
      const created = await bbgate(['create-worker', '-q', '--connection-string', connection, dir, WORKER, PASSWORD]);
      assert.equal(created.status, 0, created.stderr);
      return spawnBbgate(['start', '--nodaemon', dir], trusting);
    }

    async function stop(worker: LineProcess): Promise<void> {
      worker.child.kill('SIGTERM');
      assert.equal(await worker.exited, 0, worker.stderr());
    }

    it('control: without trustRoots, attaches to the master through the CA that SSL_CERT_FILE holds', async () => {
      const worker = await startWorker(upstream());
      try {
        await worker.waitForLine(/Connected to buildmaster; worker is ready/);
        await master.waitForWorker(WORKER);
      } finally {
        await stop(worker);
      }
      await master.waitForWorker(WORKER, { connected: false });
    });

    it('with trustRoots holding an unrelated CA: every attempt fails as untrusted, and the worker retries', async () => {
      const worker = await startWorker(upstream(unrelated));
      const failures = () => worker.lines.filter((l) => /connection failed: .*not in the trustRoots directory.*; retrying in/.test(l)).length;
      try {
        // Two failed attempts: it goes on retrying, and never gets in.
        await waitFor(() => {
          assert.ok(!worker.lines.some((l) => /worker is ready|TLS established/.test(l)), `the worker got in:\n${worker.lines.join('\n')}`);
          return failures() >= 2;
        }, 'two untrusted attempts', 20_000);
      } finally {
        await stop(worker);
      }
      assert.ok(worker.lines.some((l) => /TLS_UNTRUSTED/.test(l)), worker.lines.join('\n'));
    });
  });

  describe("the relay's upstream (bbgate relay)", () => {
    async function startRelayProcess(upstreamString: string): Promise<{ relay: LineProcess; port: number }> {
      const port = await freePort();
      const relay = spawnBbgate(['relay', '--listen', `tcp:${port}:interface=127.0.0.1`, '--upstream', upstreamString, '--allow', WORKER], trusting);
      await relay.waitForLine(/"msg":"relay listening"/);
      return { relay, port };
    }

    async function stop(relay: LineProcess): Promise<void> {
      relay.child.kill('SIGTERM');
      assert.equal(await relay.exited, 0, relay.stderr());
    }

    it('control: without trustRoots, relays a login to the master through the CA that SSL_CERT_FILE holds', async () => {
      const { relay, port } = await startRelayProcess(upstream());
      try {
        const { status, text } = await probe(`tcp:127.0.0.1:${port}`, {});
        assert.equal(status, 0, text);
      } finally {
        await stop(relay);
      }
    });

    it('with trustRoots holding an unrelated CA: the relay refuses the master as untrusted and tells the worker the upstream failed', async () => {
      const { relay, port } = await startRelayProcess(upstream(unrelated));
      try {
        const { status, report, text } = await probe(`tcp:127.0.0.1:${port}`, {});
        assert.notEqual(status, 0, text);
        assert.equal(report.steps.at(-1)!.code, 'RELAY_UPSTREAM', text);
        assert.match(report.steps.at(-1)!.message, /\(TLS_UNTRUSTED\)/);
        const logged = await relay.waitForLine(/TLS_UNTRUSTED/);
        assert.ok(logged.includes(`not in the trustRoots directory ${unrelated}`), logged);
      } finally {
        await stop(relay);
      }
    });
  });
});
