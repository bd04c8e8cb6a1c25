// The shell command run with a recording CommandContext, and the real buildbot-worker RunProcess
// (3.7, or 4.2.1 in the Buildbot 4 root) run with the same arguments, shared by shell.test.ts and pty.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { PbValue } from '../../src/pb/values/values.js';
import { shell } from '../../src/worker/commands/shell.js';
import type { CommandContext } from '../../src/worker/commands/types.js';
import type { PythonCodec } from '../../src/worker/python/codec.js';
import { buildbotRuntime } from '../helpers/buildbot-runtime.js';

export type Update = [key: string, value: unknown, logname?: string];

export interface ShellRun {
  updates: Update[];
  rc: number | undefined;
  error: unknown;
  text(key: 'stdout' | 'stderr' | 'header'): string;
  logs(name: string): string;
  headers(): string[];
}

export interface RunOptions {
  environ?: NodeJS.ProcessEnv;
  /** The tac's unicode_encoding. */
  codec?: PythonCodec;
  /** Sees each update as it arrives; may abort. */
  onUpdate?: (update: Update, abort: () => void) => void;
  /** Aborts after this many ms. */
  abortAfterMs?: number;
  /** The worker's usePTY default (CommandContext.usePTY). */
  usePTY?: boolean;
  /** The updates' backlog() (default: never behind). */
  backlog?: () => Promise<void> | undefined;
}

export const WORKER_ENV: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', HOME: '/home/worker', LANG: 'C.UTF-8' };

/** Runs the shell command in builderDir with a recording CommandContext. */
export async function runShellIn(base: string, args: Record<string, PbValue>, options: RunOptions = {}): Promise<ShellRun> {
  const updates: Update[] = [];
  const controller = new AbortController();
  const abort = () => controller.abort();
  const record = (update: Update) => {
    updates.push(update);
    options.onUpdate?.(update, abort);
  };
  const ctx: CommandContext = {
    args: new Map(Object.entries(args)),
    builderDir: base,
    basedir: base,
    updates: {
      stdout: (text) => record(['stdout', text]),
      stderr: (text) => record(['stderr', text]),
      header: (text) => record(['header', text]),
      log: (name, text) => record(['log', text, name]),
      send: (key, value) => record([key, value]),
      backlog: options.backlog ?? (() => undefined),
    },
    interrupted: controller.signal,
    logger: { info: () => undefined, warn: () => undefined },
    environ: options.environ ?? WORKER_ENV,
    ...(options.usePTY !== undefined ? { usePTY: options.usePTY } : {}),
    ...(options.codec ? { codec: options.codec } : {}),
  };
  const timer = options.abortAfterMs === undefined ? undefined : setTimeout(abort, options.abortAfterMs);
  let error: unknown;
  try {
    await shell.run(ctx);
  } catch (err) {
    error = err;
  } finally {
    clearTimeout(timer);
  }
  const rcs = updates.filter(([key]) => key === 'rc');
  assert.ok(rcs.length <= 1, 'at most one rc');
  assert.ok(!updates.some(([key]) => key === 'elapsed'), 'the runner, not the command, sends elapsed');
  return {
    updates,
    rc: rcs[0]?.[1] as number | undefined,
    error,
    text: (key) => updates.filter(([k]) => k === key).map(([, v]) => v as string).join(''),
    logs: (name) => updates.filter(([k, , n]) => k === 'log' && n === name).map(([, v]) => v as string).join(''),
    headers: () => updates.filter(([k]) => k === 'header').map(([, v]) => v as string),
  };
}

/** Live (non-zombie) processes in a process group, from /proc. */
export function liveGroupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** A SIGKILLed process takes a moment to become a zombie, so give the group up to a second to be gone. */
export async function groupAfterKill(pgid: number): Promise<number[]> {
  const deadline = Date.now() + 1000;
  while (liveGroupMembers(pgid).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return liveGroupMembers(pgid);
}

export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// The real buildbot-worker RunProcess (3.7, or 4.2.1 in the Buildbot 4 root), driven with the same
// arguments, prints the reference updates.
const PYTHON_HARNESS = `
import inspect, json, sys
from twisted.internet import reactor, defer
from buildbot_worker import runprocess

spec = json.loads(sys.argv[1])
updates = []
def send_update(items):
    for key, value in items:
        updates.append([key, list(value) if isinstance(value, tuple) else value])
kw = spec['kw']
for key in spec.get('floats', []):
    kw[key] = float(kw[key])
command = spec['command']
if isinstance(command, list):
    command = [tuple(c) if isinstance(c, list) else c for c in command]

@defer.inlineCallbacks
def main():
    try:
        # 4.x takes a command id first.
        first = [command] if 'command_id' in inspect.signature(runprocess.RunProcess).parameters else []
        yield runprocess.RunProcess(*first, command, spec['workdir'], 'utf-8', send_update, **kw).start()
    except Exception as e:
        updates.append(['EXCEPTION', repr(e)])
    print(json.dumps(updates))
    reactor.stop()

reactor.callWhenRunning(main)
reactor.run()
`;

/** `cwd` (a host path under the runtime's tmpDir) matters for 4.2.1 only, which runs in its root. */
export function runPythonWorker(spec: object, env: NodeJS.ProcessEnv, runtime = buildbotRuntime('3.7'), cwd = process.cwd()): Promise<Update[]> {
  return new Promise((resolve, reject) => {
    const how = runtime.invoke('python', ['-c', PYTHON_HARNESS, JSON.stringify(spec)], cwd);
    const child = spawn(how.file, how.args, { cwd: how.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Update[]) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

/**
 * Headers and rc in order (with failure_reason, which 3.7 does not send, if `reasons`), the elapsed
 * time blanked and `workdir` (where the run saw it) as WORKDIR; text output concatenated per stream.
 */
export function comparable(updates: Update[], options: { reasons?: boolean; workdir?: string } = {}): { headers: unknown[]; stdout: string; stderr: string; logs: string } {
  const pick = (key: string) => updates.filter(([k]) => k === key).map(([, v]) => (Array.isArray(v) ? v[1] : v)).join('');
  const header = (text: string) => {
    const blanked = text.replace(/^elapsedTime=.*/, 'elapsedTime=…');
    return options.workdir ? blanked.split(options.workdir).join('WORKDIR') : blanked;
  };
  return {
    headers: updates
      .filter(([k]) => k === 'header' || k === 'rc' || (options.reasons && k === 'failure_reason'))
      .map(([k, v]) => (k === 'header' ? header(v as string) : `${k}=${v}`)),
    stdout: pick('stdout'),
    stderr: pick('stderr'),
    logs: pick('log'),
  };
}
