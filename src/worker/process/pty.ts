import { EventEmitter } from 'node:events';
import { closeSync, constants as fsConstants, existsSync, openSync, readSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ReadStream } from 'node:tty';
import { CommandError } from '../../errors.js';
import type { ProcessChild } from './child.js';
import { trackGroup, type SpawnOptions } from './group.js';

/**
 * The native half of @lydell/node-pty (node-pty with its binaries in per-platform npm packages,
 * so nothing is compiled or downloaded at install). bbgate calls its `fork` (forkpty(3): a new
 * session whose controlling terminal is the PTY on fds 0, 1 and 2, then execvp) and reads the
 * terminal itself rather than through node-pty's JavaScript wrapper, which sets TERM when the
 * environment has none (Twisted leaves the environment alone) and, 200 ms after the child exits,
 * closes the terminal with whatever output is still unread: output held back while the master is
 * behind would be lost.
 */
interface PtyBinding {
  fork(
    file: string,
    args: readonly string[],
    env: readonly string[],
    cwd: string,
    cols: number,
    rows: number,
    uid: number,
    gid: number,
    utf8: boolean,
    helperPath: string,
    onExit: (code: number, signal: number) => void,
  ): { fd: number; pid: number; pty: string };
}

export const PTY_PACKAGE = '@lydell/node-pty';

const loaded = new Map<string, PtyBinding | CommandError>();

/**
 * Loads the binding on first use only: a worker that never runs a PTY step does not need the
 * package (or its platform's binary). Throws PTY_UNAVAILABLE saying what is missing.
 */
export function loadPtyBinding(pkg = PTY_PACKAGE): PtyBinding {
  let result = loaded.get(pkg);
  if (!result) {
    try {
      const require = createRequire(import.meta.url);
      const { requireBinary } = require(`${pkg}/requireBinary.js`) as { requireBinary(file: string): PtyBinding };
      const binding = requireBinary('pty.node');
      if (typeof binding.fork !== 'function') throw new Error(`its pty.node has no fork()`);
      result = binding;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'MODULE_NOT_FOUND' && !(err as Error).message.includes('binary')
        ? `the "${pkg}" package is not installed (npm install ${pkg})`
        : `the "${pkg}" package cannot be used here: ${(err as Error).message.split('\n')[0]}`;
      result = new CommandError('PTY_UNAVAILABLE', `cannot run the command with a PTY: ${why}`, { cause: err });
    }
    loaded.set(pkg, result);
  }
  if (result instanceof CommandError) throw result;
  return result;
}

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

/**
 * A process on a PTY, shaped as the supervisor expects of a child. The terminal is read through
 * libuv, which takes a hang-up (POLLHUP, once no process holds the terminal) with a short read
 * for the end of file although the kernel still holds output (up to some 64 KiB, given to the
 * reader 4 KiB at a time): the tail of a command's output would be lost. So the worker holds the
 * terminal's other side open itself (no hang-up can reach the reader), and when the process
 * exits (the kernel has then hung the terminal up for everyone else: nothing more can be
 * written), reads what is left until the kernel has nothing more, then lets the terminal go.
 * `stdout` carries all of it in order, and follows the supervisor's pause as a pipe does.
 */
class PtyChild extends EventEmitter implements ProcessChild {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdin = null;
  readonly stderr = null;
  readonly stdout = new PassThrough();
  private readonly terminal: ReadStream;
  private exited = false;
  private outputClosed = false;

  constructor(
    readonly pid: number,
    private readonly fd: number,
    private slave: number | undefined,
  ) {
    super();
    this.terminal = new ReadStream(fd);
    this.terminal.on('error', (err: NodeJS.ErrnoException) => {
      // EIO is Linux's end of file on a terminal nobody holds (only when the other side could not be held).
      if (err.code !== 'EIO') this.emit('error', err);
    });
    this.terminal.pipe(this.stdout, { end: false });
    this.stdout.once('close', () => {
      // Read to its end, or abandoned by the supervisor (destroyed).
      this.outputClosed = true;
      this.release();
      this.maybeClose();
    });
  }

  onExit(code: number, signalNumber: number): void {
    this.signalCode = signalName(signalNumber);
    this.exitCode = this.signalCode === null ? code : null;
    this.exited = true;
    this.emit('exit', this.exitCode, this.signalCode);
    if (!this.stdout.destroyed && !this.terminal.destroyed) this.drain();
    this.release();
    this.stdout.end();
    this.maybeClose();
  }

  /** Moves what the reader holds, then what the kernel holds, into stdout, whatever the pause. */
  private drain(): void {
    this.terminal.unpipe(this.stdout);
    for (let chunk; (chunk = this.terminal.read() as Buffer | null) !== null; ) this.stdout.write(chunk);
    const buffer = Buffer.alloc(65536);
    for (;;) {
      let got: number;
      try {
        got = readSync(this.fd, buffer);
      } catch {
        break; // EAGAIN: nothing left
      }
      if (got === 0) break;
      this.stdout.write(Buffer.from(buffer.subarray(0, got)));
    }
  }

  private release(): void {
    if (this.slave !== undefined) closeSync(this.slave);
    this.slave = undefined;
    this.terminal.destroy();
  }

  private maybeClose(): void {
    if (this.exited && this.outputClosed) this.emit('close', this.exitCode, this.signalCode);
  }
}

/** The terminal's other side, held by the worker (see PtyChild); undefined if it cannot be opened. */
function holdSlave(path: string): number | undefined {
  try {
    return openSync(path, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    return undefined;
  }
}

/**
 * Starts argv on a new PTY as its controlling terminal, the leader of a new session (and so of
 * its own process group), as Twisted's spawnProcess(usePTY=True) does. argv[0] is looked up in
 * `env.PATH`, the child's. Rejects with an errno error (ENOENT, EACCES) if the program cannot be
 * executed, as spawnGroup does, and with PTY_UNAVAILABLE if no PTY can be made here.
 */
export async function spawnPty(argv: readonly string[], options: SpawnOptions): Promise<ProcessChild> {
  const binding = loadPtyBinding();
  await checkProgram(argv[0]!, options.cwd, options.env.PATH);
  const { cols, rows } = windowSize(options.env);
  const env = Object.entries(options.env).map(([key, value]) => `${key}=${value}`);
  let forked: { fd: number; pid: number; pty: string };
  // The exit arrives through the event loop, so never before `child` is set.
  let child!: PtyChild;
  try {
    // uid and gid -1: the worker's own; utf8 sets IUTF8, as output is decoded as UTF-8; the helper path is macOS's only.
    forked = binding.fork(argv[0]!, argv.slice(1), env, options.cwd, cols, rows, -1, -1, true, '', (code, signal) => child.onExit(code, signal));
  } catch (err) {
    throw forkFailure(err);
  }
  child = new PtyChild(forked.pid, forked.fd, holdSlave(forked.pty));
  trackGroup(child);
  return child;
}
