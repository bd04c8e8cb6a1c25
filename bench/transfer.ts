// FileUpload and FileDownload to and from a real Buildbot 3.7 master, for the real Python
// buildbot-worker 3.7 and for bbgate (its adaptive window), beside raw TCP through the same delay,
// in one run; a Markdown table is printed.
//
//   node dist/bench/transfer.js [--mb 16,100] [--rtt 0,20,100] [--dir both|up|down] [--runs 3]
//                               [--budget 60] [--down-block 16384] [--quick] [--verbose]
//
// rtt 0 is plain loopback (the workers connect straight to the master); any other rtt puts a relay
// on 127.0.0.1 in between that holds every chunk for rtt/2 in each direction, keeping order
// (test/helpers/latency-relay.ts, in this process). The steps use the master's default blocks:
// 256 KiB for FileUpload, 16 KiB for FileDownload (--down-block sets FileDownload's blocksize: the
// worker reads blocks of that size, as buildbot-worker does).
//
// Timing: the master records how long the step's run() took (perf_counter) and how much CPU its
// process used meanwhile (process_time), as build properties, so no REST polling interval gets
// into the figures. The time of the same step moving 0 bytes (command start, close, rc) is
// subtracted: "s" is the time of the data alone, MB/s is N MB over it. Every transfer is checked
// by sha256 (an upload on the master, a download by a sha256sum step after the timed one). The
// worker's CPU is that of its process (and children) over the whole build, from
// /proc/PID/task/*/schedstat. Loopback cases are the median of --runs runs; the others one run.
// A Python case whose round trips alone (blocks × rtt) would take longer than --budget seconds is
// not run: the table shows that estimate, marked "≈". Raw TCP: a client sends N bytes (after an
// 8-byte length) through a second relay with the same delay to a sink that answers one byte when
// it has them all; minus the same exchange with 0 bytes.
//
// --quick: 16 MB at 0 and 20 ms, one run, budget 30 s. The bbgate workers run in child processes
// (this script, forked), as the Python one does.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startTestWorker } from '../test/helpers/bbgate-worker.js';
import { Results, startMaster, startPythonWorker, type RunningMaster } from '../test/helpers/buildbot-master.js';
import { startDelayRelay, type DelayRelay } from '../test/helpers/latency-relay.js';

const { values: options } = parseArgs({
  options: {
    mb: { type: 'string', default: '16,100' },
    rtt: { type: 'string', default: '0,20,100' },
    dir: { type: 'string', default: 'both' },
    runs: { type: 'string', default: '3' },
    budget: { type: 'string', default: '60' },
    'down-block': { type: 'string', default: '16384' },
    quick: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    // Internal: run one bbgate worker (see childWorker).
    'child-worker': { type: 'boolean', default: false },
    connection: { type: 'string' },
    name: { type: 'string' },
  },
});
const PASSWORD = 'bench-pass';
const UPLOAD_BLOCK = 256 * 1024;
const DOWNLOAD_BLOCK = Number(options['down-block']);

// ---- A bbgate worker in a child process -------------------------------------------------

async function childWorker(): Promise<void> {
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

interface Worker {
  pid: number;
  stop(): Promise<void>;
}

async function startChildWorker(connection: string, name: string): Promise<Worker> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child-worker', '--connection', connection, '--name', name], {
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
  return { pid: child.pid!, stop };
}

/** CPU seconds of a process and its descendants (their threads' on-CPU time, from schedstat). */
async function treeCpu(pid: number): Promise<number> {
  let ns = 0;
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tasks) {
    const schedstat = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
    ns += Number(schedstat.split(' ')[0]);
    const children = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const child of children.split(' ').filter(Boolean)) ns += (await treeCpu(Number(child))) * 1e9;
  }
  return ns / 1e9;
}

// ---- The master ---------------------------------------------------------------------------

