// uploadFile, uploadDirectory and downloadFile against fake master-side writers and readers that
// record every call; directory archives are unpacked by the master's own DirectoryWriter
// (buildbot.process.remotetransfer), which is what receives them in production.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { PbFailure } from '../../src/pb/values/failure.js';
import { PyFloat, Tuple } from '../../src/pb/values/values.js';
import { MAX_BLOCK, downloadFile, downloadFileCommand, uploadDirectory, uploadDirectoryCommand, uploadFile, uploadFileCommand } from '../../src/worker/commands/transfer.js';
import { AdaptiveWindow, WINDOW_FLOOR_BLOCKS, fixedWindow } from '../../src/worker/commands/transfer-window.js';
import { canSwitchToNobody, runAsNobody } from '../helpers/nobody.js';
import type { CommandSpec } from '../../src/worker/commands/types.js';
import { waitFor } from '../helpers/wait.js';
import { fakeContext, fakeRemote, masterFailure, python, runCommand, type FakeRemote } from './fs-fake-context.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('uploadFile', () => {
  /**
   * Runs an upload against a writer that answers only when told, one write at a time, and checks
   * before each answer that the worker has as many writes out as it may (`inFlight`, or all that
   * are left): the pipeline fills, in order, whatever the machine's speed. Then close, then done.
   */
  async function heldUpload(spec: CommandSpec, inFlight: number, blocksize: number): Promise<FakeRemote> {
    const writer = fakeRemote({ held: true });
    const running = runCommand(spec, fakeContext(args(writer, { blocksize }), { builderDir }));
    const blocks = Math.ceil(data.length / blocksize);
    for (let answered = 0; answered < blocks; answered++) {
      const expected = Math.min(inFlight, blocks - answered);
      await waitFor(() => writer.outstanding === expected, `${expected} writes in flight after ${answered} answers (${inFlight} allowed)`, 10_000, 1);
      assert.equal(writer.methods().filter((m) => m === 'write').length, answered + expected, 'no write beyond the window');
      writer.release();
    }
    await waitFor(() => writer.outstanding === 1, 'close after the last answer', 10_000, 1);
    assert.equal(writer.methods().at(-1), 'close');
    writer.release();
    await running;
    assert.equal(writer.maxOutstanding, inFlight);
    assert.equal(sha(writer.written()), sha(data), 'the data arrives whole and in order');
    return writer;
  }

  it('the default window sends WINDOW_FLOOR_BLOCKS writes before the first answer, and the data still arrives whole and in order', async () => {
    const writer = fakeRemote({ held: true });
    const running = runCommand(uploadFile, fakeContext(args(writer, { blocksize: 65536 }), { builderDir }));
    await waitFor(() => writer.outstanding === WINDOW_FLOOR_BLOCKS, `${WINDOW_FLOOR_BLOCKS} writes before any answer`, 10_000, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(writer.outstanding, WINDOW_FLOOR_BLOCKS, 'no write beyond the window');
    while (writer.methods().at(-1) !== 'close' || writer.outstanding > 0) {
      if (writer.outstanding > 0) writer.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await running;
    assert.equal(sha(writer.written()), sha(data));
  });

  let root: string;
  let builderDir: string;
  let data: Buffer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-upload-'));
    builderDir = join(root, 'builder');
    await mkdir(join(builderDir, 'build', 'out'), { recursive: true });
    data = randomBytes(1024 * 1024 + 123);
    await writeFile(join(builderDir, 'build', 'out', 'big.bin'), data);
  });
  after(() => rm(root, { recursive: true, force: true }));

  const args = (writer: ReturnType<typeof fakeRemote>, extra: Record<string, unknown> = {}) => ({
    workdir: 'build',
    workersrc: 'out/big.bin',
    writer: writer.ref,
    maxsize: null,
    blocksize: 65536,
    keepstamp: false,
    ...extra,
  });

  it('sends blocks of blocksize, waiting for each answer as 3.7 does, then close; the data arrives whole', async () => {
    const writer = fakeRemote({ delayMs: 1 });
    const run = fakeContext(args(writer), { builderDir });
    await runCommand(uploadFileCommand({ window: fixedWindow(1) }), run);
    const writes = writer.calls.filter((c) => c.method === 'write');
    assert.equal(writes.length, Math.ceil(data.length / 65536));
    assert.ok(writes.slice(0, -1).every((c) => (c.args[0] as Buffer).length === 65536));
    assert.equal(sha(writer.written()), sha(data));
    assert.equal(writer.maxOutstanding, 1);
    assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['close']);
    const path = join(builderDir, 'build', 'out', 'big.bin');
    assert.deepEqual(run.updates, [
      { key: 'header', value: `sending ${path}\n` },
      { key: 'rc', value: 0 },
    ]);
  });

  it('cuts blocks larger than Banana allows to 640 KiB', async () => {
    const writer = fakeRemote();
    await runCommand(uploadFile, fakeContext(args(writer, { blocksize: 4 * 1024 * 1024 }), { builderDir }));
    assert.deepEqual(
      writer.calls.filter((c) => c.method === 'write').map((c) => (c.args[0] as Buffer).length),
      [MAX_BLOCK, data.length - MAX_BLOCK],
    );
  });

  it('stops at maxsize with the message and rc 1, and still closes (a file of exactly maxsize too, as in 3.7)', async () => {
    for (const maxsize of [100_000, data.length]) {
      const writer = fakeRemote();
      const run = fakeContext(args(writer, { maxsize }), { builderDir });
      await runCommand(uploadFile, run);
      assert.equal(writer.written().length, maxsize);
      assert.ok(writer.written().equals(data.subarray(0, maxsize)));
      assert.equal(writer.methods().at(-1), 'close');
      assert.deepEqual(run.values('rc'), [1]);
      assert.equal(run.text('stderr'), `Maximum filesize reached, truncating file '${join(builderDir, 'build', 'out', 'big.bin')}'`);
    }
  });

  it('keepstamp: utime after close, with one tuple of two floats (integral times as PyFloat)', async () => {
    const path = join(builderDir, 'build', 'stamped');
    await writeFile(path, 'x');
    await utimes(path, 1_500_000_000, 1_600_000_000.75);
    const writer = fakeRemote();
    const run = fakeContext(args(writer, { workersrc: 'stamped', keepstamp: true }), { builderDir });
    await runCommand(uploadFile, run);
    assert.deepEqual(writer.methods(), ['write', 'close', 'utime']);
    const utime = writer.calls[2]!.args;
    assert.equal(utime.length, 1);
    const times = utime[0];
    assert.ok(times instanceof Tuple && times.length === 2);
    assert.ok(times[0] instanceof PyFloat && times[0].value === 1_500_000_000);
    assert.equal(times[1], 1_600_000_000.75);
  });

  it('keepstamp is read with Python truthiness: an empty dict, set or list keeps no stamp (no utime), a full one does', async () => {
    await writeFile(join(builderDir, 'build', 'stamped'), 'x');
    for (const [keepstamp, calls] of [
      [new Map(), ['write', 'close']],
      [new Set(), ['write', 'close']],
      [[], ['write', 'close']],
      [new Map([['a', 1]]), ['write', 'close', 'utime']],
    ] as const) {
      const writer = fakeRemote();
      await runCommand(uploadFile, fakeContext(args(writer, { workersrc: 'stamped', keepstamp }), { builderDir }));
      assert.deepEqual(writer.methods(), calls, `keepstamp ${String(keepstamp.constructor.name)} of size ${'size' in keepstamp ? keepstamp.size : keepstamp.length}`);
    }
  });

  it('a missing file or a directory: header, close, stderr and rc 1, no writes (utime only with times to keep, as in 3.7)', async () => {
    for (const [workersrc, calls] of [['nope.bin', ['close']], ['out', ['close', 'utime']]] as const) {
      const writer = fakeRemote();
      const run = fakeContext(args(writer, { workersrc, keepstamp: true }), { builderDir });
      await runCommand(uploadFile, run);
      const path = join(builderDir, 'build', workersrc);
      assert.deepEqual(writer.methods(), calls);
      assert.deepEqual(run.updates, [
        { key: 'header', value: `sending ${path}\n` },
        { key: 'rc', value: 1 },
        { key: 'stderr', value: `Cannot open file '${path}' for upload` },
      ]);
    }
  });

  it('resolves workersrc: absolute paths win, ~ is the home directory', async () => {
    const home = join(root, 'home');
    await mkdir(home);
    await writeFile(join(home, 'in-home'), 'home data');
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      const writer = fakeRemote();
      await runCommand(uploadFile, fakeContext(args(writer, { workersrc: '~/in-home' }), { builderDir }));
      assert.equal(writer.written().toString(), 'home data');
    } finally {
      process.env.HOME = saved;
    }
    const writer = fakeRemote();
    await runCommand(uploadFile, fakeContext(args(writer, { workersrc: join(home, 'in-home') }), { builderDir }));
    assert.equal(writer.written().toString(), 'home data');
  });

  it('an interrupt stops at the next block: close once, rc 1', async () => {
    // The writer answers only when told, so the window is full when the interrupt comes whatever
    // the machine's load: the writes already out are answered, none follows, then one close.
    const writer = fakeRemote({ held: true });
    const run = fakeContext(args(writer, { blocksize: 16384 }), { builderDir });
    let finished = false;
    const running = runCommand(uploadFile, run).finally(() => (finished = true));
    await waitFor(() => writer.outstanding === WINDOW_FLOOR_BLOCKS, 'a full window of writes', 5000, 1);
    run.abort.abort(new Error('interrupted'));
    while (!finished) {
      if (writer.outstanding > 0) writer.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await running;
    const writes = writer.calls.filter((c) => c.method === 'write').length;
    assert.equal(writes, WINDOW_FLOOR_BLOCKS, 'no write after the interrupt');
    assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['close']);
    assert.deepEqual(run.values('rc'), [1]);
  });

  it('a failing write: no further writes, close still called once, rc 1, and the command fails', async () => {
    for (const writesInFlight of [1, 4]) {
      const writer = fakeRemote({ delayMs: 1, failOn: (m, i) => (m === 'write' && i === 2 ? masterFailure() : undefined) });
      const run = fakeContext(args(writer), { builderDir });
      await assert.rejects(runCommand(uploadFileCommand({ window: fixedWindow(writesInFlight) }), run), (err: unknown) => err instanceof PbFailure && err.value === 'disk full');
      const writes = writer.calls.filter((c) => c.method === 'write').length;
      assert.ok(writes >= 3 && writes <= 2 + writesInFlight, `${writes} writes with ${writesInFlight} in flight`);
      assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['close']);
      assert.deepEqual(run.values('rc'), [1]);
    }
  });

  it('a failing close fails the command with rc 1', async () => {
    const writer = fakeRemote({ failOn: (m) => (m === 'close' ? masterFailure('rename failed') : undefined) });
    const run = fakeContext(args(writer, { workersrc: 'out/big.bin' }), { builderDir });
    await assert.rejects(runCommand(uploadFile, run), { value: 'rename failed' });
    assert.deepEqual(run.values('rc'), [1]);
    assert.equal(writer.methods().filter((m) => m === 'close').length, 1);
  });

  // What the window is worth in time over a slow link is measured by `npm run bench:transfer`, not here.
  it('a fixed window of N writes fills to exactly N and never beyond, order kept, for N = 1, 2, 4, 8', async () => {
    for (const writesInFlight of [1, 2, 4, 8]) {
      const writer = await heldUpload(uploadFileCommand({ window: fixedWindow(writesInFlight) }), writesInFlight, 16384);
      assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['close']);
    }
  });
});

