// Real builds over msgpack_experimental_v7: the real Buildbot 3.7 master runs the same steps on the
// bbgate worker and on buildbot-worker 3.7, both attached to its msgpack (WebSocket) port, and the
// tests compare what the master recorded for each.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, startPythonWorker, type BuildResult, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { FILESYSTEM_STEPS } from '../helpers/build-steps.js';
import { waitFor } from '../helpers/wait.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * The 3.7.0 master's two msgpack bugs, mended for the tests that need those steps to work (the
 * Python worker fails them the same way, see the first suite): its update_read_file handler
 * calls the FileReader and drops what it read, so every download arrives empty; its
 * update_upload_file_utime handler passes the literal strings 'access_time' and
 * 'modified_time', so every keepstamp upload fails in FileWriter.remote_utime. The mended
 * handlers answer with the data, and pass the times the worker sent.
 */
const MEND_MASTER = `
from buildbot.worker.protocols.manager import msgpack as _bbgate_mp
from twisted.internet import defer as _bbgate_defer

def _bbgate_answer(call):
    @_bbgate_defer.inlineCallbacks
    def handler(self, msg):
        try:
            result, failed = (yield call(self, msg)), False
        except Exception as e:
            result, failed = str(e), True
        self.send_response_msg(msg, result, failed)
    return handler

_bbgate_mp.BuildbotWebSocketServerProtocol.call_update_read_file = _bbgate_answer(
    lambda self, msg: self.command_id_to_reader_map[msg['command_id']].remote_read(msg['length']))
_bbgate_mp.BuildbotWebSocketServerProtocol.call_update_upload_file_utime = _bbgate_answer(
    lambda self, msg: self.command_id_to_writer_map[msg['command_id']].remote_utime((msg['access_time'], msg['modified_time'])))
`;

const TO_WORKER = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));

type Steps = (worker: 'bb' | 'py' | 'pb', exchange: string) => string[];

/**
 * A master with a msgpack port, and builders `<name>-bb` (bbgate over msgpack), `<name>-py`
 * (buildbot-worker 3.7 over msgpack) and `<name>-pb` (bbgate over PB, the same command layer).
 */
