import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CommandError } from '../../errors.js';
import type { ProcessChild } from './child.js';
import { signalGroup, trackGroup, type SpawnOptions } from './group.js';
import { loadPtyBinding } from './pty-binding.js';
import type { PtyHostMessage, PtyRequest } from './pty-protocol.js';

/**
 * The window the terminal reports (TIOCGWINSZ, `stty size`): COLUMNS and LINES from the
 * command's environment when they are positive numbers a winsize holds, so that programs asking
 * the terminal agree with those reading the variables; otherwise the traditional 80x24.
 * (Twisted sets no size at all: its PTYs report 0x0, which programs treat as "unknown".)
 */
export function windowSize(env: Readonly<Record<string, string>>): { cols: number; rows: number } {
  const dimension = (value: string | undefined, fallback: number) =>
    value !== undefined && /^[1-9][0-9]{0,4}$/.test(value) && Number(value) <= 0xffff ? Number(value) : fallback;
  return { cols: dimension(env.COLUMNS, 80), rows: dimension(env.LINES, 24) };
}

function errnoError(code: 'ENOENT' | 'EACCES', path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code, errno: -osConstants.errno[code], path });
}

async function isExecutableFile(path: string): Promise<'yes' | 'no' | 'denied'> {
  try {
    if (!(await stat(path)).isFile()) return 'denied';
    await access(path, fsConstants.X_OK);
    return 'yes';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? 'denied' : 'no';
  }
}

/**
 * execvp's search, done before forking: the forked child can only report a failed exec as text on
 * the terminal (node-pty's `execvp(3) failed.: …`), while on pipes the worker reports it as
 * `cannot execute …` (rc 1). The same wording for both needs the answer here. Relative names
 * resolve in the workdir, as in the child. Resolves with the program's path.
 */
async function findProgram(program: string, cwd: string, path: string | undefined): Promise<string> {
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : join(cwd, program);
    const found = await isExecutableFile(full);
    if (found !== 'yes') throw errnoError(found === 'denied' ? 'EACCES' : 'ENOENT', program);
    return full;
  }
  let denied = false;
  for (const dir of (path ?? '/usr/bin:/bin').split(':')) {
    const full = join(dir === '' ? cwd : isAbsolute(dir) ? dir : join(cwd, dir), program);
    const found = await isExecutableFile(full);
    if (found === 'yes') return full;
    denied ||= found === 'denied';
  }
  throw errnoError(denied ? 'EACCES' : 'ENOENT', program);
}

/** How deep the kernel follows interpreters that are scripts themselves (Linux's BINPRM_MAX_RECURSION). */
const MAX_INTERPRETERS = 4;

/** The interpreter a `#!` line names (Linux's binfmt_script: up to a blank or the line's end), or undefined. */
async function interpreterOf(file: string): Promise<string | undefined> {
  const head = Buffer.alloc(256);
  let got: number;
  try {
    const handle = await open(file, 'r');
    try {
      ({ bytesRead: got } = await handle.read(head, 0, head.length, 0));
    } finally {
      await handle.close();
    }
  } catch {
    return undefined; // unreadable: execve decides
  }
  const line = head.subarray(0, got).toString('latin1');
  if (!line.startsWith('#!')) return undefined;
  return /^#![ \t]*([^ \t\n\0]+)/.exec(line)?.[1];
}

/**
 * The program's `#!` interpreters, as execve follows them: a missing one fails the exec with
 * ENOENT, one that is no executable file with EACCES, both reported against the program, as the
 * pipe path (Node's spawn) reports them. A relative interpreter resolves in the workdir.
 */
async function checkInterpreters(program: string, file: string, cwd: string): Promise<void> {
  for (let depth = 0, current = file; depth < MAX_INTERPRETERS; depth++) {
    const interpreter = await interpreterOf(current);
    if (interpreter === undefined) return;
    current = isAbsolute(interpreter) ? interpreter : join(cwd, interpreter);
    const found = await isExecutableFile(current);
    if (found !== 'yes') throw errnoError(found === 'denied' ? 'EACCES' : 'ENOENT', program);
  }
}

