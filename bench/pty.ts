// What a PTY step costs, for bbgate and for the real buildbot-worker 3.7 RunProcess, in one run:
// the time from start to rc of a command that does nothing (`true`), and the throughput of a
// command that prints a lot (`seq`), on a PTY and on pipes.
//
//   node dist/bench/pty.js [--starts N] [--lines L] [--gap MS]
//
// bbgate runs its RunProcess (src/worker/process) in this process, the updates counted and
// dropped; buildbot-worker runs its own in one Python process (Twisted's reactor), timed there.
// Each start figure is the median of N runs (the first, warming up, not counted), each after an
// idle gap (default 500 ms, as between the steps of a build); the output figure is the best of 3.
// Each bbgate PTY step runs in a PTY host process (a Node process, src/worker/process/pty-host.ts)
// started ahead, when the step before took its own; with --gap 0 the next host is not ready yet
// and the figure shows a Node start.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { runProcess } from '../src/worker/process/index.js';
import { PYTHON } from '../test/helpers/python.js';

const { values: options } = parseArgs({
  options: {
    starts: { type: 'string', default: '30' },
    lines: { type: 'string', default: '1000000' },
    gap: { type: 'string', default: '500' },
  },
});
const STARTS = Number(options.starts);
const LINES = Number(options.lines);
const GAP_MS = Number(options.gap);
const ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };
const OUTPUT = ['seq', '-f', 'line %07g', '1', String(LINES)];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** One command through bbgate's RunProcess: seconds from start to rc, and characters of output. */
async function bbgateRun(command: string[], usePTY: boolean, workdir: string): Promise<{ seconds: number; chars: number }> {
  let chars = 0;
  const count = (text: string) => void (chars += text.length);
  const started = performance.now();
  const rc = await runProcess(
    {
      updates: { stdout: count, stderr: count, header: () => undefined, log: () => undefined, send: () => undefined, backlog: () => undefined },
      environ: ENV,
      logger: { info: () => undefined, warn: () => undefined },
    },
    { command, workdir, usePTY, logEnviron: false },
  );
  if (rc !== 0) throw new Error(`${command.join(' ')} ended with rc ${rc}`);
  return { seconds: (performance.now() - started) / 1000, chars };
}

async function bbgate(usePTY: boolean, workdir: string): Promise<{ start: number; mbps: number }> {
  const starts: number[] = [];
  for (let i = 0; i <= STARTS; i++) {
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    const { seconds } = await bbgateRun(['true'], usePTY, workdir);
    if (i > 0) starts.push(seconds);
  }
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const { seconds, chars } = await bbgateRun(OUTPUT, usePTY, workdir);
    best = Math.max(best, chars / 1e6 / seconds);
  }
  return { start: median(starts), mbps: best };
}

const PYTHON_BENCH = `
import json, sys, time
from twisted.internet import reactor, defer
from twisted.internet.task import deferLater
from buildbot_worker import runprocess

starts, lines, workdir, use_pty, gap = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == 'pty', float(sys.argv[5])
env = {'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'}
chars = [0]
def send_update(items):
    for key, value in items:
        if key in ('stdout', 'stderr'):
            chars[0] += len(value)

@defer.inlineCallbacks
def run(command):
    chars[0] = 0
    t = time.perf_counter()
    rc = yield runprocess.RunProcess(command, workdir, 'utf-8', send_update, environ=env, usePTY=use_pty, logEnviron=False).start()
    if rc != 0:
        raise RuntimeError(f'rc {rc}')
    return time.perf_counter() - t

@defer.inlineCallbacks
def main():
    times = []
    for i in range(starts + 1):
        yield deferLater(reactor, gap, lambda: None)
        t = yield run(['true'])
        if i:
            times.append(t)
    best = 0
    for i in range(3):
        t = yield run(['seq', '-f', 'line %07g', '1', lines])
        best = max(best, chars[0] / 1e6 / t)
    times.sort()
    print(json.dumps({'start': times[len(times) // 2], 'mbps': best}))
    reactor.stop()

reactor.callWhenRunning(main)
reactor.run()
`;

function python(usePTY: boolean, workdir: string): Promise<{ start: number; mbps: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', PYTHON_BENCH, String(STARTS), String(LINES), workdir, usePTY ? 'pty' : 'pipes', String(GAP_MS / 1000)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as { start: number; mbps: number }) : reject(new Error(`python exited ${code}`))));
  });
}

const workdir = await mkdtemp(join(tmpdir(), 'bbgate-bench-pty-'));
try {
  console.log(`# node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`# start: median of ${STARTS} runs of \`true\`, ${GAP_MS} ms apart; output: \`${OUTPUT.join(' ')}\` (${((LINES * 13) / 1e6).toFixed(1)} MB, best of 3)`);
  console.log('                                   start ms   output MB/s');
  for (const [name, usePTY] of [['pipes', false], ['PTY', true]] as const) {
    const ours = await bbgate(usePTY, workdir);
    const theirs = await python(usePTY, workdir);
    console.log(`buildbot-worker 3.7, ${name.padEnd(5)}         ${(theirs.start * 1000).toFixed(1).padStart(8)}   ${theirs.mbps.toFixed(1).padStart(11)}`);
    console.log(`bbgate, ${name.padEnd(5)}                      ${(ours.start * 1000).toFixed(1).padStart(8)}   ${ours.mbps.toFixed(1).padStart(11)}`);
  }
} finally {
  await rm(workdir, { recursive: true, force: true });
}
