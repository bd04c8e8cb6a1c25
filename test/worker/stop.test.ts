// Stopping the worker while a build runs: nothing it started may outlive it, even a process
// that ignores SIGTERM under a long sigtermTime; and a full disk under twistd.log is survived.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RotatingFile } from '../../src/worker/log/rotating-file.js';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Alive and not a zombie (nothing reaps orphans in this container). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

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
    const pidFile = join(worker.basedir, 'stubborn', 'build', 'pid');
    let pid = NaN;
    for (let i = 0; i < 100 && !(pid > 0); i++, await sleep(100)) pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    assert.ok(running(pid));
    assert.equal(await worker.stop(), 0);
    for (let i = 0; i < 20 && running(pid); i++) await sleep(100);
    assert.equal(running(pid), false, 'the TERM-ignoring shell died with the worker');
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