async function checkProgram(program: string, cwd: string, path: string | undefined): Promise<void> {
  await checkInterpreters(program, await findProgram(program, cwd, path), cwd);
}

/** Why forkpty failed, in words an operator can act on. */
function forkFailure(err: unknown): CommandError {
  const detail = (err as Error).message;
  const why = !existsSync('/dev/ptmx') || !existsSync('/dev/pts/ptmx')
    ? 'this machine has no /dev/pts (a devpts mount) or /dev/ptmx; PTY steps need them (in a container, mount devpts or run without usePTY)'
    : `no pseudo-terminal could be made (${detail}); the PTYs may be exhausted (/proc/sys/kernel/pty/max)`;
  return new CommandError('PTY_UNAVAILABLE', `cannot run the command with a PTY: ${why}`, { cause: err });
}

function signalName(number: number): NodeJS.Signals | null {
  if (number === 0) return null;
  const entry = Object.entries(osConstants.signals).find(([, value]) => value === number);
  return (entry?.[0] as NodeJS.Signals | undefined) ?? null;
}

/** The host program (./pty-host.ts), beside this module in the build. */
const PTY_HOST = fileURLToPath(new URL('./pty-host.js', import.meta.url));

/** The worker could not start a process (resources): the supervisor reports these as PROCESS_START. */
const RESOURCE_ERRORS = new Set(['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE']);

/**
 * A process on a PTY, shaped as the supervisor expects of a child: its pid, the terminal's output
 * (stdout and stderr merged, as Twisted's usePTY merges them) as `stdout`, which follows the
 * supervisor's pause as a pipe does, and `close` once it has exited and all its output is read.
 * The terminal itself is in the PTY host (./pty-host.ts), never in the worker.
 */
class PtyChild extends EventEmitter implements ProcessChild {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdin = null;
  readonly stderr = null;
  readonly stdout;
  private exited = false;

  constructor(
    readonly pid: number,
    host: ChildProcessWithoutNullStreams,
    messages: AsyncIterator<PtyHostMessage>,
  ) {
    super();
    this.stdout = host.stdout;
    const outputRead = new Promise((resolve) => host.stdout.once('close', resolve));
    const exited = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    void this.follow(messages);
    host.once('close', (code, signal) => {
      if (this.exited) return;
      // The host is gone (killed, say by the OOM killer) and the command may still run, a session
      // of its own that nobody would signal again: it is killed with its group before it is
      // forgotten, so no step outlives its record.
      const killed = signalGroup(this, 'SIGKILL');
      this.emit('error', new Error(`the PTY host ended (${signal ?? `exit ${code}`}) without the process's exit status${killed ? '; the command\'s session was killed' : ''}`));
      this.onExit(null, null);
    });
    // Done once the exit is known and the output read to its end (or abandoned), without waiting
    // for the host to be gone: it has let the terminal go by then, and exits by itself.
    void Promise.all([outputRead, exited]).then(() => {
      host.stdin.destroy();
      this.emit('close', this.exitCode, this.signalCode);
    });
  }

  private async follow(messages: AsyncIterator<PtyHostMessage>): Promise<void> {
    for (let next; !(next = await messages.next()).done; ) {
      const message = next.value;
      if ('exit' in message) {
        const signal = signalName(message.exit[1]);
        this.onExit(signal === null ? message.exit[0] : null, signal);
      } else if ('error' in message) {
        this.emit('error', new Error(message.error));
      }
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exitCode = code;
    this.signalCode = signal;
    this.exited = true;
    this.emit('exit', code, signal);
  }
}

/**
 * The host's messages, one JSON object a line on its stderr. A line that is not one (Node's own
 * last words, should the host crash) becomes an `error` message.
 */
async function* hostMessages(host: ChildProcessWithoutNullStreams): AsyncGenerator<PtyHostMessage> {
  for await (const line of createInterface({ input: host.stderr, crlfDelay: Infinity })) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // not JSON: below
    }
    yield typeof parsed === 'object' && parsed !== null ? (parsed as PtyHostMessage) : { error: `the PTY host says: ${line}` };
  }
}

