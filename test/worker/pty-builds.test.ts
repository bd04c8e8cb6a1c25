// usePTY end to end: the same ShellCommand(usePTY=True) steps run on a real Buildbot 3.7 master by
// the bbgate worker and by the real Python buildbot-worker 3.7, and what the master records for
// each is compared: results, stdout, and the headers (paths and times made neutral).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, startPythonWorker, type BuildResult, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { waitFor } from '../helpers/wait.js';

// Fails (rc 1) unless stdin, stdout and stderr are all a terminal; stderr is written first so that
// the merge into stdout shows.
const CHECK = `echo to-stderr >&2; test -t 0 && test -t 1 && test -t 2 && echo 'on a terminal'`;

const STEPS: Record<string, string[]> = {
  pty: [`steps.ShellCommand(name='check', command=['sh', '-c', ${JSON.stringify(CHECK)}], usePTY=True, logEnviron=False)`],
  nopty: [`steps.ShellCommand(name='check', command=['sh', '-c', ${JSON.stringify(CHECK)}], logEnviron=False)`],
  ptystdin: [`steps.ShellCommand(name='check', command=['sh', '-c', ${JSON.stringify(CHECK)}], usePTY=True, initialStdin='x', logEnviron=False)`],
  ptytimeout: [`steps.ShellCommand(name='sleeps', command=['sh', '-c', 'echo started; sleep 60'], usePTY=True, timeout=1, logEnviron=False)`],
  ptystop: [`steps.ShellCommand(name='forever', command=['sh', '-c', 'echo started; sleep 300'], usePTY=True, logEnviron=False)`],
};

/** The step's stdio log with what differs between the two workers by nature made neutral: basedirs, builder names, times. */
function stdio(build: BuildResult, basedir: string): { results: number | null; stdout: string; stderr: string; header: string } {
  const step = build.steps.find((s) => s.name !== 'worker_preparation');
  assert.ok(step, JSON.stringify(build.steps.map((s) => s.name)));
  const log = step.logs.find((l) => l.name === 'stdio');
  assert.ok(log, `no stdio log in ${step.name}`);
  const header = log.header
    .split(basedir)
    .join('BASEDIR')
    .replace(/(BASEDIR\/\w+)-(bb|py)\//g, '$1-WORKER/')
    .replace(/elapsedTime=[0-9.]+/g, 'elapsedTime=T');
  return { results: step.results, stdout: log.stdout, stderr: log.stderr, header };
}

describe('usePTY on a real 3.7 master: bbgate and buildbot-worker side by side', () => {
  let master: RunningMaster;
  let bbgate: TestWorker;
  let python: RunningPythonWorker;

  before(async () => {
    master = await startMaster({
      workers: [{ name: 'bb', password: 'pw' }, { name: 'py', password: 'pw' }],
      builders: Object.entries(STEPS).flatMap(([name, steps]) => [
        { name: `${name}-bb`, workernames: ['bb'], steps },
        { name: `${name}-py`, workernames: ['py'], steps },
      ]),
    });
    bbgate = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bb', password: 'pw' });
    await bbgate.waitForLog(/Connected to buildmaster/);
    python = await startPythonWorker({ masterPort: master.pbPort, name: 'py', password: 'pw' });
  });
  after(async () => {
    await bbgate?.stop();
    await python?.stop();
    await master?.stop();
  });

  /** Runs the builder on both workers at once; the neutral stdio logs, bbgate's first. */
  async function both(builder: string) {
    const [ours, theirs] = await Promise.all([master.runBuild(`${builder}-bb`), master.runBuild(`${builder}-py`)]);
    return [stdio(ours, bbgate.basedir), stdio(theirs, python.basedir)] as const;
  }

  it('a step that needs a terminal succeeds with usePTY, with the same stdout and headers', async () => {
    const [ours, theirs] = await both('pty');
    assert.equal(ours.results, Results.SUCCESS, ours.header);
    assert.deepEqual(ours, theirs);
    // stderr merged into stdout (the master's log turns the terminal's \r\n into \n).
    assert.equal(ours.stdout, 'to-stderr\non a terminal\n');
    assert.equal(ours.stderr, '');
    assert.match(ours.header, / using PTY: True\n/);
  });

  it('the same step fails without usePTY, and with initialStdin (which turns the PTY off), on both', async () => {
    for (const builder of ['nopty', 'ptystdin']) {
      const [ours, theirs] = await both(builder);
      assert.equal(ours.results, Results.FAILURE, builder);
      assert.deepEqual(ours, theirs, builder);
      assert.match(ours.header, / using PTY: False\n/);
    }
    const [stdinRun] = await both('ptystdin');
    assert.match(stdinRun.header, /^WARNING: disabling usePTY for this command/);
  });

  it('a silent PTY step is killed at its timeout as buildbot-worker kills it', async () => {
    const [ours, theirs] = await both('ptytimeout');
    assert.equal(ours.results, Results.FAILURE);
    assert.deepEqual(ours, theirs);
    assert.match(ours.header, /command timed out: 1 seconds without output/);
    assert.match(ours.header, /process killed by signal 9/);
  });

  it('a PTY step stopped by the master is cancelled as on buildbot-worker', async () => {
    const results: Record<string, BuildResult> = {};
    for (const [suffix, started] of [
      ['bb', async () => () => bbgate.waitForLog(/starting a process .*\/ptystop-bb\/build"/)],
      // Only what the Python worker logs from now on: earlier PTY steps logged the same line.
      ['py', async () => {
        const since = await python.logSize();
        return () => python.waitForLog(/ using PTY: True/, 20_000, since);
      }],
    ] as const) {
      const waitStarted = await started();
      const forced = await master.forceBuild(`ptystop-${suffix}`);
      await waitStarted();
      let builds: { buildid: number }[] = [];
      await waitFor(async () => (builds = (await master.api(`builds?buildrequestid=${forced.buildRequestId}`)).builds).length > 0, 'the build in the REST API');
      await master.rpc(`builds/${builds[0]!.buildid}`, 'stop', { reason: 'test stops it' });
      results[suffix] = await master.waitForBuild(forced);
    }
    const ours = stdio(results.bb!, bbgate.basedir);
    const theirs = stdio(results.py!, python.basedir);
    assert.equal(results.bb!.results, Results.CANCELLED);
    assert.equal(results.py!.results, Results.CANCELLED);
    assert.equal(ours.results, theirs.results);
    assert.match(ours.header, /command interrupted, attempting to kill/);
    assert.equal(ours.header, theirs.header);
  });
});
