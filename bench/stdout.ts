// What a shell step that prints a lot costs the worker: a real Buildbot 3.7 master, one build per
// worker whose single ShellCommand cats N MB (10^6 bytes) of build-log lines, run by the real
// Python buildbot-worker 3.7 and by bbgate (the real CLI, `bbgate start --nodaemon`), in one run.
//
//   node dist/bench/stdout.js [--mb N] [--runs R] [--cpu-prof DIR]
//
// Figures, per worker, from /proc: CPU (user+sys) of the worker process itself during the build
// (the step's `cat` is its child and is not counted), its peak RSS during the build (the high-water
// mark is reset before each build through /proc/PID/clear_refs), the master's CPU during the build,
// and the step's time measured inside the master (perf_counter around the step's run()). Each
// build's stdio log must hold every line (its line count is checked against the file's). With R > 1
// the runs alternate between the workers and the median is shown. --cpu-prof runs the bbgate worker
// under `node --cpu-prof` and leaves its profile in DIR (the profiler's cost is in the figures then).
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { bbgate, CLI, bbgateEnv } from '../test/helpers/cli.js';
import { Results, startMaster, startPythonWorker, type RunningMaster } from '../test/helpers/buildbot-master.js';
import { startProcess, type LineProcess } from '../test/helpers/processes.js';
import { rng } from '../test/helpers/random-values.js';
import { logLine } from './step-log.js';

const { values: options } = parseArgs({
  options: {
    mb: { type: 'string', default: '100' },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
  },
});
const PASSWORD = 'bench-pass';
const TICKS_PER_SECOND = 100;

// ---- /proc ----------------------------------------------------------------------------

/** User+system CPU seconds of the process itself (not of its children). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resets the process's peak RSS; false where the kernel does not let us. */
async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident memory (VmHWM) in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

// ---- The step's output ------------------------------------------------------------------

/** Writes `bytes` bytes of whole lines to `file`; returns the number of lines. */
async function writeLog(file: string, bytes: number): Promise<number> {
  const out = createWriteStream(file);
  const r = rng(20261203);
  let written = 0;
  let lines = 0;
  let batch = '';
  while (written < bytes) {
    let line = `${logLine(r)}\n`;
    const size = Buffer.byteLength(line);
    if (written + size > bytes) line = `${'x'.repeat(Math.max(0, bytes - written - 1))}\n`;
    written += Buffer.byteLength(line);
    lines++;
    batch += line;
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await once(out, 'drain');
      batch = '';
    }
  }
  out.end(batch);
  await once(out, 'finish');
  return lines;
}

// ---- The master and the workers ------------------------------------------------------------

/** A ShellCommand that stores how long its run() took as the build property step_seconds; one builder per worker. */
function stdoutBuilders(names: string[], file: string): string {
  return `
import time as _bench_time

class BenchTimedShell(steps.ShellCommand):
    @defer.inlineCallbacks
    def run(self):
        started = _bench_time.perf_counter()
        res = yield super().run()
        self.setProperty('step_seconds', _bench_time.perf_counter() - started, 'bench')
        return res

for _name in ${JSON.stringify(names)}:
    c['builders'].append(util.BuilderConfig(
        name='stdout-' + _name, workernames=[_name], workerbuilddir='bench',
        factory=util.BuildFactory([BenchTimedShell(command=['cat', ${JSON.stringify(file)}])])))
    c['schedulers'].append(JsonForceScheduler(name='force-stdout-' + _name, builderNames=['stdout-' + _name]))
`;
}

interface Contender {
  label: string;
  name: string;
  pid: number;
  stop(): Promise<unknown>;
}

