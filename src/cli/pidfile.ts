// twistd.pid: the decimal pid of a daemonised worker, no newline, in the
// directory it was started from, as twistd writes it; `stop` reads it there.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BbgateError } from '../errors.js';

export const PID_FILE = 'twistd.pid';

/** The pid in BASEDIR/twistd.pid, or undefined when there is no such file. */
export function readPidFile(basedir: string): number | undefined {
  const path = join(basedir, PID_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BbgateError('WORKER_PIDFILE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const pid = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new BbgateError('WORKER_PIDFILE', `${path} does not hold a process id; remove it if no worker is running in ${basedir}`);
  }
  return pid;
}

/** `kill -0`: a process we may not signal (EPERM) exists all the same. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function alreadyRunning(basedir: string, pid: number): BbgateError {
  return new BbgateError('WORKER_RUNNING', `a worker is already running in ${basedir} (PID ${pid}, from ${PID_FILE}); stop it first with: bbgate stop ${basedir}`);
}

/**
 * Removes BASEDIR/twistd.pid if the process it names is gone, as twistd does
 * at start-up; returns the stale pid, or undefined if there was no file.
 * Throws WORKER_RUNNING if that process is alive.
 */
export function clearStalePidFile(basedir: string): number | undefined {
  const pid = readPidFile(basedir);
  if (pid === undefined) return undefined;
  if (isAlive(pid)) throw alreadyRunning(basedir, pid);
  removePidFile(basedir, pid);
  return pid;
}

/** Writes our pid, failing with WORKER_RUNNING if another start got there first. */
export function claimPidFile(basedir: string, pid: number): void {
  try {
    writeFileSync(join(basedir, PID_FILE), String(pid), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new BbgateError('WORKER_PIDFILE', `cannot write ${join(basedir, PID_FILE)}: ${(err as Error).message}`, { cause: err });
    }
    throw alreadyRunning(basedir, readPidFile(basedir) ?? 0);
  }
}

/** Removes BASEDIR/twistd.pid if it still names `pid` (a later start may have replaced it). */
export function removePidFile(basedir: string, pid: number): void {
  try {
    if (readPidFile(basedir) === pid) unlinkSync(join(basedir, PID_FILE));
  } catch {
    // Gone already, or replaced by something that is not ours to remove.
  }
}
