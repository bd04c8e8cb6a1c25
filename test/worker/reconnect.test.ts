// The connection drops in the middle of a build: the worker kills what it was running,
// reconnects through the transport stack, and the master can run the next build on it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Alive and not a zombie (nothing reaps orphans in this container). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('a dropped connection during a build', () => {
  let master: RunningMaster;
  let relay: TcpRelay;
  let worker: TestWorker;
  before(async () => {
    master = await startMaster({
      workers: [{ name: 'rw', password: 'pw' }],
      builders: [
        { name: 'long', workernames: ['rw'], steps: [`steps.ShellCommand(name='forever', command=['sh', '-c', 'echo $$ > pid; exec sleep 300'])`] },
        { name: 'quick', workernames: ['rw'], steps: [`steps.ShellCommand(name='hi', command=['echo', 'hi'])`] },
      ],
    });
    relay = await startTcpRelay(master.pbPort);
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port}`, workername: 'rw', password: 'pw', maxdelay: 1 });
    await worker.waitForLog(/Connected to buildmaster/);
  });
  after(async () => {
    await worker?.stop();
    await relay?.close();
    await master?.stop();
  });

  it('kills the running command, reconnects, and runs the next build', async () => {
    const forced = await master.forceBuild('long');
    const pidFile = join(worker.basedir, 'long', 'build', 'pid');
    let pid = NaN;
    for (let i = 0; i < 100 && !(pid > 0); i++, await sleep(100)) pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    assert.ok(running(pid), 'the step runs');
    relay.resetExisting();
    await worker.waitForLog(/lost the connection to the master/);
    const cut = await master.waitForBuild(forced, { anyBuild: true });
    assert.notEqual(cut.results, Results.SUCCESS);
    for (let i = 0; i < 50 && running(pid); i++) await sleep(100);
    assert.equal(running(pid), false, 'the step\'s process died with the connection');
    for (let i = 0; i < 200 && worker.lines.filter((l) => /Connected to buildmaster/.test(l)).length < 2; i++) await sleep(100);
    assert.equal(relay.accepted(), 2, worker.lines.join('\n'));
    const next = await master.runBuild('quick');
    assert.equal(next.results, Results.SUCCESS);
  });
});