async function startPair(builders: Record<string, Steps>, exchange: string, extraConfig = '') {
  const master = await startMaster({
    msgpack: true,
    workers: ['bb', 'py', 'pb'].map((name) => ({ name, password: `pw-${name}` })),
    builders: Object.entries(builders).flatMap(([name, steps]) =>
      (['bb', 'py', 'pb'] as const).map((w) => ({ name: `${name}-${w}`, workernames: [w], steps: steps(w, exchange) })),
    ),
    extraConfig,
  });
  const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.msgpackPort}`, workername: 'bb', password: 'pw-bb', protocol: 'msgpack_experimental_v7' });
  const python = await startPythonWorker({ masterPort: master.msgpackPort!, name: 'py', password: 'pw-py', createArgs: ['--protocol=msgpack_experimental_v7'] });
  const overPb = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'pb', password: 'pw-pb' });
  for (const name of ['bb', 'py', 'pb']) await master.waitForWorker(name);
  return { master, worker, python, overPb };
}

interface Pair {
  master: RunningMaster;
  worker: TestWorker;
  /** bbgate over PB, on the same master. */
  overPb: TestWorker;
  python: RunningPythonWorker;
  /** Where uploads land on the master, and what it downloads (to-worker.bin). */
  exchange: string;
}

/** Registers the suite's before/after: a startPair() with an exchange directory holding TO_WORKER; the fields are set in before(). */
function usePair(builders: Record<string, Steps>, extraConfig = ''): Pair {
  const pair = {} as Pair;
  before(async () => {
    pair.exchange = await mkdtemp(join(tmpdir(), 'bbgate-msgpack-'));
    await writeFile(join(pair.exchange, 'to-worker.bin'), TO_WORKER);
    Object.assign(pair, await startPair(builders, pair.exchange, extraConfig));
  });
  after(async () => {
    await pair.worker?.stop();
    await pair.overPb?.stop();
    await pair.python?.stop();
    await pair.master?.stop();
    if (pair.exchange) await rm(pair.exchange, { recursive: true, force: true });
  });
  return pair;
}

/** The stdio log of the named step, or of the first step. */
const stdio = (build: BuildResult, step?: string) => build.steps.filter((s) => step === undefined || s.name === step).flatMap((s) => s.logs.filter((l) => l.name === 'stdio'))[0]!;
const outcome = (build: BuildResult) => build.steps.map((s) => [s.name, s.resultName]);

describe('builds over msgpack_experimental_v7 on the unpatched 3.7 master, beside buildbot-worker 3.7', () => {
  const fx = usePair(
    {
      hello: () => [`steps.ShellCommand(command=['sh', '-c', 'echo hello; echo oops >&2; printf partial'], name='hello')`],
      failing: () => [`steps.ShellCommand(command='echo before; exit 3', name='fails')`],
      interrupted: () => [`steps.ShellCommand(name='forever', command=['sh', '-c', 'echo started; sleep 300'])`],
      uploads: (w, x) => [
        `steps.ShellCommand(name='make', command=['sh', '-c', 'head -c 1000000 /dev/urandom > big.bin && mkdir -p tree/sub && echo a > tree/a.txt && echo b > tree/sub/b.txt'])`,
        `steps.FileUpload(workersrc='big.bin', masterdest='${x}/${w}/big.bin')`,
        `steps.DirectoryUpload(workersrc='tree', masterdest='${x}/${w}/tree')`,
      ],
      filesystem: () => FILESYSTEM_STEPS,
      missing: () => [`steps.FileExists(file='build/nothing-here')`],
      download: (_w, x) => [`steps.FileDownload(mastersrc='${x}/to-worker.bin', workerdest='got.bin')`, `steps.ShellCommand(name='size', command=['sh', '-c', 'wc -c < got.bin'])`],
      keepstamp: (w, x) => [`steps.ShellCommand(name='make', command=['sh', '-c', 'echo kept > kept.txt && touch -d @1000000000 kept.txt'])`, `steps.FileUpload(workersrc='kept.txt', masterdest='${x}/${w}/kept.txt', keepstamp=True)`],
    },
  );

  const both = async (name: string): Promise<[BuildResult, BuildResult]> => [await fx.master.runBuild(`${name}-bb`), await fx.master.runBuild(`${name}-py`)];

  it('runs a shell step with output: SUCCESS, stdout and stderr as buildbot-worker sends them', async () => {
    const [bb, py] = await both('hello');
    assert.equal(bb.results, Results.SUCCESS, bb.stateString);
    assert.equal(py.results, Results.SUCCESS, py.stateString);
    assert.equal(stdio(bb).stdout, 'hello\npartial\n');
    assert.equal(stdio(bb).stdout, stdio(py).stdout);
    assert.equal(stdio(bb).stderr, stdio(py).stderr);
    assert.match(stdio(bb).header, /program finished with exit code 0/);
  });

  it('reports a failing command as FAILURE, as buildbot-worker does', async () => {
    const [bb, py] = await both('failing');
    assert.equal(bb.results, Results.FAILURE);
    assert.equal(py.results, Results.FAILURE);
    assert.equal(stdio(bb).stdout, stdio(py).stdout);
    assert.equal(bb.stateString, py.stateString);
  });

  it('uploads a file and a directory byte for byte', async () => {
    const [bb, py] = await both('uploads');
    assert.deepEqual(outcome(bb), outcome(py));
    assert.equal(bb.results, Results.SUCCESS, JSON.stringify(outcome(bb)));
    const made = join(fx.worker.basedir, 'uploads-bb', 'build');
    assert.equal(sha256(await readFile(join(fx.exchange, 'bb', 'big.bin'))), sha256(await readFile(join(made, 'big.bin'))));
    assert.equal(await readFile(join(fx.exchange, 'bb', 'tree', 'sub', 'b.txt'), 'utf8'), 'b\n');
  });

  it('runs the file-system commands (mkdir, cpdir, stat, rmdir), and a stat of a missing file fails alike', async () => {
    const [bb, py] = await both('filesystem');
    assert.equal(bb.results, Results.SUCCESS, JSON.stringify(outcome(bb)));
    assert.deepEqual(outcome(bb), outcome(py));
    const [bbMissing, pyMissing] = await both('missing');
    assert.equal(bbMissing.results, Results.FAILURE);
    assert.deepEqual(outcome(bbMissing), outcome(pyMissing));
    assert.equal(bbMissing.stateString, pyMissing.stateString);
  });

  it("shares the master's bugs: a download arrives empty, a keepstamp upload fails, for both workers", async () => {
    const [bb, py] = await both('download');
    assert.deepEqual(outcome(bb), outcome(py));
    assert.equal(stdio(bb, 'size').stdout.trim(), '0');
    assert.equal(stdio(py, 'size').stdout.trim(), '0');
    const [bbKept, pyKept] = await both('keepstamp');
    assert.deepEqual(outcome(bbKept), outcome(pyKept));
    assert.equal(bbKept.results, pyKept.results);
    assert.notEqual(bbKept.results, Results.SUCCESS);
  });

  it('gives the results bbgate gives over PB: the same steps, results, state strings and output', async () => {
    for (const name of ['hello', 'failing', 'uploads', 'filesystem', 'missing']) {
      const overMsgpack = await fx.master.runBuild(`${name}-bb`);
      const overPb = await fx.master.runBuild(`${name}-pb`);
      const summary = (b: BuildResult) => b.steps.filter((s) => s.name !== 'worker_preparation').map((s) => [s.name, s.resultName, s.stateString]);
      assert.deepEqual(summary(overMsgpack), summary(overPb), name);
      // Headers name each worker's own directories; what the commands wrote must be the same.
      const output = (b: BuildResult) => b.steps.flatMap((s) => s.logs.map((l) => [s.name, l.name, l.stdout, l.stderr]));
      assert.deepEqual(output(overMsgpack), output(overPb), name);
    }
  });

  it('stops a running step when the master interrupts it', async () => {
    const forced = await fx.master.forceBuild('interrupted-bb');
    await fx.worker.waitForLog(/starting a process .*interrupted-bb\/build"/);
    let builds: { buildid: number }[] = [];
    await waitFor(async () => (builds = (await fx.master.api(`builds?buildrequestid=${forced.buildRequestId}`)).builds).length > 0, 'the build in the REST API');
    await fx.master.rpc(`builds/${builds[0]!.buildid}`, 'stop', { reason: 'test stops it' });
    const build = await fx.master.waitForBuild(forced);
    assert.equal(build.results, Results.CANCELLED);
    await fx.worker.waitForLog(/interrupting command/);
  });
});

describe('downloads and keepstamp uploads over msgpack on a 3.7 master whose two msgpack bugs are mended', () => {
  const fx = usePair(
    {
      download: (_w, x) => [`steps.FileDownload(mastersrc='${x}/to-worker.bin', workerdest='got.bin', mode=0o640)`],
      keepstamp: (w, x) => [`steps.ShellCommand(name='make', command=['sh', '-c', 'echo kept > kept.txt && touch -d @1000000000 kept.txt'])`, `steps.FileUpload(workersrc='kept.txt', masterdest='${x}/${w}/kept.txt', keepstamp=True)`],
    },
  MEND_MASTER,
  );

  it('downloads a file byte for byte, with its mode', async () => {
    const bb = await fx.master.runBuild('download-bb');
    const py = await fx.master.runBuild('download-py');
    assert.equal(bb.results, Results.SUCCESS, JSON.stringify(outcome(bb)));
    assert.equal(py.results, Results.SUCCESS, JSON.stringify(outcome(py)));
    const got = join(fx.worker.basedir, 'download-bb', 'build', 'got.bin');
    assert.equal(sha256(await readFile(got)), sha256(TO_WORKER));
    assert.equal(sha256(await readFile(join(fx.python.basedir, 'download-py', 'build', 'got.bin'))), sha256(TO_WORKER));
    assert.equal((await stat(got)).mode & 0o777, 0o640);
  });

  it('keeps the modification time of a keepstamp upload', async () => {
    const bb = await fx.master.runBuild('keepstamp-bb');
    const py = await fx.master.runBuild('keepstamp-py');
    assert.equal(bb.results, Results.SUCCESS, JSON.stringify(outcome(bb)));
    assert.equal(py.results, Results.SUCCESS, JSON.stringify(outcome(py)));
    assert.equal(Math.round((await stat(join(fx.exchange, 'bb', 'kept.txt'))).mtimeMs / 1000), 1_000_000_000);
    assert.equal(Math.round((await stat(join(fx.exchange, 'py', 'kept.txt'))).mtimeMs / 1000), 1_000_000_000);
  });
});
