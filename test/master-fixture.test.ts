// Smoke test of the real-master fixture: a real Buildbot 3.7 master and the real
// Python buildbot-worker run one forced build end to end.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';

import { Results, type RunningMaster, type RunningPythonWorker, startMaster, startPythonWorker } from './helpers/buildbot-master.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('real master + Python buildbot-worker run a forced echo build', { timeout: 180_000 }, async () => {
  const master: RunningMaster = await startMaster({
    workers: [{ name: 'pyworker', password: 'sekrit' }],
    builders: [
      {
        name: 'echo',
        workernames: ['pyworker'],
        steps: [`steps.ShellCommand(command=['echo', util.Interpolate('hello %(prop:greeting)s')])`],
      },
    ],
  });
  cleanups.push(() => master.stop());
  assert.ok(master.pbPort > 0 && master.apiPort > 0);
  assert.match(await master.log(), /BuildMaster is running/);

  const worker: RunningPythonWorker = await startPythonWorker({ masterPort: master.pbPort, name: 'pyworker', password: 'sekrit' });
  cleanups.push(() => worker.stop());

  const w = await master.waitForWorker('pyworker');
  assert.equal(w.workerinfo.version, '3.7.0-2');
  await master.waitForLog(/Worker pyworker attached to echo/);

  const build = await master.runBuild('echo', { properties: { greeting: 'bbgate' } });
  assert.equal(build.results, Results.SUCCESS, `build: ${build.resultName} ${build.stateString}`);
  assert.equal(build.properties.greeting, 'bbgate');
  assert.equal(build.properties.workername, 'pyworker');
  const shell = build.steps.find((s) => s.name === 'shell');
  assert.ok(shell, `steps: ${build.steps.map((s) => s.name).join(', ')}`);
  assert.equal(shell.results, Results.SUCCESS);
  const stdio = shell.logs.find((l) => l.name === 'stdio');
  assert.ok(stdio);
  assert.equal(stdio.stdout, 'hello bbgate\n');
  assert.match(stdio.header, /program finished with exit code 0/);

  // The same, seen through the database.
  const rows = await master.sql('SELECT results FROM builds WHERE id = ?', [build.buildId]);
  assert.deepEqual(rows, [{ results: 0 }]);
  const connected = await master.sql('SELECT w.name FROM connected_workers c JOIN workers w ON w.id = c.workerid');
  assert.deepEqual(connected, [{ name: 'pyworker' }]);

  // Worker goes away: the master notices.
  const since = await master.logSize();
  await worker.stop();
  await master.waitForLog(/Worker\.detached\(pyworker\)/, 10_000, since);
  await master.waitForWorker('pyworker', { connected: false });

  const basedir = master.basedir;
  await master.stop();
  assert.equal(existsSync(basedir), false);
});

test('a failing step is reported as FAILURE', { timeout: 180_000 }, async () => {
  const master = await startMaster({
    workers: [{ name: 'w', password: 'p' }],
    builders: [{ name: 'fail', workernames: ['w'], steps: [`steps.ShellCommand(command='echo oops >&2; exit 3')`] }],
  });
  cleanups.push(() => master.stop());
  const worker = await startPythonWorker({ masterPort: master.pbPort, name: 'w', password: 'p' });
  cleanups.push(() => worker.stop());
  const build = await master.runBuild('fail');
  assert.equal(build.results, Results.FAILURE);
  const shell = build.steps.find((s) => s.name === 'shell')!;
  assert.equal(shell.logs[0]!.stderr, 'oops\n');
  assert.match(shell.logs[0]!.header, /program finished with exit code 3/);
});
