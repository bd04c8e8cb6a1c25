// `bbgate probe` against a real Buildbot 3.7 master: log in as a configured worker, answer the
// master's attach calls, and exit with the status of the failure class.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate as run, type Run } from '../helpers/cli.js';

function bbgate(...args: string[]): Promise<Run> {
  return run(args);
}

describe('bbgate probe against a real Buildbot 3.7 master', () => {
  let master: RunningMaster;

  before(async () => {
    master = await startMaster({
      workers: [{ name: 'probe-w', password: 'right-pass' }],
      builders: [{ name: 'b1', workernames: ['probe-w'] }, { name: 'b2', workernames: ['probe-w'] }],
    });
  });
  after(() => master?.stop());

  it('logs in, gets attached with its builders, answers a keepalive and disconnects cleanly (exit 0)', async () => {
    const since = await master.logSize();
    const run = await bbgate('probe', `tcp:127.0.0.1:${master.pbPort}`, '--name', 'probe-w', '--password', 'right-pass', '--json');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as { ok: boolean; steps: { step: string; ok: boolean; message: string }[] };
    assert.equal(report.ok, true);
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'pb', 'login', 'keepalive']);
    assert.match(report.steps[5]!.message, /builders: b1, b2/);
    // The master's side of the story: attached to both builders, then detached when the probe left.
    await master.waitForLog(/Worker probe-w attached to b1/, 10000, since);
    await master.waitForLog(/Worker probe-w attached to b2/, 10000, since);
    await master.waitForLog(/Worker\.detached\(probe-w\)/, 10000, since);
    assert.doesNotMatch(run.stdout, /right-pass/);
  });

  it('says the master rejected the name or password (exit 5), for a wrong password and an unknown worker', async () => {
    for (const [name, password] of [['probe-w', 'wrong-pass'], ['nobody', 'right-pass']]) {
      const since = await master.logSize();
      const run = await bbgate('probe', `tcp:127.0.0.1:${master.pbPort}`, '--name', name!, '--password', password!);
      assert.equal(run.status, 5, run.stdout + run.stderr);
      const failing = run.stdout.split('\n').filter((l) => l.startsWith('✘'));
      assert.equal(failing.length, 1);
      assert.match(failing[0]!, /^✘ login .*PB_UNAUTHORIZED: the master rejected the worker name or password$/);
      await master.waitForLog(/invalid login from (unknown )?user/, 10000, since);
      assert.doesNotMatch(run.stdout + run.stderr, new RegExp(password!));
    }
  });

  it('stops after the PB greeting when no worker name is given', async () => {
    const run = await bbgate('probe', `tcp:host=127.0.0.1:port=${master.pbPort}`, '--json');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as { steps: { step: string; message: string }[] };
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'pb', 'login']);
    assert.match(report.steps[4]!.message, /offers "pb", "none", bbgate chose "pb"; PB version 6/);
    assert.match(report.steps[5]!.message, /^not tried: no worker name/);
  });

  it('names an HTTP port as "not a PB service" (exit 6)', async () => {
    const run = await bbgate('probe', `tcp:127.0.0.1:${master.apiPort}`, '--timeout', '1', '--json');
    assert.equal(run.status, 6, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as { steps: { step: string; ok: boolean; code?: string }[] };
    assert.deepEqual(report.steps.at(-1), { ...report.steps.at(-1), step: 'pb', ok: false, code: 'PB_NOT_PB' });
  });
});

describe('bbgate probe failure classes without a master', () => {
  it('reports a refused connection as a network failure (exit 2)', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const run = await bbgate('probe', `tcp:127.0.0.1:${port}`, '--json');
    assert.equal(run.status, 2);
    assert.equal((JSON.parse(run.stdout) as { steps: { code?: string }[] }).steps.at(-1)!.code, 'NET_REFUSED');
  });

  it('names a peer that sends garbage as not PB (exit 6)', async () => {
    const server = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'.repeat(3)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const run = await bbgate('probe', `tcp:127.0.0.1:${(server.address() as AddressInfo).port}`, '--json');
    server.close();
    assert.equal(run.status, 6, run.stdout);
    assert.equal((JSON.parse(run.stdout) as { steps: { code?: string }[] }).steps.at(-1)!.code, 'PB_NOT_PB');
  });

  it('rejects a malformed connection string as usage (exit 1) and says what is wrong', async () => {
    const run = await bbgate('probe', 'tcp:127.0.0.1:notaport');
    assert.equal(run.status, 1);
    assert.match(run.stdout, /port must be a whole number from 1 to 65535, not "notaport"/);
    const unknown = await bbgate('probe', 'tcp:127.0.0.1:9989', '--bogus');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /bogus/);
  });
});