describe('uploadDirectory', () => {
  let root: string;
  let builderDir: string;
  let tree: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-upload-dir-'));
    builderDir = join(root, 'builder');
    tree = join(builderDir, 'build', 'dist');
    await makeRichTree(tree);
  });
  after(() => rm(root, { recursive: true, force: true }));

  const args = (writer: ReturnType<typeof fakeRemote>, extra: Record<string, unknown> = {}) => ({
    workdir: 'build',
    workersrc: 'dist',
    writer: writer.ref,
    maxsize: null,
    blocksize: 16384,
    compress: null,
    ...extra,
  });

  it('the uncompressed stream is byte for byte what Python tarfile writes for the same tree', async () => {
    const writer = fakeRemote();
    const run = fakeContext(args(writer), { builderDir });
    await runCommand(uploadDirectory, run);
    const pythonTar = Buffer.from(python(`
import io, json, sys, tarfile
bio = io.BytesIO()
archive = tarfile.open(mode='w', fileobj=bio)
archive.add(json.load(sys.stdin), '')
archive.close()
print(json.dumps(bio.getvalue().hex()))
`, tree) as string, 'hex');
    assert.equal(writer.written().length, pythonTar.length);
    assert.ok(writer.written().equals(pythonTar), 'identical archives');
    assert.ok(writer.calls.filter((c) => c.method === 'write').slice(0, -1).every((c) => (c.args[0] as Buffer).length === 16384));
    assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['unpack']);
    assert.deepEqual(run.updates, [
      { key: 'header', value: `sending ${tree}\n` },
      { key: 'rc', value: 0 },
    ]);
  });

  for (const compress of [null, 'gz', 'bz2'] as const) {
    // compress=bz2 pipes through the bzip2 program, which scripts/setup.sh installs: without it this fails.
    it(`compress=${compress}: the master's DirectoryWriter unpacks an identical tree`, async () => {
      const writer = fakeRemote();
      await runCommand(uploadDirectory, fakeContext(args(writer, { compress }), { builderDir }));
      if (compress === 'gz') assert.equal(gunzipSync(writer.written()).length % 10240, 0);
      const diffs = unpackWithMaster(writer.written(), compress, tree, join(root, `unpacked-${compress}`));
      assert.deepEqual(diffs, []);
    });
  }

  it('a missing directory fails the command before anything is sent', async () => {
    const writer = fakeRemote();
    const run = fakeContext(args(writer, { workersrc: 'missing' }), { builderDir });
    await assert.rejects(runCommand(uploadDirectory, run), {
      type: 'builtins.FileNotFoundError',
      value: `[Errno 2] No such file or directory: '${join(builderDir, 'build', 'missing')}'`,
    });
    assert.deepEqual(writer.calls, []);
    assert.deepEqual(run.updates, []);
  });

  it('bz2 without a bzip2 program fails clearly before anything is sent', async () => {
    const writer = fakeRemote();
    const run = fakeContext(args(writer, { compress: 'bz2' }), { builderDir });
    await assert.rejects(runCommand(uploadDirectoryCommand({ bzip2: '/nonexistent/bzip2' }), run), (err: unknown) => {
      assert.ok(err instanceof PbFailure);
      assert.equal(err.type, 'builtins.OSError');
      assert.match(err.value, /compress='bz2' needs the \/nonexistent\/bzip2 program/);
      return true;
    });
    assert.deepEqual(writer.calls, []);
  });

  it('maxsize: truncated with the message and rc 1, then unpack as in 3.7', async () => {
    const writer = fakeRemote();
    const run = fakeContext(args(writer, { maxsize: 50_000 }), { builderDir });
    await runCommand(uploadDirectory, run);
    assert.equal(writer.written().length, 50_000);
    assert.deepEqual(writer.methods().filter((m) => m !== 'write'), ['unpack']);
    assert.deepEqual(run.values('rc'), [1]);
    assert.equal(run.text('stderr'), `Maximum filesize reached, truncating file '${tree}'`);
  });

  it('an interrupt stops at the next block with rc 1, and the cut-off archive is not unpacked', async () => {
    const writer = fakeRemote({ delayMs: 5 });
    const run = fakeContext(args(writer, { compress: 'gz', blocksize: 1024 }), { builderDir });
    const running = runCommand(uploadDirectoryCommand({ window: fixedWindow(1) }), run);
    await waitFor(() => writer.calls.length >= 2, 'two calls to the writer', 5000, 1);
    run.abort.abort(new Error('interrupted'));
    await running;
    assert.ok(writer.calls.length <= 3);
    assert.deepEqual(writer.methods().filter((m) => m !== 'write'), []);
    assert.deepEqual(run.values('rc'), [1]);
  });

  it('a failing write fails the command with rc 1 and no unpack; a failing unpack too', async () => {
    const writer = fakeRemote({ failOn: (m, i) => (m === 'write' && i === 1 ? masterFailure() : undefined) });
    const run = fakeContext(args(writer), { builderDir });
    await assert.rejects(runCommand(uploadDirectoryCommand({ window: fixedWindow(1) }), run), { value: 'disk full' });
    assert.deepEqual(writer.methods(), ['write', 'write']);
    assert.deepEqual(run.values('rc'), [1]);

    const unpackFails = fakeRemote({ failOn: (m) => (m === 'unpack' ? masterFailure('bad archive') : undefined) });
    const run2 = fakeContext(args(unpackFails), { builderDir });
    await assert.rejects(runCommand(uploadDirectory, run2), { value: 'bad archive' });
    assert.deepEqual(run2.values('rc'), [1]);
  });

  it('an unreadable file inside fails the command (as tarfile raises in 3.7), as an unprivileged user', { skip: canSwitchToNobody ? false : 'only root can run it as the nobody user' }, async () => {
    const dir = join(root, 'builder', 'build', 'locked');
    await mkdir(dir);
    await writeFile(join(dir, 'readable'), 'x');
    await writeFile(join(dir, 'secret'), 'x');
    await chmod(join(dir, 'secret'), 0);
    for (let d = dir; d !== root; d = dirname(d)) await chmod(d, 0o755);
    await chmod(root, 0o755);
    const child = runAsNobody((src) => `
      const { uploadDirectory } = await import(${JSON.stringify(src + 'worker/commands/transfer.js')});
      const writer = { callRemote: async () => null, release() {} };
      Object.setPrototypeOf(writer, (await import(${JSON.stringify(src + 'pb/values/references.js')})).RemoteReference.prototype);
      const ctx = { args: new Map([['workdir', 'build'], ['workersrc', 'locked'], ['writer', writer], ['blocksize', 16384], ['maxsize', null], ['compress', null]]),
        builderDir: ${JSON.stringify(join(root, 'builder'))}, basedir: ${JSON.stringify(root)}, environ: process.env,
        interrupted: new AbortController().signal, logger: { info() {}, warn() {} },
        updates: { stdout() {}, stderr() {}, header() {}, log() {}, send() {}, backlog: () => undefined } };
      try { await uploadDirectory.run(ctx); console.log('completed'); } catch (err) { console.log(err.type); }`);
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'builtins.PermissionError');
  });

});

