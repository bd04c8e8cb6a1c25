// Windowed transfers against the real masters, Buildbot 3.7 and 4.2.1, through a relay that adds a
// 20 ms round trip: FileDownload, FileUpload and DirectoryUpload arrive whole (sha256), maxsize
// truncates as in buildbot-worker, a missing source fails the step, an interrupt mid-download
// stops the reads and leaves a prefix, and a master that stops answering (its FileReader or
// FileWriter holds every call for 3 s) never has more than the window's cap asked of it.
// The master's own FileReader/FileWriter serve the calls; the stalling ones are subclasses that
// only hold calls back and log what they hold. Speed is measured by `npm run bench:transfer`.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WINDOW_CAP } from '../../src/worker/commands/transfer-window.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { startMaster, type BuildbotVersion, type RunningMaster } from '../helpers/buildbot-master.js';
import { startDelayRelay, type DelayRelay } from '../helpers/latency-relay.js';
import { waitFor } from '../helpers/wait.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Larger than the window's cap, so a worker without a window would ask for more than the cap during a stall. */
const SOURCE = randomBytes(20_000_000);

/**
 * master.cfg additions: a FileReader and a FileWriter that answer the first SERVE calls, then hold
 * every call for HOLD seconds (logging the calls and bytes held), then answer them in order and
 * serve on; and FileDownload/FileUpload steps that use them.
 */
const STALLING = `
from buildbot.process import remotetransfer as _rt
from twisted.internet import defer as _defer, reactor as _reactor
from twisted.python import log as _log

# The originals: the steps below swap the module's names for the stalling classes while they run.
_FileReader, _FileWriter = _rt.FileReader, _rt.FileWriter

class _Stall:
    HOLD = 3.0
    def _stall_init(self, serve):
        self._serve = serve
        self._calls = 0
        self._held = []
        self._held_bytes = 0
        self._released = False
    def _maybe_hold(self, size, answer):
        self._calls += 1
        if self._released or self._calls <= self._serve:
            return answer()
        if not self._held:
            _reactor.callLater(self.HOLD, self._release)
        d = _defer.Deferred()
        self._held.append((d, answer))
        self._held_bytes += size
        _log.msg('xfer-stall: holding %d calls, %d bytes' % (len(self._held), self._held_bytes))
        return d
    def _release(self):
        self._released = True
        _log.msg('xfer-stall: released %d calls, %d bytes' % (len(self._held), self._held_bytes))
        held, self._held = self._held, []
        for d, answer in held:
            d.callback(answer())

class StallingReader(_FileReader, _Stall):
    def __init__(self, fp):
        super().__init__(fp)
        self._stall_init(64)
    def remote_read(self, maxlength):
        return self._maybe_hold(maxlength, lambda: _FileReader.remote_read(self, maxlength))

class StallingWriter(_FileWriter, _Stall):
    def __init__(self, destfile, maxsize, mode):
        super().__init__(destfile, maxsize, mode)
        self._stall_init(8)
    def remote_write(self, data):
        return self._maybe_hold(len(data), lambda: _FileWriter.remote_write(self, data))

def _with(name, cls, step):
    class Stalled(step):
        @_defer.inlineCallbacks
        def run(self):
            saved = getattr(_rt, name)
            setattr(_rt, name, cls)
            try:
                res = yield super().run()
            finally:
                setattr(_rt, name, saved)
            return res
    return Stalled

StallDownload = _with('FileReader', StallingReader, steps.FileDownload)
StallUpload = _with('FileWriter', StallingWriter, steps.FileUpload)

# master.cfg evaluates the builders' steps before this runs, so the stalling ones are added here.
for _name, _step in [
        ('down-stall', StallDownload(mastersrc='src.bin', workerdest='stalled.bin')),
        ('down-stop', StallDownload(mastersrc='src.bin', workerdest='stopped.bin')),
        ('up-stall', StallUpload(workersrc='big.bin', masterdest='up-stalled.bin'))]:
    c['builders'].append(util.BuilderConfig(name=_name, workernames=['xw'], factory=util.BuildFactory([_step])))
    c['schedulers'].append(JsonForceScheduler(name='force-' + _name, builderNames=[_name]))
`;

