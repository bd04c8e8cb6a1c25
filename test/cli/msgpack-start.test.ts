// `bbgate start` on a msgpack_experimental_v7 tac that buildbot-worker 3.7 wrote (create-worker
// --protocol=msgpack_experimental_v7): the daemon attaches to the real 3.7 master's msgpack port,
// runs a build, and `bbgate stop` stops it. buildbot-worker writes the same tac bbgate does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate } from '../helpers/cli.js';
import { pythonCreateWorker, tempDir } from './support.js';

describe('bbgate start with a msgpack_experimental_v7 tac', () => {
  let master: RunningMaster;
  let dir: string | undefined;
  before(async () => {
    master = await startMaster({ msgpack: true, workers: [{ name: 'ms', password: 'ms-pw' }], builders: [{ name: 'echo', workernames: ['ms'], steps: [`steps.ShellCommand(name='echo', command=['echo', 'over msgpack'])`] }] });
  });
  after(async () => {
    if (dir) {
      try {
        process.kill(Number(readFileSync(join(dir, 'twistd.pid'), 'utf8')), 'SIGKILL');
      } catch {
        // stopped
      }
    }
    await master?.stop();
  });

  it("runs buildbot-worker's tac: attaches, builds, stops", { timeout: 180_000 }, async () => {
    dir = join(tempDir(), 'ms');
    const created = await pythonCreateWorker(['-q', '--protocol=msgpack_experimental_v7', dir, `127.0.0.1:${master.msgpackPort}`, 'ms', 'ms-pw']);
    assert.equal(created.status, 0, created.stdout + created.stderr);
    assert.match(readFileSync(join(dir, 'buildbot.tac'), 'utf8'), /^protocol = 'msgpack_experimental_v7'$/m);
    const start = await bbgate(['start', dir]);
    assert.equal(start.status, 0, start.stdout + start.stderr);
    await master.waitForWorker('ms');
    const build = await master.runBuild('echo');
    assert.equal(build.results, Results.SUCCESS);
    assert.equal(build.steps.find((s) => s.name === 'echo')!.logs[0]!.stdout, 'over msgpack\n');
    const stop = await bbgate(['stop', dir]);
    assert.equal(stop.status, 0, stop.stdout + stop.stderr);
    await master.waitForWorker('ms', { connected: false });
  });
});
