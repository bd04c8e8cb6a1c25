// The file and transfer commands end to end: the bbgate worker runs the real Buildbot 3.7 master's
// FileUpload, DirectoryUpload, FileDownload, MultipleFileUpload (glob and stat), FileExists,
// MakeDirectory, CopyDirectory and RemoveDirectory steps; then uploads with 1 and 4 writes in
// flight through a relay that adds latency (their speed is measured by `npm run bench:transfer`).
// DirectoryUpload with compress='bz2' pipes through the bzip2 program, which scripts/setup.sh installs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMMANDS } from '../../src/worker/commands/index.js';
import { uploadFileCommand } from '../../src/worker/commands/transfer.js';
import { fixedWindow } from '../../src/worker/commands/transfer-window.js';
import type { CommandSpec } from '../../src/worker/commands/types.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startDelayRelay, type DelayRelay } from '../helpers/latency-relay.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The upload spec the worker runs, switchable between runs. */
let uploadSpec: CommandSpec = uploadFileCommand();
const switchableUpload: CommandSpec = {
  get required() {
    return uploadSpec.required;
  },
  run: (ctx) => uploadSpec.run(ctx),
};

// Each test file runs in its own process, so swapping the registry's uploadFile here touches nothing else.
(COMMANDS as Map<string, CommandSpec>).set('uploadFile', switchableUpload);