function suite(version: BuildbotVersion): void {
  describe(`windowed transfers on a real Buildbot ${version} master through a 20 ms round trip`, () => {
    let master: RunningMaster;
    let worker: TestWorker;
    let relay: DelayRelay;
    const tree = { 'a.txt': Buffer.from('a\n'), 'sub/b.bin': randomBytes(3_000_000), 'sub/c.bin': randomBytes(70_000) };
    const builders: [string, string][] = [
      ['down', `steps.FileDownload(mastersrc='src.bin', workerdest='got.bin', mode=0o640)`],
      ['down-max', `steps.FileDownload(mastersrc='src.bin', workerdest='max.bin', maxsize=1000000)`],
      ['down-missing', `steps.FileDownload(mastersrc='nope.bin', workerdest='nope.bin')`],
      ['up', `steps.FileUpload(workersrc='big.bin', masterdest='up.bin')`],
      ['up-missing', `steps.FileUpload(workersrc='nope.bin', masterdest='nope.bin')`],
      ['updir', `steps.DirectoryUpload(workersrc='tree', masterdest='tree-out', compress='gz')`],
    ];
    const buildDir = (builder: string) => join(worker.basedir, builder, 'build');

    before(async () => {
      master = await startMaster({
        version,
        workers: [{ name: 'xw', password: 'xw-pass' }],
        builders: builders.map(([name, step]) => ({ name, workernames: ['xw'], steps: [step] })),
        files: { 'src.bin': SOURCE },
        extraConfig: STALLING,
      });
      relay = await startDelayRelay(master.pbPort, 10);
      worker = await startTestWorker({ connection: `tcp:127.0.0.1:${relay.port}`, workername: 'xw', password: 'xw-pass' });
      await worker.waitForLog(/Connected to buildmaster; worker is ready/);
      await master.waitForLog(/Worker xw attached to updir/);
      for (const builder of ['up', 'up-stall']) {
        await mkdir(buildDir(builder), { recursive: true });
        await writeFile(join(buildDir(builder), 'big.bin'), SOURCE);
      }
      for (const [name, content] of Object.entries(tree)) {
        await mkdir(join(buildDir('updir'), 'tree', name, '..'), { recursive: true });
        await writeFile(join(buildDir('updir'), 'tree', name), content);
      }
    });
    after(async () => {
      await worker?.stop();
      await relay?.close();
      await master?.stop();
    });

    const stdio = (build: Awaited<ReturnType<RunningMaster['runBuild']>>) => build.steps.flatMap((s) => s.logs).find((l) => l.name === 'stdio');

    it('FileDownload, FileUpload and DirectoryUpload move the data whole', async () => {
      for (const builder of ['down', 'up', 'updir']) {
        const build = await master.runBuild(builder);
        assert.equal(build.resultName, 'SUCCESS', `${builder}: ${build.stateString}`);
      }
      const got = join(buildDir('down'), 'got.bin');
      assert.equal(sha(await readFile(got)), sha(SOURCE));
      assert.equal((await stat(got)).mode & 0o777, 0o640);
      assert.equal(sha(await readFile(join(master.basedir, 'up.bin'))), sha(SOURCE));
      for (const [name, content] of Object.entries(tree)) assert.equal(sha(await readFile(join(master.basedir, 'tree-out', name))), sha(content), name);
    });

    it('maxsize: the first maxsize bytes, the message and FAILURE, as buildbot-worker', async () => {
      const build = await master.runBuild('down-max');
      assert.equal(build.resultName, 'FAILURE');
      const path = join(buildDir('down-max'), 'max.bin');
      assert.ok((await readFile(path)).equals(SOURCE.subarray(0, 1_000_000)));
      assert.equal(stdio(build)?.stderr, `Maximum filesize reached, truncating file '${path}'\n`);
    });

    it('a missing source fails the step: on the master for a download, on the worker for an upload', async () => {
      const down = await master.runBuild('down-missing');
      assert.equal(down.resultName, 'FAILURE');
      const up = await master.runBuild('up-missing');
      assert.equal(up.resultName, 'FAILURE');
      assert.equal(stdio(up)?.stderr, `Cannot open file '${join(buildDir('up-missing'), 'nope.bin')}' for upload\n`);
    });

    /** The most bytes the stalling reader or writer held at once during the build's stall. */
    async function heldDuring(since: number): Promise<{ calls: number; bytes: number; released: boolean }> {
      const log = (await master.log()).slice(since);
      let calls = 0;
      let bytes = 0;
      for (const m of log.matchAll(/xfer-stall: holding (\d+) calls, (\d+) bytes/g)) {
        calls = Math.max(calls, Number(m[1]));
        bytes = Math.max(bytes, Number(m[2]));
      }
      return { calls, bytes, released: /xfer-stall: released/.test(log) };
    }

    const stalls: [builder: string, what: string, received: () => string][] = [
      ['down-stall', 'a download asks for', () => join(buildDir('down-stall'), 'stalled.bin')],
      ['up-stall', 'an upload sends', () => join(master.basedir, 'up-stalled.bin')],
    ];
    for (const [builder, what, received] of stalls) {
      it(`a stalled master: ${what} no more than the cap while the master holds its answers, then completes whole`, async () => {
        const since = (await master.log()).length;
        const build = await master.runBuild(builder);
        assert.equal(build.resultName, 'SUCCESS', build.stateString);
        const held = await heldDuring(since);
        assert.ok(held.released && held.calls > 0, 'the master held calls');
        assert.ok(held.bytes <= WINDOW_CAP, `${held.bytes} bytes in flight during the stall (cap ${WINDOW_CAP})`);
        assert.equal(sha(await readFile(received())), sha(SOURCE));
      });
    }

    it('an interrupt mid-download (during a stall): the step is cancelled, the file a prefix of the source, the worker still usable', async () => {
      const since = await master.logSize();
      const forced = await master.forceBuild('down-stop');
      await master.waitForLog(/xfer-stall: holding 1 calls/, 30_000, since);
      const builds = (await master.api(`buildrequests/${forced.buildRequestId}/builds`)).builds;
      await master.rpc(`builds/${builds[0]!.buildid}`, 'stop', { reason: 'test stops it' });
      const build = await master.waitForBuild(forced);
      assert.equal(build.resultName, 'CANCELLED', build.stateString);
      const got = await readFile(join(buildDir('down-stop'), 'stopped.bin'));
      assert.ok(got.length > 0 && got.length < SOURCE.length, `${got.length} bytes`);
      assert.ok(got.equals(SOURCE.subarray(0, got.length)), 'a prefix of the source');
      // The worker stayed usable: the next download succeeds.
      await waitFor(async () => (await master.api('workers/xw')).workers[0].connected_to.length > 0, 'the worker still attached', 10_000);
      assert.equal((await master.runBuild('down')).resultName, 'SUCCESS');
    });
  });
}

suite('3.7');
suite('4');
