// Real builds: a real Buildbot 3.7 master runs steps on the bbgate worker, and the test asserts
// the results the master records (through its REST API), not just that something ran.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type BuildResult, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { FILESYSTEM_STEPS } from '../helpers/build-steps.js';
import { waitFor } from '../helpers/wait.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('real builds on the bbgate worker', () => {
  let master: RunningMaster;
  let worker: TestWorker;
  let exchange: string;

  const builders: Record<string, string[]> = {};
  before(async () => {
    exchange = await mkdtemp(join(tmpdir(), 'bbgate-exchange-'));
    const download = Buffer.alloc(700_000);
    for (let i = 0; i < download.length; i++) download[i] = (i * 7919) % 251;
    await writeFile(join(exchange, 'to-worker.bin'), download);
    Object.assign(builders, {
      hello: [`steps.ShellCommand(command=['sh', '-c', 'echo hello; echo oops >&2'], name='hello')`],
      failing: [`steps.ShellCommand(command='exit 3', name='fails')`],
      env: [`steps.ShellCommand(name='env', command=['sh', '-c', 'echo "$FOO|$LIST|$EXPANDED|${'$'}{GONE-unset}|$PWD"'],
              env={'FOO': 'foo', 'LIST': ['a', 'b'], 'EXPANDED': 'x-\${BBGATE_TEST_VAR}-y', 'GONE': None})`],
      timeout: [`steps.ShellCommand(name='sleeps', command=['sleep', '60'], timeout=1)`],
      longline: [`steps.ShellCommand(name='long', command=['sh', '-c', 'head -c 100000 /dev/zero | tr "\\\\0" x; echo; echo after'])`],
      logfiles: [`steps.ShellCommand(name='logs', command=['sh', '-c', 'echo one > out.log; sleep 1; echo two >> out.log'], logfiles={'out': 'out.log'})`],
      transfers: [
        `steps.ShellCommand(name='make', command=['sh', '-c', 'head -c 3000000 /dev/urandom > big.bin && mkdir -p tree/sub && echo a > tree/a.txt && echo b > tree/sub/b.txt'])`,
        `steps.FileUpload(workersrc='big.bin', masterdest='${exchange}/big.bin')`,
        `steps.DirectoryUpload(workersrc='tree', masterdest='${exchange}/tree')`,
        `steps.FileDownload(mastersrc='${exchange}/to-worker.bin', workerdest='got.bin', mode=0o640)`,
      ],
      filesystem: FILESYSTEM_STEPS,
      interrupted: [`steps.ShellCommand(name='forever', command=['sh', '-c', 'echo started; sleep 300'])`],
      badargs: [`steps.MakeDirectory(name='bad-dir', dir=3)`],
      badenv: [`steps.ShellCommand(name='bad-env', command=['true'], env={'X': 5})`],
    });
    master = await startMaster({
      workers: [{ name: 'bw', password: 'pw' }],
      builders: Object.entries(builders).map(([name, steps]) => ({ name, workernames: ['bw'], steps })),
    });
    process.env.BBGATE_TEST_VAR = 'expanded';
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bw', password: 'pw' });
    await worker.waitForLog(/Connected to buildmaster/);
  });
  after(async () => {
    await worker?.stop();
    await master?.stop();
    await rm(exchange, { recursive: true, force: true });
  });

  const step = (build: BuildResult, name: string) => {
    const found = build.steps.find((s) => s.name === name);
    assert.ok(found, `no step ${name} in ${JSON.stringify(build.steps.map((s) => s.name))}`);
    return found;
  };

  it('runs a shell step: SUCCESS, with stdout and stderr as the master stores them', async () => {
    const build = await master.runBuild('hello');
    assert.equal(build.results, Results.SUCCESS, build.stateString);
    const log = step(build, 'hello').logs[0]!;
    assert.equal(log.stdout, 'hello\n');
    assert.equal(log.stderr, 'oops\n');
    assert.match(log.header ?? '', /in dir .*hello\/build/);
  });

  it('reports a non-zero exit as FAILURE', async () => {
    const build = await master.runBuild('failing');
    assert.equal(build.results, Results.FAILURE);
  });

  it('applies the env rules: lists joined with ":", ${VAR} from the worker, None deletes, PWD set', async () => {
    const build = await master.runBuild('env');
    assert.equal(build.results, Results.SUCCESS);
    assert.match(step(build, 'env').logs[0]!.stdout ?? '', /^foo\|a:b\|x-expanded-y\|unset\|\/.*\/env\/build\n$/);
  });

  it('kills a step that stays silent past its timeout', async () => {
    const build = await master.runBuild('timeout');
    assert.equal(build.results, Results.FAILURE);
    assert.match(step(build, 'sleeps').logs[0]!.header ?? '', /command timed out: 1 seconds? without output/);
  });

  it('reports a timeout to the 3.7 master as before: FAILURE, no suffix, the failure_reason update taken without complaint', async () => {
    const since = await master.logSize();
    const build = await master.runBuild('timeout');
    assert.equal(build.results, Results.FAILURE);
    // 3.7 knows no failure_reason: its summary stays as it was before bbgate sent one (4.x adds " (timed out)").
    assert.equal(step(build, 'sleeps').stateString, "'sleep 60' (failure)");
    assert.equal(build.stateString, "failed 'sleep 60' (failure)");
    const log = (await master.log()).slice(since);
    assert.doesNotMatch(log, /Traceback|Unhandled|failure_reason/, log);
  });

  it('delivers a 100,000-character line intact', async () => {
    const build = await master.runBuild('longline');
    assert.equal(build.results, Results.SUCCESS);
    // The master itself wraps stored lines at 4096 characters; what matters is that no character is lost.
    const stdout = step(build, 'long').logs[0]!.stdout;
    assert.equal(stdout.replace(/\n/g, ''), 'x'.repeat(100000) + 'after');
    assert.match(stdout, /x\nafter\n?$/, JSON.stringify(stdout.slice(-30)));
  });

  it('streams a watched logfile', async () => {
    const build = await master.runBuild('logfiles');
    assert.equal(build.results, Results.SUCCESS);
    const out = step(build, 'logs').logs.find((l) => l.name === 'out');
    assert.equal(out?.text, 'one\ntwo\n');
  });

  it('uploads a 3 MB file and a directory, and downloads a file, byte for byte', async () => {
    const build = await master.runBuild('transfers');
    assert.equal(build.results, Results.SUCCESS, JSON.stringify(build.steps.map((s) => [s.name, s.resultName])));
    const dir = join(worker.basedir, 'transfers', 'build');
    assert.equal(sha256(await readFile(join(exchange, 'big.bin'))), sha256(await readFile(join(dir, 'big.bin'))));
    assert.equal(await readFile(join(exchange, 'tree', 'sub', 'b.txt'), 'utf8'), 'b\n');
    assert.equal(sha256(await readFile(join(dir, 'got.bin'))), sha256(await readFile(join(exchange, 'to-worker.bin'))));
  });

  it('runs the file-system commands: mkdir, cpdir, stat, rmdir', async () => {
    const build = await master.runBuild('filesystem');
    assert.equal(build.results, Results.SUCCESS, JSON.stringify(build.steps.map((s) => [s.name, s.resultName])));
  });

  it('stops a running build when the master interrupts it, killing the process', async () => {
    const forced = await master.forceBuild('interrupted');
    // This build's own process (earlier builds logged "starting command shell" too).
    await worker.waitForLog(/starting a process .*\/interrupted\/build"/);
    // The worker runs the step's command, so the master has the build, with that step running.
    let builds: { buildid: number; complete: boolean }[] = [];
    await waitFor(async () => (builds = (await master.api(`builds?buildrequestid=${forced.buildRequestId}`)).builds).length > 0, 'the build in the REST API');
    await master.rpc(`builds/${builds[0]!.buildid}`, 'stop', { reason: 'test stops it' });
    const build = await master.waitForBuild(forced);
    assert.equal(build.results, Results.CANCELLED);
    await worker.waitForLog(/interrupting command/);
  });

  // Last: after an EXCEPTION build the master quarantines the worker (10 s, then 20 s), which would hold up later tests.
  it('fails a step whose arguments the worker cannot use: EXCEPTION, the master showing the Python error', async () => {
    for (const [builder, name, error] of [
      ['badargs', 'bad-dir', "RemoteException: b'builtins.TypeError': 'dir' must be a string, not 3\n"],
      ['badenv', 'bad-env', "RemoteException: b'builtins.TypeError': 'env' values must be strings or lists; key 'X' is incorrect\n"],
    ] as const) {
      const failed = step(await master.runBuild(builder), name);
      assert.equal(failed.results, Results.EXCEPTION, builder);
      // The master keeps the worker's failure in the step's err.text log, after its own traceback.
      const errLog = failed.logs.find((log) => log.name === 'err.text');
      assert.ok(errLog?.content.includes(error), `${builder}: err.text ends with ${error}:\n${errLog?.content}`);
    }
  });
});
