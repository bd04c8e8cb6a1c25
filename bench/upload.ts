// FileUpload throughput to a real Buildbot 3.7 master, for the real Python buildbot-worker and
// for bbgate (with 1 write in flight, as 3.7 does, and with the registry's default), in one run.
//
//   node dist/bench/upload.js [--mb N] [--rtt MS] [--runs R] [--verbose]
//
// First the workers reach the master through a relay on 127.0.0.1 that holds every chunk for
// rtt/2 in each direction (keeping order); then, for reference, they connect to it directly
// (plain loopback, rtt 0). In each phase a setup build's shell step writes N MB (10^6 bytes) of
// random data to big.bin, and an empty empty.bin, in each worker's build directory, and prints
// big.bin's sha256. Each measured build is a single steps.FileUpload (3.7's default 256 KiB
// blocks) of one of them.
//
// Timing: the master records how long the upload step's run() took (perf_counter in the master's
// Python, kept as a build property), so no REST API polling interval gets into the figures. The
// time of the 0-byte upload (the same step: command start, close and rc, no data) is subtracted
// from the time of the N MB one; each is the median of R runs, taken in turns. Every N MB upload
// is checked against the setup step's sha256. --verbose prints every run's times to stderr.
//
// The bbgate workers run in child processes (this script, forked), as the Python one does, so
// none shares a CPU with the relay or this script's event loop.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { COMMANDS } from '../src/worker/commands/index.js';
import { UPLOAD_WRITES_IN_FLIGHT, uploadFileCommand } from '../src/worker/commands/transfer.js';
import type { CommandSpec } from '../src/worker/commands/types.js';
import { startTestWorker } from '../test/helpers/bbgate-worker.js';
import { Results, startMaster, startPythonWorker, type RunningMaster } from '../test/helpers/buildbot-master.js';
import { startDelayRelay, type DelayRelay } from '../test/helpers/latency-relay.js';

const { values: options } = parseArgs({
  options: {
    mb: { type: 'string', default: '16' },
    rtt: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    verbose: { type: 'boolean', default: false },
    // Internal: run one bbgate worker (see childWorker).
    'child-worker': { type: 'boolean', default: false },
    connection: { type: 'string' },
    name: { type: 'string' },
    writes: { type: 'string' },
  },
});
const PASSWORD = 'bench-pass';

// ---- A bbgate worker in a child process -------------------------------------------------

/** Runs a bbgate worker until the parent says stop (or goes away); `--writes default` keeps the registry as it is. */
async function childWorker(): Promise<void> {
  if (options.writes !== 'default') {
    const spec = uploadFileCommand({ writesInFlight: Number(options.writes) });
    // This process is ours alone, so changing its registry touches nothing else.
    (COMMANDS as Map<string, CommandSpec>).set('uploadFile', spec);
    (COMMANDS as Map<string, CommandSpec>).set('upload_file', spec);
  }
  const worker = await startTestWorker({ connection: options.connection!, workername: options.name!, password: PASSWORD });
  await worker.waitForLog(/Connected to buildmaster; worker is ready/);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= worker.stop().then((status) => {
      process.exit(status);
    }));
  process.on('message', (m) => m === 'stop' && void stop());
  process.on('disconnect', () => void stop());
  process.send!('ready');
}

interface ChildWorker {
  stop(): Promise<void>;
}

async function startChildWorker(connection: string, name: string, writes: string): Promise<ChildWorker> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child-worker', '--connection', connection, '--name', name, '--writes', writes], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send('stop');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bbgate worker ${name} did not attach within 30 s`)), 30_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`bbgate worker ${name} exited (${code}) before attaching`)));
  }).catch(async (err) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  return { stop };
}

// ---- The master ---------------------------------------------------------------------------

/** A FileUpload that stores how long its run() took as the build property upload_seconds; one builder per worker. */
function uploadBuilders(names: string[]): string {
  return `
import time as _bench_time

class BenchTimedUpload(steps.FileUpload):
    @defer.inlineCallbacks
    def run(self):
        started = _bench_time.perf_counter()
        res = yield super().run()
        self.setProperty('upload_seconds', _bench_time.perf_counter() - started, 'bench')
        return res

for _name in ${JSON.stringify(names)}:
    c['builders'].append(util.BuilderConfig(
        name='upload-' + _name, workernames=[_name], workerbuilddir='bench',
        factory=util.BuildFactory([BenchTimedUpload(workersrc=util.Property('src'), masterdest=util.Property('dest'))])))
    c['schedulers'].append(JsonForceScheduler(name='force-upload-' + _name, builderNames=['upload-' + _name]))
`;
}

