import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { ProcessChild } from './child.js';

export interface SpawnOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Starts argv as the leader of a new process group (detached: setsid), with
 * stdin, stdout and stderr on pipes. argv[0] is looked up in `env.PATH`, the
 * child's, not the worker's. Resolves once the program runs; rejects with the
 * spawn error (ENOENT, EACCES, …) if it could not be executed.
 */
export function spawnGroup(argv: readonly string[], options: SpawnOptions): Promise<ChildProcessWithoutNullStreams> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env, detached: true, stdio: 'pipe' });
    const onError = (err: Error) => reject(err);
    child.once('error', onError);
    child.once('spawn', () => {
      child.off('error', onError);
      trackGroup(child);
      resolve(child);
    });
  });
}

/** Groups started and not yet exited: detached, they would outlive a worker that exits. */
const live = new Set<ProcessChild>();

/** Counts a started group leader (on pipes or on a PTY) among the live ones until it exits. */
export function trackGroup(child: ProcessChild): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Signals every process group still running (a stopping worker's last word). */
export function signalLiveGroups(signal: NodeJS.Signals): number {
  let signalled = 0;
  for (const child of live) if (signalGroup(child, signal)) signalled++;
  return signalled;
}

/**
 * Sends `signal` to the child's whole process group, so grandchildren die with
 * it; falls back to the child alone if the group cannot be signalled. False
 * when nothing could be signalled (everything has already exited).
 */
export function signalGroup(child: ProcessChild, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-child.pid!, signal);
    return true;
  } catch {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      process.kill(child.pid!, signal);
      return true;
    } catch {
      return false;
    }
  }
}
