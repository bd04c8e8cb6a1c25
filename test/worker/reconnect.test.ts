// The connection drops in the middle of a build: the worker kills what it was running,
// reconnects through the transport stack, and the master can run the next build on it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { processRunning, sleep, waitForExit, waitForPidFile } from '../helpers/processes.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';

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
    const pid = await waitForPidFile(join(worker.basedir, 'long', 'build', 'pid'));
    assert.ok(processRunning(pid), 'the step runs');
    relay.resetExisting();
    await worker.waitForLog(/lost the connection to the master/);
    const cut = await master.waitForBuild(forced, { anyBuild: true });
    assert.notEqual(cut.results, Results.SUCCESS);
    assert.ok(await waitForExit(pid), 'the step\'s process died with the connection');
    for (let i = 0; i < 200 && worker.lines.filter((l) => /Connected to buildmaster/.test(l)).length < 2; i++) await sleep(100);
    assert.equal(relay.accepted(), 2, worker.lines.join('\n'));
    const next = await master.runBuild('quick');
    assert.equal(next.results, Results.SUCCESS);
  });
});