describe('transfers and file commands against a real master', () => {
  let master: RunningMaster;
  let worker: TestWorker;
  let relay: DelayRelay;
  let out: string;
  const data = randomBytes(1024 * 1024 + 321);
  const big = randomBytes(4 * 1024 * 1024);
  const down = randomBytes(300_000);

  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'bbgate-master-files-'));
    const m = (name: string) => JSON.stringify(join(out, name));
    await writeFile(join(out, 'down.bin'), down);
    master = await startMaster({
      workers: [{ name: 'fw', password: 'fw-pass' }],
      builders: [
        {
          name: 'files',
          workernames: ['fw'],
          steps: [
            `steps.FileUpload(workersrc='data.bin', masterdest=${m('up.bin')}, keepstamp=True, blocksize=65536)`,
            `steps.DirectoryUpload(workersrc='tree', masterdest=${m('tree-plain')})`,
            `steps.DirectoryUpload(workersrc='tree', masterdest=${m('tree-gz')}, compress='gz')`,
            // Through the bzip2 program, which scripts/setup.sh installs.
            `steps.DirectoryUpload(workersrc='tree', masterdest=${m('tree-bz2')}, compress='bz2')`,
            `steps.FileDownload(mastersrc=${m('down.bin')}, workerdest='got/down.bin', mode=0o750)`,
            `steps.MakeDirectory(dir='build/made/deep')`,
            `steps.CopyDirectory(src='build/tree', dest='build/tree-copy')`,
            `steps.RemoveDirectory(dir='build/tree-copy')`,
            `steps.FileExists(file='build/data.bin')`,
            `steps.MultipleFileUpload(workersrcs=['*.bin', 'tree'], masterdest=${m('multi')}, glob=True)`,
          ],
        },
        { name: 'missing', workernames: ['fw'], steps: [`steps.FileUpload(workersrc='nope.bin', masterdest=${m('nope.bin')})`] },
        { name: 'timing', workernames: ['fw'], steps: [`steps.FileUpload(workersrc='big.bin', masterdest=${m('big.bin')}, blocksize=65536)`] },
      ],
    });
    relay = await startDelayRelay(master.pbPort);
    worker = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port}`, workername: 'fw', password: 'fw-pass' });
    await worker.waitForLog(/Connected to buildmaster; worker is ready/);
    await master.waitForLog(/Worker fw attached to timing/);
    const build = join(worker.basedir, 'files', 'build');
    await mkdir(join(build, 'tree', 'sub', 'deeper'), { recursive: true });
    await writeFile(join(build, 'data.bin'), data);
    await utimes(join(build, 'data.bin'), 1_500_000_000.5, 1_600_000_000.25);
    await writeFile(join(build, 'tree', 'a.txt'), 'a\n');
    await writeFile(join(build, 'tree', 'sub', 'deeper', 'b.bin'), data.subarray(0, 100_000));
    await symlink('sub/deeper/b.bin', join(build, 'tree', 'link'));
    await mkdir(join(worker.basedir, 'timing', 'build'), { recursive: true });
    await writeFile(join(worker.basedir, 'timing', 'build', 'big.bin'), big);
  });
  after(async () => {
    await worker?.stop();
    await relay?.close();
    await master?.stop();
    await rm(out, { recursive: true, force: true });
  });

  it('runs every step to SUCCESS and moves the data intact', async () => {
    const build = await master.runBuild('files');
    assert.deepEqual(
      build.steps.map((s) => [s.name, s.resultName]),
      build.steps.map((s) => [s.name, 'SUCCESS']),
      build.steps.map((s) => `${s.name}: ${s.logs.map((l) => l.text).join('')}`).join('\n'),
    );
    assert.equal(build.results, Results.SUCCESS);

    const up = join(out, 'up.bin');
    assert.equal(sha(await readFile(up)), sha(data));
    assert.equal((await stat(up)).mtimeMs, 1_600_000_000_250);
    for (const variant of ['tree-plain', 'tree-gz', 'tree-bz2', 'multi/tree']) {
      const tree = join(out, variant);
      assert.equal(await readFile(join(tree, 'a.txt'), 'utf8'), 'a\n', variant);
      assert.ok((await readFile(join(tree, 'sub', 'deeper', 'b.bin'))).equals(data.subarray(0, 100_000)), variant);
      assert.equal(await readlink(join(tree, 'link')), 'sub/deeper/b.bin', variant);
    }
    assert.equal(sha(await readFile(join(out, 'multi', 'data.bin'))), sha(data));

    const builder = join(worker.basedir, 'files');
    const got = join(builder, 'build', 'got', 'down.bin');
    assert.equal(sha(await readFile(got)), sha(down));
    assert.equal((await stat(got)).mode & 0o777, 0o750);
    assert.ok((await stat(join(builder, 'build', 'made', 'deep'))).isDirectory());
    await assert.rejects(lstat(join(builder, 'build', 'tree-copy')), { code: 'ENOENT' });
    const upload = build.steps[1]!.logs.find((l) => l.name === 'stdio')!;
    assert.equal(upload.header, `sending ${join(builder, 'build', 'data.bin')}\nprogram finished with exit code 0\n`);
  });

  it('a missing file fails the upload step with the message, as 3.7 does', async () => {
    const build = await master.runBuild('missing');
    assert.equal(build.results, Results.FAILURE);
    const stdio = build.steps[1]!.logs.find((l) => l.name === 'stdio')!;
    assert.equal(stdio.stderr, `Cannot open file '${join(worker.basedir, 'missing', 'build', 'nope.bin')}' for upload\n`);
  });

  it('uploads over a 5 ms each-way link with 1 write in flight (3.7) and 4, and the adaptive window: the master writes every block, in order', async () => {
    relay.delayMs = 5;
    try {
      for (const window of [fixedWindow(1), fixedWindow(4), undefined]) {
        uploadSpec = uploadFileCommand(window ? { window } : {});
        await rm(join(out, 'big.bin'), { force: true });
        const build = await master.runBuild('timing');
        assert.equal(build.results, Results.SUCCESS);
        assert.equal(sha(await readFile(join(out, 'big.bin'))), sha(big), `the master wrote the blocks in order (${window ? 'a fixed window' : 'the adaptive window'})`);
      }
    } finally {
      uploadSpec = uploadFileCommand();
      relay.delayMs = 0;
    }
  });
});
