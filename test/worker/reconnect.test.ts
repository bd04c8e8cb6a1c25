// The connection drops in the middle of a build: the worker kills what it was running,
// reconnects through the transport stack, and the master can run the next build on it. The cut
// build's request runs again and passes; the build-result helper does not report that as a plain
// SUCCESS.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { processRunning, waitForExit, waitForPidFile } from '../helpers/processes.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { waitFor } from '../helpers/wait.js';

describe('a dropped connection during a build', () => {
  let master: RunningMaster;
  let relay: TcpRelay;
  let worker: TestWorker;
  before(async () => {
    master = await startMaster({
      workers: [{ name: 'rw', password: 'pw' }],
      builders: [
        // Runs forever the first time (to be cut), and passes when the request runs again.
        { name: 'long', workernames: ['rw'], steps: [`steps.ShellCommand(name='forever', command=['sh', '-c', 'if [ -e cut-once ]; then echo again; else touch cut-once; echo $$ > pid; exec sleep 300; fi'])`] },
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

  it('kills the running command, reconnects, and runs the next build; the retried request is not a plain SUCCESS', async () => {
    const forced = await master.forceBuild('long');
    const pid = await waitForPidFile(join(worker.basedir, 'long', 'build', 'pid'));
    assert.ok(processRunning(pid), 'the step runs');
    relay.resetExisting();
    await worker.waitForLog(/lost the connection to the master/);
    const cut = await master.waitForBuild(forced, { anyBuild: true });
    assert.equal(cut.resultName, 'RETRY');
    assert.ok(await waitForExit(pid), 'the step\'s process died with the connection');
    await waitFor(() => worker.lines.filter((l) => /Connected to buildmaster/.test(l)).length === 2, 'the second login', 20_000);
    assert.equal(relay.accepted(), 2, worker.lines.join('\n'));

    // The request ran again on the reconnected worker and passed: reported with its retry, never as a plain SUCCESS.
    await assert.rejects(master.waitForBuild(forced), /ran 2 builds \(#\d+ RETRY, #\d+ SUCCESS\).*pass allowRetries/s);
    const again = await master.waitForBuild(forced, { allowRetries: true });
    assert.equal(again.resultName, 'SUCCESS');
    assert.deepEqual(again.retried.map((b) => [b.buildId, b.resultName]), [[cut.buildId, 'RETRY']]);
    assert.equal(again.steps.find((s) => s.name === 'forever')!.logs[0]!.stdout, 'again\n');

    const next = await master.runBuild('quick');
    assert.equal(next.results, Results.SUCCESS);
    assert.deepEqual(next.retried, []);
  });
});
