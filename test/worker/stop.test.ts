// Stopping the worker while a build runs: nothing it started may outlive it, even a process
// that ignores SIGTERM under a long sigtermTime; and a full disk under twistd.log is survived.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RotatingFile } from '../../src/worker/log/rotating-file.js';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { processRunning, waitForExit, waitForPidFile } from '../helpers/processes.js';

describe('stopping the worker mid-build', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({
      workers: [{ name: 'sw', password: 'pw' }],
      builders: [{ name: 'stubborn', workernames: ['sw'], steps: [`steps.ShellCommand(name='ignores-term', command=['sh', '-c', 'trap "" TERM; echo $$ > pid; while :; do sleep 1; done'], sigtermTime=60)`] }],
    });
  });
  after(() => master?.stop());

  it('kills a process group that ignores SIGTERM before the worker exits', async () => {
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'sw', password: 'pw' });
    await worker.waitForLog(/Connected to buildmaster/);
    await master.forceBuild('stubborn');
    const pid = await waitForPidFile(join(worker.basedir, 'stubborn', 'build', 'pid'));
    assert.ok(processRunning(pid));
    assert.equal(await worker.stop(), 0);
    assert.ok(await waitForExit(pid, 2000), 'the TERM-ignoring shell died with the worker');
  });
});

describe('a log on a full disk', () => {
  it('drops what it cannot write instead of throwing', () => {
    const log = new RotatingFile('/dev/full', { size: 0, count: null });
    assert.equal(log.write('a line that will not fit\n'), true);
    assert.equal(log.dropped, 1);
    log.close();
  });
});