/** `bbgate create-worker`, then `bbgate start --nodaemon` in a process of its own. */
async function startBbgate(port: number, name: string, dir: string): Promise<Contender> {
  const created = await bbgate(['create-worker', '-q', dir, `127.0.0.1:${port}`, name, PASSWORD]);
  if (created.status !== 0) throw new Error(`bbgate create-worker: ${created.stderr}`);
  const profile = options['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${options['cpu-prof']}`] : [];
  const worker: LineProcess = startProcess(process.execPath, [...profile, CLI, 'start', '--nodaemon', dir], { env: bbgateEnv() });
  await worker.waitForLine(/Connected to buildmaster; worker is ready/, 30_000);
  return {
    label: 'bbgate',
    name,
    pid: worker.child.pid!,
    async stop() {
      worker.child.kill('SIGTERM');
      const timer = setTimeout(() => worker.kill(), 10_000);
      await worker.exited;
      clearTimeout(timer);
    },
  };
}

interface Figure {
  cpu: number;
  rss: number;
  masterCpu: number;
  step: number;
}

async function measure(master: RunningMaster, c: Contender, lines: number): Promise<Figure> {
  const rssReset = await resetPeakRss(c.pid);
  const cpu0 = await cpuSeconds(c.pid);
  const master0 = await cpuSeconds(master.pid);
  const build = await master.runBuild(`stdout-${c.name}`, { logs: false, timeoutMs: 600_000 });
  const cpu = (await cpuSeconds(c.pid)) - cpu0;
  const masterCpu = (await cpuSeconds(master.pid)) - master0;
  const rss = await peakRss(c.pid);
  if (!rssReset) console.error(`(${c.label}: cannot reset the peak RSS; it is the process's lifetime peak)`);
  if (build.results !== Results.SUCCESS) throw new Error(`${c.label}: the build ended ${build.resultName}: ${build.stateString}`);
  const step = build.steps[build.steps.length - 1]!;
  const stdio = ((await master.api(`steps/${step.stepId}/logs`)).logs as { name: string; num_lines: number }[]).find((l) => l.name === 'stdio');
  // The stdio log also holds the few header lines the worker sends before and after the output.
  if (!stdio || stdio.num_lines < lines || stdio.num_lines > lines + 50) {
    throw new Error(`${c.label}: the stdio log has ${stdio?.num_lines} lines, the output ${lines}`);
  }
  const seconds = build.properties.step_seconds;
  if (typeof seconds !== 'number') throw new Error(`${c.label}: the build has no step_seconds property`);
  return { cpu, rss, masterCpu, step: seconds };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const mb = Number(options.mb);
  const runs = Number(options.runs);
  if (!(mb > 0) || !Number.isInteger(runs) || runs < 1) throw new Error('usage: stdout.js [--mb N>0] [--runs R>=1]');
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'bbgate-bench-stdout-'));
  const file = join(dir, 'build.log');
  const lines = await writeLog(file, Math.round(mb * 1e6));
  const names = ['python', 'bbgate'];
  let master: RunningMaster | undefined;
  const contenders: Contender[] = [];
  const figures = new Map<string, Figure[]>(names.map((n) => [n, []]));
  try {
    master = await startMaster({ workers: names.map((name) => ({ name, password: PASSWORD })), extraConfig: stdoutBuilders(names, file) });
    const python = await startPythonWorker({ masterPort: master.pbPort, name: 'python', password: PASSWORD });
    contenders.push({ label: 'buildbot-worker 3.7 (Python)', name: 'python', pid: python.pid, stop: () => python.stop() });
    contenders.push(await startBbgate(master.pbPort, 'bbgate', join(dir, 'bbgate')));
    for (const name of names) await master.waitForLog(new RegExp(`Worker ${name} attached to stdout-${name}`), 30_000);
    for (let run = 0; run < runs; run++) {
      const order = contenders.map((_, i) => contenders[(i + run) % contenders.length]!);
      for (const c of order) figures.get(c.name)!.push(await measure(master, c, lines));
    }
  } finally {
    await Promise.all(contenders.map((c) => c.stop()));
    await master?.stop();
    await rm(dir, { recursive: true, force: true });
  }

  const pick = (name: string, key: keyof Figure) => median(figures.get(name)!.map((f) => f[key]));
  const label = 30;
  const col = (s: string, w = 12) => s.padStart(w);
  console.log(`A ShellCommand printing ${mb} MB (${lines} lines) to a real Buildbot 3.7 master; ${runs === 1 ? 'one run' : `median of ${runs} runs`}`);
  console.log(`${''.padEnd(label)}${col('worker CPU s')}${col('ratio', 8)}${col('peak RSS MB')}${col('step s', 9)}${col('master CPU s', 14)}`);
  for (const c of contenders) {
    const cpu = pick(c.name, 'cpu');
    console.log(
      `${c.label.padEnd(label)}${col(cpu.toFixed(2))}${col(`${(cpu / pick('python', 'cpu')).toFixed(2)}×`, 8)}` +
        `${col((pick(c.name, 'rss') / 1e6).toFixed(1))}${col(pick(c.name, 'step').toFixed(2), 9)}${col(pick(c.name, 'masterCpu').toFixed(2), 14)}`,
    );
  }
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
}

await main();
