// Faults over msgpack_experimental_v7, handled as over PB: a wrong password is a typed login
// failure (MSGPACK_UNAUTHORIZED, from the master's HTTP 401) that is logged and retried; a
// master that drops the WebSocket in the middle of a build makes the worker kill the step,
// reconnect, and run the next build; the master's shutdown op stops the worker; a connection that
// goes silent is found by the WebSocket ping that stands in for PB's keepalive.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { processRunning, waitForExit, waitForPidFile } from '../helpers/processes.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { waitFor } from '../helpers/wait.js';

describe('faults over msgpack_experimental_v7 on the 3.7 master', () => {
  let master: RunningMaster;
  let relay: TcpRelay;
  let worker: TestWorker;
  before(async () => {
    master = await startMaster({
      msgpack: true,
      workers: [{ name: 'mw', password: 'right-pw' }],
      builders: [
        { name: 'long', workernames: ['mw'], steps: [`steps.ShellCommand(name='forever', command=['sh', '-c', 'if [ -e cut-once ]; then echo again; else touch cut-once; echo $$ > pid; exec sleep 300; fi'])`] },
        { name: 'quick', workernames: ['mw'], steps: [`steps.ShellCommand(name='hi', command=['echo', 'hi'])`] },
      ],
    });
    relay = await startTcpRelay(master.msgpackPort!);
  });
  after(async () => {
    await worker?.stop();
    await relay?.close();
    await master?.stop();
  });

  it('a wrong password is MSGPACK_UNAUTHORIZED, logged without the password and retried', async () => {
    const wrong = await startTestWorker({ connection: `tcp:127.0.0.1:${master.msgpackPort}`, workername: 'mw', password: 'wrong-s3cret', protocol: 'msgpack_experimental_v7', maxdelay: 1 });
    try {
      const line = await wrong.waitForLog(/connection failed: .*rejected the worker name or password/);
      assert.match(line, /"code":"MSGPACK_UNAUTHORIZED"/);
      await waitFor(() => wrong.lines.filter((l) => /MSGPACK_UNAUTHORIZED/.test(l)).length >= 2, 'a second attempt', 20_000);
      assert.ok(!wrong.lines.some((l) => l.includes('wrong-s3cret')), wrong.lines.join('\n'));
      assert.ok(!wrong.lines.some((l) => /Connected to buildmaster/.test(l)));
    } finally {
      await wrong.stop();
    }
  });

  it('a dropped WebSocket mid-build: the step is killed, the worker reconnects and runs the next build', async () => {
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port}`, workername: 'mw', password: 'right-pw', protocol: 'msgpack_experimental_v7', maxdelay: 1 });
    await worker.waitForLog(/Connected to buildmaster/);
    await master.waitForWorker('mw');
    const forced = await master.forceBuild('long');
    const pid = await waitForPidFile(join(worker.basedir, 'long', 'build', 'pid'));
    assert.ok(processRunning(pid), 'the step runs');
    relay.resetExisting();
    const lost = await worker.waitForLog(/lost the connection to the master/);
    assert.match(lost, /"code":"MSGPACK_CONNECTION_LOST"/);
    const cut = await master.waitForBuild(forced, { anyBuild: true });
    assert.equal(cut.resultName, 'RETRY');
    assert.ok(await waitForExit(pid), "the step's process died with the connection");
    await waitFor(() => worker.lines.filter((l) => /Connected to buildmaster/.test(l)).length === 2, 'the second login', 30_000);
    const again = await master.waitForBuild(forced, { allowRetries: true });
    assert.equal(again.resultName, 'SUCCESS');
    const next = await master.runBuild('quick');
    assert.equal(next.results, Results.SUCCESS);
  });

  it("the master's shutdown op (the REST API's kill) stops the worker with status 0", async () => {
    const { workerid } = (await master.api('workers/mw')).workers[0] as { workerid: number };
    await master.rpc(`workers/${workerid}`, 'kill');
    assert.equal(await worker.exited, 0);
    await worker.waitForLog(/the master asked this worker to shut down/);
  });

  it('a connection that goes silent is found by the WebSocket ping keepalive (NET_KEEPALIVE_TIMEOUT), and the worker dials again', async () => {
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port}`, workername: 'mw', password: 'right-pw', protocol: 'msgpack_experimental_v7', maxdelay: 1, keepalive: 2 });
    await worker.waitForLog(/Connected to buildmaster/);
    const before = relay.accepted();
    relay.blackholeExisting();
    const dead = await worker.waitForLog(/lost the connection to the master/, 30_000);
    assert.match(dead, /"code":"NET_KEEPALIVE_TIMEOUT"/);
    // The master still holds the silent connection (it learns of its death only from TCP), so only the new dial is checked.
    await waitFor(() => relay.accepted() > before, 'a new connection through the relay', 30_000);
  });
});