describe('downloadFile', () => {
  let root: string;
  let builderDir: string;
  const data = randomBytes(200_000);
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-download-'));
    builderDir = join(root, 'builder');
    await mkdir(builderDir);
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A reader serving `source` the way the master's FileReader does. */
  const reader = (source: Buffer, extra: Parameters<typeof fakeRemote>[0] = {}) => {
    let offset = 0;
    return fakeRemote({
      ...extra,
      read: (length) => {
        const chunk = source.subarray(offset, offset + length);
        offset += chunk.length;
        return chunk;
      },
    });
  };
  const args = (r: ReturnType<typeof fakeRemote>, extra: Record<string, unknown> = {}) => ({
    workdir: 'build',
    workerdest: 'deep/er/file.bin',
    reader: r.ref,
    maxsize: null,
    blocksize: 16384,
    mode: null,
    ...extra,
  });

  it('with a window of 1, as 3.7: reads blocks until an empty answer, creating the parent directories; then close, rc 0', async () => {
    const r = reader(data);
    const run = fakeContext(args(r), { builderDir });
    await runCommand(downloadFileCommand({ window: fixedWindow(1) }), run);
    const path = join(builderDir, 'build', 'deep', 'er', 'file.bin');
    assert.equal(sha(await readFile(path)), sha(data));
    const reads = r.calls.filter((c) => c.method === 'read');
    assert.equal(reads.length, Math.ceil(data.length / 16384) + 1);
    assert.ok(reads.every((c) => c.args[0] === 16384));
    assert.equal(r.maxOutstanding, 1);
    assert.deepEqual(r.methods().filter((m) => m !== 'read'), ['close']);
    assert.deepEqual(run.updates, [{ key: 'rc', value: 0 }]);
  });

  it('keeps the window of reads in flight (4 blocks before any answer), writes the answers in order, and closes after the last', async () => {
    const r = reader(data, { held: true });
    const run = fakeContext(args(r, { workerdest: 'windowed.bin' }), { builderDir });
    const running = runCommand(downloadFile, run);
    await waitFor(() => r.outstanding === WINDOW_FLOOR_BLOCKS, `${WINDOW_FLOOR_BLOCKS} reads before any answer`, 10_000, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(r.outstanding, WINDOW_FLOOR_BLOCKS, 'no read beyond the window');
    let closeSeen = false;
    while (!closeSeen) {
      if (r.outstanding > 0) {
        // close comes only when every read has been answered.
        closeSeen = r.methods().at(-1) === 'close';
        if (closeSeen) assert.equal(r.outstanding, 1, 'close waits for the reads still out');
        r.release();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await running;
    assert.equal(sha(await readFile(join(builderDir, 'build', 'windowed.bin'))), sha(data));
    const reads = r.calls.filter((c) => c.method === 'read');
    assert.ok(reads.every((c) => c.args[0] === 16384));
    // The reads still out at the end answer empty (the reader is at its end) and are not written.
    assert.ok(reads.length >= Math.ceil(data.length / 16384) + 1);
    assert.deepEqual(r.methods().filter((m) => m !== 'read'), ['close']);
    assert.deepEqual(run.updates, [{ key: 'rc', value: 0 }]);
  });

  it('asks for no more than the window allows: a reader never has more than its cap of bytes out (a cap below the 4-block floor)', async () => {
    const cap = 16 * 1024;
    const r = reader(data, { delayMs: 2 });
    const windows: AdaptiveWindow[] = [];
    const spec = downloadFileCommand({ window: (blockSize) => windows[windows.push(new AdaptiveWindow(blockSize, cap)) - 1]! });
    await runCommand(spec, fakeContext(args(r, { workerdest: 'capped.bin', blocksize: 8192 }), { builderDir }));
    assert.equal(sha(await readFile(join(builderDir, 'build', 'capped.bin'))), sha(data));
    assert.equal(r.maxOutstanding, cap / 8192, 'reads out at once');
    assert.equal(windows[0]!.peak, cap, 'the window filled to its cap, and no further');
  });

  it('an empty text answer also ends the file', async () => {
    let first = true;
    const r = fakeRemote({
      read: () => {
        if (!first) return '';
        first = false;
        return Buffer.from('abc');
      },
    });
    const run = fakeContext(args(r, { workerdest: 'text-eof' }), { builderDir });
    await runCommand(downloadFile, run);
    assert.equal(await readFile(join(builderDir, 'build', 'text-eof'), 'utf8'), 'abc');
    assert.deepEqual(run.values('rc'), [0]);
  });

  it('mode is applied to the new file', async () => {
    const r = reader(Buffer.from('#!/bin/sh\n'));
    await runCommand(downloadFile, fakeContext(args(r, { workerdest: 'run.sh', mode: 0o750 }), { builderDir }));
    assert.equal((await stat(join(builderDir, 'build', 'run.sh'))).mode & 0o777, 0o750);
  });

  it('maxsize: reads no more than allowed, the message and rc 1', async () => {
    const r = reader(data);
    const run = fakeContext(args(r, { workerdest: 'limited', maxsize: 40_000 }), { builderDir });
    await runCommand(downloadFile, run);
    const path = join(builderDir, 'build', 'limited');
    assert.ok((await readFile(path)).equals(data.subarray(0, 40_000)));
    assert.deepEqual(r.calls.filter((c) => c.method === 'read').map((c) => c.args[0]), [16384, 16384, 40_000 - 32768]);
    assert.deepEqual(run.updates, [
      { key: 'rc', value: 1 },
      { key: 'stderr', value: `Maximum filesize reached, truncating file '${path}'` },
    ]);
  });

  it('a destination that cannot be opened: no reads, close, the message and rc 1', async () => {
    await mkdir(join(builderDir, 'build', 'a-dir'), { recursive: true });
    const r = reader(data);
    const run = fakeContext(args(r, { workerdest: 'a-dir' }), { builderDir });
    await runCommand(downloadFile, run);
    assert.deepEqual(r.methods(), ['close']);
    assert.deepEqual(run.updates, [
      { key: 'rc', value: 1 },
      { key: 'stderr', value: `Cannot open file '${join(builderDir, 'build', 'a-dir')}' for download` },
    ]);
  });

  it('a failing read: no read after it is seen, close is still called once, rc 1, and the command fails', async () => {
    for (const window of [fixedWindow(1), undefined]) {
      const r = reader(data, { failOn: (m, i) => (m === 'read' && i === 2 ? masterFailure('read error') : undefined) });
      const run = fakeContext(args(r, { workerdest: 'failing' }), { builderDir });
      const spec = window ? downloadFileCommand({ window }) : downloadFile;
      await assert.rejects(runCommand(spec, run), { value: 'read error' });
      const methods = r.methods();
      if (window) assert.deepEqual(methods, ['read', 'read', 'read', 'close']);
      else assert.ok(methods.length <= 3 + WINDOW_FLOOR_BLOCKS && methods.at(-1) === 'close', methods.join(' '));
      assert.equal(methods.filter((m) => m === 'close').length, 1);
      assert.deepEqual(run.values('rc'), [1]);
    }
  });

  it('a failing close is logged and ignored', async () => {
    const r = reader(Buffer.from('x'), { failOn: (m) => (m === 'close' ? masterFailure('gone') : undefined) });
    const run = fakeContext(args(r, { workerdest: 'close-fails' }), { builderDir });
    await runCommand(downloadFile, run);
    assert.deepEqual(run.values('rc'), [0]);
    assert.equal(run.warnings.length, 1);
  });

  it('an interrupt: no read after it, the answers still due are written, then close, rc 1', async () => {
    const r = reader(data, { held: true });
    const run = fakeContext(args(r, { workerdest: 'interrupted', blocksize: 1024 }), { builderDir });
    let finished = false;
    const running = runCommand(downloadFile, run).finally(() => (finished = true));
    await waitFor(() => r.outstanding === WINDOW_FLOOR_BLOCKS, 'a full window of reads', 5000, 1);
    run.abort.abort(new Error('interrupted'));
    while (!finished) {
      if (r.outstanding > 0) r.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await running;
    assert.deepEqual(r.methods(), [...Array(WINDOW_FLOOR_BLOCKS).fill('read'), 'close']);
    assert.ok((await readFile(join(builderDir, 'build', 'interrupted'))).equals(data.subarray(0, WINDOW_FLOOR_BLOCKS * 1024)));
    assert.deepEqual(run.values('rc'), [1]);
  });
});

/** Everything tar can hold that a build leaves behind, with awkward names, sizes and times. */
async function makeRichTree(tree: string): Promise<void> {
  const dirs = ['sub/deeper/deepest', 'empty', 'ünïcödé dïr', 'd'.repeat(90) + '/' + 'e'.repeat(90)];
  for (const d of dirs) await mkdir(join(tree, d), { recursive: true });
  const files: [string, Buffer][] = [
    ['empty-file', Buffer.alloc(0)],
    ['exactly-512', randomBytes(512)],
    ['exactly-1024', randomBytes(1024)],
    ['big.bin', randomBytes(3 * 1024 * 1024 + 7)],
    ['sub/deeper/deepest/leaf.txt', Buffer.from('leaf\n')],
    ['ünïcödé dïr/fïlé.txt', Buffer.from('ü\n')],
    ['d'.repeat(90) + '/' + 'e'.repeat(90) + '/long-' + 'f'.repeat(120), Buffer.from('long name\n')],
    ['script.sh', Buffer.from('#!/bin/sh\necho hi\n')],
  ];
  for (const [name, content] of files) {
    await writeFile(join(tree, name), content);
    await utimes(join(tree, name), 1_600_000_000.125, 1_650_000_000.123456);
  }
  await chmod(join(tree, 'script.sh'), 0o755);
  await link(join(tree, 'exactly-512'), join(tree, 'hardlink-to-512'));
  await symlink('sub/deeper', join(tree, 'link-rel'));
  await symlink('/'.padEnd(150, 'x'), join(tree, 'link-long-target'));
  execFileSync('mkfifo', [join(tree, 'fifo')]);
  // A name that is not UTF-8 (Python stores it with hdrcharset=BINARY).
  await writeFile(Buffer.concat([Buffer.from(join(tree, 'bad-')), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'latin');
  await utimes(join(tree, 'sub'), 1_400_000_000, 1_400_000_000.5);
}

/**
 * Feeds the archive to buildbot's own DirectoryWriter (write per block, then unpack), then compares
 * the unpacked tree with the source: names, types, modes, sizes, contents, link targets, link
 * counts, owners and modification times (to a microsecond: tarfile sets them as floats).
 */
function unpackWithMaster(archive: Buffer, compress: string | null, source: string, dest: string): string[] {
  return python(
    `
import hashlib, json, os, stat, sys
from buildbot.process.remotetransfer import DirectoryWriter
req = json.load(sys.stdin)
data = bytes.fromhex(req['archive'])
writer = DirectoryWriter(req['dest'], None, req['compress'], 0o600)
for i in range(0, len(data), 16384):
    writer.remote_write(data[i:i + 16384])
writer.remote_unpack()

def snapshot(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for name in [''] + dirs + files if base == root else dirs + files:
            p = os.path.join(base, name) if name else root
            st = os.lstat(p)
            rel = os.path.relpath(p, root).encode('utf-8', 'surrogateescape').hex()
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                entry += [st.st_size, hashlib.sha256(open(p, 'rb').read()).hexdigest()]
            if stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(p))
            else:
                entry.append(round(st.st_mtime_ns / 1000))
            out[rel] = entry
    return out

a, b = snapshot(req['source']), snapshot(req['dest'])
diffs = []
for key in sorted(set(a) | set(b)):
    x, y = a.get(key), b.get(key)
    same = x is not None and y is not None and x[:-1] == y[:-1] and (isinstance(x[-1], str) and x[-1] == y[-1] or isinstance(x[-1], int) and abs(x[-1] - y[-1]) <= 1)
    if not same:
        diffs.append(f'{bytes.fromhex(key)!r}: source {x} unpacked {y}')
print(json.dumps(diffs))
`,
    { archive: archive.toString('hex'), compress, source, dest },
  ) as string[];
}
