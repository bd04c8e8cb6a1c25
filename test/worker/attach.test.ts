// The bbgate worker against a real Buildbot 3.7 master: attach with builders, worker info as the
// master records it, reconnect after the master restarts, and a clean stop.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { waitFor } from '../helpers/wait.js';

describe('bbgate worker attaching to a real master', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({
      workers: [{ name: 'bw', password: 'bw-pass' }],
      builders: [{ name: 'alpha', workernames: ['bw'] }, { name: 'beta', workernames: ['bw'] }],
    });
  });
  after(() => master?.stop());

  it('attaches with its builders, reports its info, and detaches cleanly on stop', async () => {
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bw', password: 'bw-pass' });
    await mkdir(join(worker.basedir, 'info'), { recursive: true });
    await writeFile(join(worker.basedir, 'info', 'admin'), 'Tester <t@example.org>\n');
    await mkdir(join(worker.basedir, 'stale-dir'));
    try {
      await worker.waitForLog(/message from master: attached/);
      await worker.waitForLog(/Connected to buildmaster; worker is ready/);
      await master.waitForLog(/Worker bw attached to alpha/);
      await master.waitForLog(/Worker bw attached to beta/);
      assert.ok(existsSync(join(worker.basedir, 'alpha')) && existsSync(join(worker.basedir, 'beta')), 'builder directories created');
      await worker.waitForLog(/leftover directory.*stale-dir/);
      const [w] = (await master.api('workers/bw')).workers as { workerinfo: Record<string, unknown>; connected_to: unknown[] }[];
      assert.equal(w!.connected_to.length, 1);
      assert.match(String(w!.workerinfo.version), /^bbgate /);
    } finally {
      assert.equal(await worker.stop(), 0);
    }
    await master.waitForLog(/Worker\.detached\(bw\)/);
  });

  it('retries a wrong password with backoff instead of exiting, and logs why', async () => {
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bw', password: 'nope', maxdelay: 0.2 });
    try {
      await worker.waitForLog(/connection failed: the master rejected|UnauthorizedLogin.*retrying in/);
      await waitFor(() => worker.lines.filter((l) => /retrying in/.test(l)).length >= 2, `a second retry:\n${worker.lines.join('\n')}`);
      assert.ok(!worker.lines.some((l) => /Connected to buildmaster/.test(l)));
    } finally {
      await worker.stop();
    }
  });

  it('with allow_shutdown=signal, SIGHUP asks the master for a graceful shutdown and the master stops the worker', async () => {
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bw', password: 'bw-pass', allowShutdown: 'signal' });
    try {
      await worker.waitForLog(/Connected to buildmaster/);
      worker.signal('SIGHUP');
      await worker.waitForLog(/asking the master for a graceful shutdown/);
      await worker.waitForLog(/the master asked this worker to shut down/);
      assert.equal(await worker.exited, 0);
    } finally {
      await worker.stop();
    }
  });
});
