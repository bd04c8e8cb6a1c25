// msgpack_experimental_v7 on a real Buildbot 4.2.1 master (the trixie root; see
// test/helpers/buildbot-runtime.ts): the same build runs on bbgate and on buildbot-worker 4.2.1, both
// attached to the master's msgpack port, and every step ends the same, the 4.x additions included
// (failure_reason rides inside update.args: " (max lines)", " (timed out)"). 4.2.1's master keeps
// 3.7's update_read_file bug, so a download arrives empty on both workers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { startMaster, startPythonWorker, type BuildResult, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

const STEPS = [
  `steps.ShellCommand(name='echo', command=['sh', '-c', 'echo hello; echo oops >&2'])`,
  `steps.ShellCommand(name='fails', command='exit 3')`,
  `steps.ShellCommand(name='many-lines', command=['seq', '1', '100000'], max_lines=10)`,
  `steps.ShellCommand(name='silent', command=['sleep', '60'], timeout=1)`,
  `steps.ShellCommand(name='make', command=['sh', '-c', 'head -c 300000 /dev/urandom > up.bin && mkdir -p tree/sub && echo b > tree/sub/b.txt'])`,
  `steps.FileUpload(name='upload', workersrc='up.bin', masterdest=util.Interpolate('exchange/%(prop:workername)s/up.bin'))`,
  `steps.DirectoryUpload(name='upload-dir', workersrc='tree', masterdest=util.Interpolate('exchange/%(prop:workername)s/tree'))`,
  `steps.FileDownload(name='download', mastersrc='to-worker.bin', workerdest='got.bin')`,
  `steps.ShellCommand(name='size', command=['sh', '-c', 'wc -c < got.bin'])`,
  `steps.MakeDirectory(name='mkdir', dir='build/made')`,
  `steps.ShellCommand(name='fill', command=['sh', '-c', 'echo x > made/f'])`,
  `steps.CopyDirectory(name='cpdir', src='build/made', dest='build/copied')`,
  `steps.FileExists(name='stat', file='build/copied/f')`,
  `steps.RemoveDirectory(name='rmdir', dir='build/made')`,
  `steps.ShellCommand(name='check-fs', command=['sh', '-c', 'test ! -e made && test -f copied/f'])`,
];

const outcome = (build: BuildResult) => build.steps.filter((s) => s.name !== 'worker_preparation').map((s) => [s.name, s.resultName, s.stateString]);
const stdio = (build: BuildResult, name: string) => build.steps.find((s) => s.name === name)!.logs.find((l) => l.name === 'stdio')!;

describe('msgpack_experimental_v7 on a Buildbot 4.2.1 master: bbgate beside buildbot-worker 4.2.1', () => {
  let master: RunningMaster;
  let worker: TestWorker;
  let python: RunningPythonWorker;
  let bb: BuildResult;
  let py: BuildResult;

  before(async () => {
    master = await startMaster({
      version: '4',
      msgpack: true,
      workers: ['m4', 'q4'].map((name) => ({ name, password: `${name}-pass` })),
      builders: ['m4', 'q4'].map((name) => ({ name: `suite-${name}`, workernames: [name], steps: STEPS })),
      files: { 'to-worker.bin': Buffer.from('not empty\n') },
    });
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.msgpackPort}`, workername: 'm4', password: 'm4-pass', protocol: 'msgpack_experimental_v7' });
    python = await startPythonWorker({ version: '4', masterPort: master.msgpackPort!, name: 'q4', password: 'q4-pass', createArgs: ['--protocol=msgpack_experimental_v7'] });
    await master.waitForWorker('m4');
    await master.waitForWorker('q4');
    [bb, py] = await Promise.all([master.runBuild('suite-m4'), master.runBuild('suite-q4')]);
  });
  after(async () => {
    await worker?.stop();
    await python?.stop();
    await master?.stop();
  });

  it('every step ends as on buildbot-worker 4.2.1, state strings included', () => {
    assert.deepEqual(outcome(bb), outcome(py));
    const byName = new Map(outcome(bb).map(([name, result, state]) => [name, { result, state }]));
    assert.equal(byName.get('echo')!.result, 'SUCCESS');
    assert.equal(byName.get('fails')!.result, 'FAILURE');
    assert.match(byName.get('many-lines')!.state!, / \(max lines\)$/);
    assert.match(byName.get('silent')!.state!, / \(timed out\)$/);
    for (const name of ['upload', 'upload-dir', 'mkdir', 'cpdir', 'stat', 'rmdir', 'check-fs']) assert.equal(byName.get(name)!.result, 'SUCCESS', name);
  });

  it('sends the output and the files as buildbot-worker does', async () => {
    assert.equal(stdio(bb, 'echo').stdout, 'hello\n');
    assert.equal(stdio(bb, 'echo').stderr, stdio(py, 'echo').stderr);
    const uploaded = await readFile(join(master.basedir, 'exchange', 'm4', 'up.bin'));
    assert.equal(sha256(uploaded), sha256(await readFile(join(worker.basedir, 'suite-m4', 'build', 'up.bin'))));
    assert.equal(await readFile(join(master.basedir, 'exchange', 'm4', 'tree', 'sub', 'b.txt'), 'utf8'), 'b\n');
  });

  it("shares 4.2.1's update_read_file bug: the download arrives empty on both workers", () => {
    assert.equal(stdio(bb, 'size').stdout.trim(), '0');
    assert.equal(stdio(py, 'size').stdout.trim(), '0');
  });
});