interface Contender {
  label: string;
  name: string;
  /** sha256 of its big.bin, from the setup build. */
  sha256: string;
}

/** One upload build; its master-side step time in ms. Checks the result, and the file against `sha256`. */
async function upload(master: RunningMaster, c: Contender, src: 'big.bin' | 'empty.bin', dest: string): Promise<number> {
  await rm(dest, { force: true });
  const build = await master.runBuild(`upload-${c.name}`, { properties: { src, dest }, logs: false });
  if (build.results !== Results.SUCCESS) throw new Error(`${c.label}: upload of ${src} ended ${build.resultName}: ${build.stateString}`);
  const seconds = build.properties.upload_seconds;
  if (typeof seconds !== 'number') throw new Error(`${c.label}: the build has no upload_seconds property`);
  if (src === 'big.bin') {
    const got = createHash('sha256').update(await readFile(dest)).digest('hex');
    if (got !== c.sha256) throw new Error(`${c.label}: the master received ${got}, not ${c.sha256}`);
  } else if ((await stat(dest)).size !== 0) {
    throw new Error(`${c.label}: the 0-byte upload arrived with ${(await stat(dest)).size} bytes`);
  }
  return seconds * 1000;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Figure {
  bigMs: number;
  emptyMs: number;
  /** Bytes per second of the data phase. */
  rate: number;
}

async function main(): Promise<void> {
  const mb = Number(options.mb);
  const rtt = Number(options.rtt);
  const runs = Number(options.runs);
  if (!(mb > 0) || !(rtt >= 0) || !Number.isInteger(runs) || runs < 1) throw new Error('usage: upload.js [--mb N>0] [--rtt MS>=0] [--runs R>=1] [--verbose]');
  const bytes = Math.round(mb * 1e6);
  const rtts = rtt === 0 ? [0] : [rtt, 0];

  const contenders: Contender[] = [
    { label: 'buildbot-worker 3.7 (Python)', name: 'python', sha256: '' },
    { label: 'bbgate, 1 write in flight', name: 'bbgate1', sha256: '' },
    { label: `bbgate, default (${UPLOAD_WRITES_IN_FLIGHT} in flight)`, name: 'bbgate', sha256: '' },
  ];
  const names = contenders.map((c) => c.name);
  const started = performance.now();
  const out = await mkdtemp(join(tmpdir(), 'bbgate-bench-upload-'));
  let master: RunningMaster | undefined;
  let relay: DelayRelay | undefined;
  const figures = new Map<string, Figure>();
  /** Whatever is connected now, so that the finally block can stop it after a failure. */
  let workers: Array<{ stop(): Promise<void> }> = [];
  const stopWorkers = async () => {
    const stopping = workers;
    workers = [];
    await Promise.all(stopping.map((w) => w.stop()));
  };
  try {
    master = await startMaster({
      workers: names.map((name) => ({ name, password: PASSWORD })),
      builders: names.map((name) => ({
        name: `setup-${name}`,
        workernames: [name],
        options: "workerbuilddir='bench'",
        steps: [`steps.ShellCommand(command=['sh', '-c', 'head -c ${bytes} /dev/urandom > big.bin && : > empty.bin && sha256sum big.bin'])`],
      })),
      extraConfig: uploadBuilders(names),
    });
    relay = await startDelayRelay(master.pbPort);

    for (const r of rtts) {
      // rtt 0 is plain loopback: the workers connect straight to the master, not through the relay.
      const port = r === 0 ? master.pbPort : relay.port;
      relay.delayMs = r / 2;
      const since = await master.logSize();
      // Settled one by one, so that whatever did start is stopped even if another failed.
      const starting = await Promise.allSettled([
        startPythonWorker({ masterPort: port, name: 'python', password: PASSWORD }).then((w) => void workers.push(w)),
        startChildWorker(`tcp:127.0.0.1:${port}`, 'bbgate1', '1').then((w) => void workers.push(w)),
        startChildWorker(`tcp:127.0.0.1:${port}`, 'bbgate', 'default').then((w) => void workers.push(w)),
      ]);
      for (const s of starting) if (s.status === 'rejected') throw s.reason;
      for (const name of names) await master.waitForLog(new RegExp(`Worker ${name} attached to upload-${name}`), 30_000, since);

      for (const c of contenders) {
        const build = await master.runBuild(`setup-${c.name}`);
        if (build.results !== Results.SUCCESS) throw new Error(`setup on ${c.name}: ${build.resultName}`);
        const stdio = build.steps.flatMap((s) => s.logs).find((l) => l.name === 'stdio');
        const sha = /^([0-9a-f]{64}) {2}big\.bin$/m.exec(stdio?.stdout ?? '')?.[1];
        if (!sha) throw new Error(`setup on ${c.name} printed no sha256:\n${stdio?.text}`);
        c.sha256 = sha;
      }

      // One untimed upload each, so neither side measures its first run (JIT, page cache, allocations).
      for (const c of contenders) await upload(master, c, 'big.bin', join(out, `${c.name}.bin`));
      const big = new Map<string, number[]>(names.map((n) => [n, []]));
      const empty = new Map<string, number[]>(names.map((n) => [n, []]));
      for (let run = 0; run < runs; run++) {
        // Rotate who goes first, so a drift in the machine's load does not favour one of them.
        const order = contenders.map((_, i) => contenders[(i + run) % contenders.length]!);
        for (const c of order) {
          const dest = join(out, `${c.name}.bin`);
          empty.get(c.name)!.push(await upload(master, c, 'empty.bin', dest));
          big.get(c.name)!.push(await upload(master, c, 'big.bin', dest));
        }
      }
      if (options.verbose) {
        for (const c of contenders) {
          const ms = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
          console.error(`rtt ${r} ms, ${c.label}: ${bytes} bytes ${ms(big.get(c.name)!)} ms; 0 bytes ${ms(empty.get(c.name)!)} ms`);
        }
      }
      for (const c of contenders) {
        const bigMs = median(big.get(c.name)!);
        const emptyMs = median(empty.get(c.name)!);
        figures.set(`${c.name}@${r}`, { bigMs, emptyMs, rate: bigMs > emptyMs ? bytes / ((bigMs - emptyMs) / 1000) : NaN });
      }

      await stopWorkers();
      for (const name of names) await master.waitForWorker(name, { connected: false, timeoutMs: 15_000 });
    }
  } finally {
    await stopWorkers();
    await relay?.close();
    await master?.stop();
    await rm(out, { recursive: true, force: true });
  }

  // ---- The table ----
  const label = 30;
  const col = (s: string, w: number) => s.padStart(w);
  const head = (r: number) => (r === 0 ? 'loopback, no relay' : `relay, rtt ${r} ms`);
  console.log(
    `FileUpload of ${mb} MB (256 KiB blocks) to a real Buildbot 3.7 master: step time on the master, median of ${runs}; ` +
      `MB/s after the 0-byte upload's time; sha256 checked on every upload`,
  );
  console.log(`${''.padEnd(label)}${rtts.map((r) => col(head(r), 37)).join('')}`);
  console.log(`${''.padEnd(label)}${rtts.map(() => `${col('step ms', 10)}${col('0-byte ms', 10)}${col('MB/s', 8)}${col('ratio', 9)}`).join('')}`);
  for (const c of contenders) {
    const cells = rtts.map((r) => {
      const f = figures.get(`${c.name}@${r}`)!;
      const py = figures.get(`python@${r}`)!;
      return `${col(f.bigMs.toFixed(0), 10)}${col(f.emptyMs.toFixed(0), 10)}${col((f.rate / 1e6).toFixed(1), 8)}${col(`${(f.rate / py.rate).toFixed(2)}×`, 9)}`;
    });
    console.log(`${c.label.padEnd(label)}${cells.join('')}`);
  }
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
}

if (options['child-worker']) await childWorker();
else await main();