/** Timed upload and download builders per worker (the download checked by a sha256sum step). */
function transferBuilders(names: string[], downloadBlock: number): string {
  return `
import time as _bench_time

def _bench_timed(step):
    class Timed(step):
        @defer.inlineCallbacks
        def run(self):
            wall, cpu = _bench_time.perf_counter(), _bench_time.process_time()
            res = yield super().run()
            self.setProperty('xfer_seconds', _bench_time.perf_counter() - wall, 'bench')
            self.setProperty('xfer_cpu', _bench_time.process_time() - cpu, 'bench')
            return res
    return Timed

_BenchUpload = _bench_timed(steps.FileUpload)
_BenchDownload = _bench_timed(steps.FileDownload)

for _name in ${JSON.stringify(names)}:
    c['builders'].append(util.BuilderConfig(
        name='up-' + _name, workernames=[_name], workerbuilddir='bench',
        factory=util.BuildFactory([_BenchUpload(workersrc=util.Property('src'), masterdest=util.Property('dest'))])))
    c['builders'].append(util.BuilderConfig(
        name='down-' + _name, workernames=[_name], workerbuilddir='bench',
        factory=util.BuildFactory([
            _BenchDownload(mastersrc=util.Property('src'), workerdest='got.bin', blocksize=${downloadBlock}),
            steps.ShellCommand(name='check', command=['sh', '-c', 'sha256sum got.bin && rm -f got.bin'])])))
    for _b in ['up-' + _name, 'down-' + _name]:
        c['schedulers'].append(JsonForceScheduler(name='force-' + _b, builderNames=[_b]))
`;
}

type Direction = 'up' | 'down';

interface Sample {
  seconds: number;
  masterCpu: number;
  workerCpu: number;
}

/** One timed transfer build; checks its result and the data's sha256. */
async function transfer(master: RunningMaster, worker: { name: string; pid: number }, dir: Direction, file: { name: string; sha256: string }, out: string): Promise<Sample> {
  const dest = join(out, `${worker.name}.bin`);
  const cpuBefore = await treeCpu(worker.pid);
  const build = await master.runBuild(`${dir}-${worker.name}`, { properties: dir === 'up' ? { src: file.name, dest } : { src: file.name }, logs: dir === 'down' });
  const workerCpu = (await treeCpu(worker.pid)) - cpuBefore;
  if (build.results !== Results.SUCCESS) throw new Error(`${worker.name}: ${dir} of ${file.name} ended ${build.resultName}: ${build.stateString}`);
  const { xfer_seconds: seconds, xfer_cpu: masterCpu } = build.properties;
  if (typeof seconds !== 'number' || typeof masterCpu !== 'number') throw new Error(`${worker.name}: the build has no xfer_seconds/xfer_cpu properties`);
  let got: string | undefined;
  if (dir === 'up') {
    got = createHash('sha256').update(await readFile(dest)).digest('hex');
    await rm(dest, { force: true });
  } else {
    const stdio = build.steps.find((s) => s.name === 'check')?.logs.find((l) => l.name === 'stdio');
    got = /^([0-9a-f]{64}) {2}got\.bin$/m.exec(stdio?.stdout ?? '')?.[1];
  }
  if (got !== file.sha256) throw new Error(`${worker.name}: ${dir} of ${file.name} arrived as ${got}, not ${file.sha256}`);
  return { seconds, masterCpu, workerCpu };
}

// ---- Raw TCP through the same delay -------------------------------------------------------

async function startSink(): Promise<Server> {
  const server = createServer((socket) => {
    let expected = -1;
    let got = 0;
    let header = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (expected < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 8) return;
        expected = Number(header.readBigUInt64BE(0));
        got = header.length - 8;
      } else got += chunk.length;
      if (got >= expected) socket.end(Buffer.from([1]));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Seconds from the first byte sent until the sink's answer to `bytes` bytes arrived. */
function rawExchange(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', reject);
    socket.once('connect', () => {
      const started = performance.now();
      socket.once('data', () => {
        resolve((performance.now() - started) / 1000);
        socket.destroy();
      });
      const header = Buffer.alloc(8);
      header.writeBigUInt64BE(BigInt(bytes));
      socket.write(header);
      const chunk = Buffer.alloc(1 << 20);
      for (let sent = 0; sent < bytes; sent += chunk.length) socket.write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
    });
  });
}

// ---- The run ------------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const numbers = (s: string) => s.split(',').map(Number);

interface Cell {
  /** Seconds of the data alone (0-byte step time subtracted); NaN if not measured. */
  seconds: number;
  estimated?: boolean;
  masterCpu?: number;
  workerCpu?: number;
}

