// Child processes for tests: started with their stdout read line by line, and always killed.
import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptionsWithoutStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export interface LineProcess {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  /** Resolves with the first stdout line (already seen or future) that matches. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  stderr(): string;
  kill(): void;
}

const live = new Set<ChildProcessWithoutNullStreams>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function startProcess(command: string, args: string[], options: SpawnOptionsWithoutStdio = {}): LineProcess {
  const child = spawn(command, args, { ...options, stdio: 'pipe' });
  live.add(child);
  const lines: string[] = [];
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of [...watchers]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    live.delete(child);
    for (const w of [...watchers]) w();
    resolve(code);
  }));
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    kill: () => child.kill('SIGKILL'),
    waitForLine(re, timeoutMs = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => re.test(l));
          if (hit !== undefined) {
            cleanup();
            resolve(hit);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`${command} exited before printing ${re}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} from ${command}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Alive and not a zombie (nothing reaps orphans in this container, so the dead linger as zombies). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** The pid a build step wrote to `path` (`echo $$ > pid`), once it has. */
export async function waitForPidFile(path: string, timeoutMs = 10000): Promise<number> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    const pid = Number(await readFile(path, 'utf8').catch(() => ''));
    if (pid > 0) return pid;
  }
  throw new Error(`no pid in ${path} within ${timeoutMs} ms`);
}

/** Resolves once `pid` has died, or after `timeoutMs`; true if it died. */
export async function waitForExit(pid: number, timeoutMs = 5000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; processRunning(pid) && Date.now() < deadline; ) await sleep(100);
  return !processRunning(pid);
}