function startHost(): Promise<ChildProcessWithoutNullStreams> {
  return new Promise((resolve, reject) => {
    // Its own session (detached): a signal for the worker's process group does not cut a step's output short.
    const host = spawn(process.execPath, ['--no-warnings', PTY_HOST], { stdio: 'pipe', detached: true, env: {} });
    host.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        RESOURCE_ERRORS.has(err.code ?? '')
          ? err
          : new CommandError('PTY_UNAVAILABLE', `cannot run the command with a PTY: the PTY host (${process.execPath} ${PTY_HOST}) cannot start: ${err.message}`, { cause: err }),
      ),
    );
    host.once('spawn', () => resolve(host));
  });
}

/** Whether a host keeps the worker's event loop alive (a spare does not: the worker may exit meanwhile). */
function holdOpen(host: ChildProcessWithoutNullStreams, hold: boolean): void {
  for (const handle of [host, host.stdin, host.stdout, host.stderr] as { ref(): void; unref(): void }[]) {
    if (hold) handle.ref();
    else handle.unref();
  }
}

/** The next step's host, started when a step's host has ended, with nothing to do until then. */
let spare: { host: Promise<ChildProcessWithoutNullStreams>; gone: boolean } | undefined;

/** Starts a spare host unless there is one (not at once: its start would compete with what runs now). */
function prepareSpare(): void {
  if (spare) return;
  const next = { host: startHost(), gone: false };
  spare = next;
  next.host.then(
    (host) => {
      holdOpen(host, false);
      host.once('exit', () => (next.gone = true));
    },
    () => (next.gone = true),
  );
}

/**
 * A host for a step: the spare if there is a live one, else a new one. When the step's host ends,
 * a spare is started for the next step, so that a step does not wait for Node to start (some tens
 * of ms on an idle machine, hundreds on a busy one) unless it overlaps another PTY step. Each
 * host serves one step only, so that no command is forked by a process that holds another
 * step's terminal.
 */
async function takeHost(): Promise<ChildProcessWithoutNullStreams> {
  const taken = spare;
  spare = undefined;
  let host = taken && !taken.gone ? await taken.host.catch(() => undefined) : undefined;
  if (!host || host.exitCode !== null || host.signalCode !== null) host = await startHost();
  holdOpen(host, true);
  host.once('close', prepareSpare);
  return host;
}

/**
 * Starts argv on a new PTY as its controlling terminal, the leader of a new session (and so of
 * its own process group), as Twisted's spawnProcess(usePTY=True) does, through a PTY host.
 * argv[0] is looked up in `env.PATH`, the child's. Rejects with an errno error (ENOENT, EACCES)
 * if the program cannot be executed, as spawnGroup does, and with PTY_UNAVAILABLE if no PTY can
 * be made here.
 */
export async function spawnPty(argv: readonly string[], options: SpawnOptions): Promise<ProcessChild> {
  loadPtyBinding(); // here, so that a missing package is told without starting a host
  await checkProgram(argv[0]!, options.cwd, options.env.PATH);
  const { cols, rows } = windowSize(options.env);
  const request: PtyRequest = {
    file: argv[0]!,
    args: argv.slice(1),
    env: Object.entries(options.env).map(([key, value]) => `${key}=${value}`),
    cwd: options.cwd,
    cols,
    rows,
  };
  const host = await takeHost();
  host.stdin.on('error', () => undefined); // EPIPE once the host has gone
  host.stdin.write(`${JSON.stringify(request)}\n`);
  const messages = hostMessages(host);
  const first = await messages.next();
  const message: PtyHostMessage = first.done ? { error: 'the PTY host ended before it started the process' } : first.value;
  if (!('started' in message)) {
    host.kill('SIGKILL');
    if ('forkFailed' in message) throw forkFailure(new Error(message.forkFailed));
    throw new CommandError('PTY_UNAVAILABLE', 'unavailable' in message ? message.unavailable : `cannot run the command with a PTY: ${JSON.stringify(message)}`);
  }
  const child = new PtyChild(message.started, host, messages);
  trackGroup(child);
  return child;
}