async function main(): Promise<void> {
  const quick = options.quick;
  const sizes = quick ? [16] : numbers(options.mb!);
  const rtts = quick ? [0, 20] : numbers(options.rtt!);
  const runs = quick ? 1 : Number(options.runs);
  const budget = quick ? 30 : Number(options.budget);
  const dirs: Direction[] = options.dir === 'up' ? ['up'] : options.dir === 'down' ? ['down'] : ['up', 'down'];
  if (sizes.some((n) => !(n > 0)) || rtts.some((r) => !(r >= 0)) || !Number.isInteger(runs) || runs < 1 || !(budget > 0) || !['both', 'up', 'down'].includes(options.dir!) || !Number.isInteger(DOWNLOAD_BLOCK) || DOWNLOAD_BLOCK < 1) {
    throw new Error('usage: transfer.js [--mb N,...] [--rtt MS,...] [--dir both|up|down] [--runs R] [--budget S] [--down-block BYTES] [--quick] [--verbose]');
  }
  const names = ['python', 'bbgate'];
  const started = performance.now();
  const load = loadavg()[0]!.toFixed(1);

  /** The master's download sources (by size), and the sha256 of each worker's upload sources (by worker, then size). */
  const downloads = new Map<number, string>();
  const uploads = new Map<string, Map<number, string>>(names.map((n) => [n, new Map()]));
  const empty = { name: 'empty.bin', sha256: createHash('sha256').digest('hex') };
  const masterFiles: Record<string, Uint8Array> = { 'empty.bin': new Uint8Array() };
  for (const mb of sizes) {
    const data = randomBytes(Math.round(mb * 1e6));
    masterFiles[`dl-${mb}.bin`] = data;
    downloads.set(mb, createHash('sha256').update(data).digest('hex'));
  }
  const setup = sizes.map((mb) => `head -c ${Math.round(mb * 1e6)} /dev/urandom > up-${mb}.bin`).join(' && ');

  const cells = new Map<string, Cell>();
  const key = (who: string, dir: Direction, mb: number, rtt: number) => `${who} ${dir} ${mb} ${rtt}`;
  let master: RunningMaster | undefined;
  let relay: DelayRelay | undefined;
  let rawRelay: DelayRelay | undefined;
  let sink: Server | undefined;
  const out = join(process.env.TMPDIR ?? '/tmp', `bbgate-bench-transfer-${process.pid}`);
  let workers: Array<Worker & { name: string }> = [];
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
        steps: [`steps.ShellCommand(command=['sh', '-c', '${setup} && : > empty.bin && sha256sum up-*.bin'])`],
      })),
      files: masterFiles,
      extraConfig: transferBuilders(names, DOWNLOAD_BLOCK),
    });
    relay = await startDelayRelay(master.pbPort);
    sink = await startSink();
    rawRelay = await startDelayRelay((sink.address() as AddressInfo).port);
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });

    for (const rtt of rtts) {
      const port = rtt === 0 ? master.pbPort : relay.port;
      relay.delayMs = rawRelay.delayMs = rtt / 2;
      const rawPort = rtt === 0 ? (sink.address() as AddressInfo).port : rawRelay.port;
      const since = await master.logSize();
      const starting = await Promise.allSettled([
        startPythonWorker({ masterPort: port, name: 'python', password: PASSWORD }).then((w) => void workers.push({ name: 'python', pid: w.pid, stop: () => w.stop() })),
        startChildWorker(`tcp:127.0.0.1:${port}`, 'bbgate').then((w) => void workers.push({ name: 'bbgate', ...w })),
      ]);
      for (const s of starting) if (s.status === 'rejected') throw s.reason;
      for (const name of names) await master.waitForLog(new RegExp(`Worker ${name} attached to up-${name}`), 30_000, since);

      for (const w of workers) {
        const build = await master.runBuild(`setup-${w.name}`);
        if (build.results !== Results.SUCCESS) throw new Error(`setup on ${w.name}: ${build.resultName}`);
        const stdio = build.steps.flatMap((s) => s.logs).find((l) => l.name === 'stdio')?.stdout ?? '';
        for (const mb of sizes) {
          const sha = new RegExp(`^([0-9a-f]{64}) {2}up-${mb}\\.bin$`, 'm').exec(stdio)?.[1];
          if (!sha) throw new Error(`setup on ${w.name} printed no sha256 for up-${mb}.bin:\n${stdio}`);
          uploads.get(w.name)!.set(mb, sha);
        }
      }
      const fileFor = (w: { name: string }, dir: Direction, mb: number) =>
        dir === 'up' ? { name: `up-${mb}.bin`, sha256: uploads.get(w.name)!.get(mb)! } : { name: `dl-${mb}.bin`, sha256: downloads.get(mb)! };

      const n = rtt === 0 ? runs : 1;
      // Loopback first gets one untimed transfer each, so that no one measures its first run.
      if (rtt === 0) for (const w of workers) for (const dir of dirs) await transfer(master, w, dir, fileFor(w, dir, sizes[0]!), out);
      for (const dir of dirs) {
        for (const mb of sizes) {
          const blocks = Math.ceil((mb * 1e6) / (dir === 'up' ? UPLOAD_BLOCK : DOWNLOAD_BLOCK));
          for (const w of workers) {
            if (w.name === 'python' && (blocks * rtt) / 1000 > budget) {
              cells.set(key(w.name, dir, mb, rtt), { seconds: (blocks * rtt) / 1000, estimated: true });
              continue;
            }
            const zero: number[] = [];
            const full: Sample[] = [];
            for (let i = 0; i < n; i++) {
              zero.push((await transfer(master, w, dir, empty, out)).seconds);
              full.push(await transfer(master, w, dir, fileFor(w, dir, mb), out));
            }
            if (options.verbose) console.error(`${w.name} ${dir} ${mb} MB rtt ${rtt}: ${full.map((s) => s.seconds.toFixed(3)).join(' ')} s; 0 bytes ${zero.map((s) => s.toFixed(3)).join(' ')} s`);
            cells.set(key(w.name, dir, mb, rtt), {
              seconds: median(full.map((s) => s.seconds)) - median(zero),
              masterCpu: median(full.map((s) => s.masterCpu)),
              workerCpu: median(full.map((s) => s.workerCpu)),
            });
          }
        }
      }
      for (const mb of sizes) {
        const zero: number[] = [];
        const full: number[] = [];
        for (let i = 0; i < n; i++) {
          zero.push(await rawExchange(rawPort, 0));
          full.push(await rawExchange(rawPort, Math.round(mb * 1e6)));
        }
        cells.set(key('raw', 'up', mb, rtt), { seconds: median(full) - median(zero) });
      }

      await stopWorkers();
      for (const name of names) await master.waitForWorker(name, { connected: false, timeoutMs: 15_000 });
    }
  } finally {
    await stopWorkers();
    await relay?.close();
    await rawRelay?.close();
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
    await master?.stop();
    await rm(out, { recursive: true, force: true });
  }

  // ---- The table ----
  const s = (c: Cell | undefined) => (!c || Number.isNaN(c.seconds) ? '–' : `${c.estimated ? '≈' : ''}${c.seconds.toFixed(c.seconds < 10 ? 2 : 0)}`);
  const rate = (mb: number, c: Cell) => mb / c.seconds;
  const ratio = (x: number, estimated?: boolean) => `${estimated ? '≥' : ''}${x.toFixed(x < 10 ? 2 : 0)}×`;
  const cpu = (c: Cell | undefined, which: 'masterCpu' | 'workerCpu') => (c?.[which] === undefined ? '–' : c[which]!.toFixed(2));
  console.log(
    `Transfers with a real Buildbot 3.7 master (FileUpload 256 KiB blocks, FileDownload ${DOWNLOAD_BLOCK / 1024} KiB): seconds of the data alone ` +
      `(step time on the master minus a 0-byte transfer's), loopback the median of ${runs} runs, the rest one run; ` +
      `${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load ${load} at the start`,
  );
  console.log('');
  console.log('| MB | RTT | dir | Python s | bbgate s | raw TCP s | bbgate MB/s | × Python | of raw TCP | master CPU s (Py / bbgate) | worker CPU s (Py / bbgate) |');
  console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const rtt of rtts) {
    for (const mb of sizes) {
      for (const dir of dirs) {
        const py = cells.get(key('python', dir, mb, rtt));
        const bb = cells.get(key('bbgate', dir, mb, rtt))!;
        const raw = cells.get(key('raw', 'up', mb, rtt))!;
        console.log(
          `| ${mb} | ${rtt === 0 ? 'loopback' : `${rtt} ms`} | ${dir === 'up' ? 'upload' : 'download'} | ${s(py)} | ${s(bb)} | ${s(raw)} | ` +
            `${rate(mb, bb).toFixed(0)} | ${py ? ratio(rate(mb, bb) / rate(mb, py), py.estimated) : '–'} | ${((rate(mb, bb) / rate(mb, raw)) * 100).toFixed(0)}% | ` +
            `${cpu(py, 'masterCpu')} / ${cpu(bb, 'masterCpu')} | ${cpu(py, 'workerCpu')} / ${cpu(bb, 'workerCpu')} |`,
        );
      }
    }
  }
  console.log('');
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s in all; load ${loadavg()[0]!.toFixed(1)} at the end)`);
}

if (options['child-worker']) await childWorker();
else await main();
