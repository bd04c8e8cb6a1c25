import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { getSystemErrorMap } from 'node:util';
import { CommandError } from '../../errors.js';
import { reprText } from '../python/repr.js';
import type { ResolvedCommand } from './command-line.js';
import type { ProcessChild } from './child.js';
import { signalGroup, spawnGroup, type SpawnOptions } from './group.js';
import { INTERRUPT_REASON, hasLimit, maxTimeReason, silenceTimeoutReason, type Seconds } from './headers.js';
import { LineLimit } from './line-limit.js';
import type { LogfileWatcher } from './logfile-watcher.js';
import { OutputStream } from './output-stream.js';
import { spawnPty } from './pty.js';
import type { ProcessContext, ProcessSpec } from './spec.js';
import type { Readable } from 'node:stream';

/** How long a killed process may take to end before the command is abandoned (3.7's BACKUP_TIMEOUT). */
const KILL_GRACE_MS = 5000;

// setTimeout fires at once for delays beyond 2^31-1 ms; a longer limit waits "only" 24.8 days.
const MAX_DELAY_MS = 2 ** 31 - 1;

function delayMs(seconds: Seconds): number {
  return Math.min(Number(seconds) * 1000, MAX_DELAY_MS);
}

/** The worker could not fork (resources), as opposed to the program not being executable. */
const START_FAILURES = new Set(['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE']);

function describeSpawnError(err: NodeJS.ErrnoException): string {
  const known = typeof err.errno === 'number' ? getSystemErrorMap().get(err.errno) : undefined;
  return known ? `${known[1]} (${known[0]})` : err.message;
}

export interface SupervisorSetup {
  readonly command: ResolvedCommand;
  readonly interruptSignal: NodeJS.Signals;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: Buffer;
  /** On a pseudo-terminal (./pty.ts) rather than pipes; initialStdin has already ruled it out. */
  readonly usePTY: boolean;
}

/** Why a limit killed the process, as buildbot-worker 4.x reports it (the master's ` (timed out)` / ` (max lines)`). */
type FailureReason = 'timeout_without_output' | 'timeout' | 'max_lines_failure';

/**
 * One process from spawn to rc: its output, the silence and maxTime limits,
 * the kill (on interrupt or a limit), the logfiles' last poll, and the closing
 * `process killed by signal` / `rc` / `elapsedTime` updates.
 */
export class ProcessSupervisor {
  private child: ProcessChild | undefined;
  private watchers: readonly LogfileWatcher[] = [];
  private startedAt = 0;
  private done = false;
  private killed = false;
  /** Streams paused while the master is behind: time paused is not silence. */
  private pausedReads = 0;
  private silenceTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private sigtermTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly stdout: OutputStream;
  private readonly stderr: OutputStream;
  private readonly lineLimit: LineLimit | undefined;
  private settle: { resolve: (rc: number) => void; reject: (err: unknown) => void } | undefined;
  private readonly onAbort = () => this.kill(INTERRUPT_REASON);

  constructor(
    private readonly ctx: ProcessContext,
    private readonly spec: ProcessSpec,
    private readonly setup: SupervisorSetup,
  ) {
    const { updates } = ctx;
    this.lineLimit = spec.maxLines === null || spec.maxLines === undefined ? undefined : new LineLimit(spec.maxLines);
    this.stdout = new OutputStream(spec.sendStdout === false ? null : (text) => this.send(text, (t) => updates.stdout(t)), ctx.codec);
    this.stderr = new OutputStream(spec.sendStderr === false ? null : (text) => this.send(text, (t) => updates.stderr(t)), ctx.codec);
  }

  /** A watched logfile's new text; it counts as output for the silence timeout. */
  logfileText(name: string, text: string): void {
    this.silenceTimer?.refresh();
    this.ctx.updates.log(name, text);
  }

  async run(watchers: readonly LogfileWatcher[]): Promise<number> {
    this.watchers = watchers;
    this.startedAt = performance.now();
    if (this.ctx.interrupted?.aborted) {
      // Aborted while the workdir and logfiles were being prepared: better not to start at all.
      this.ctx.updates.header(`\n${INTERRUPT_REASON} before the process started\n`);
      return this.finish(-1, null);
    }
    const { command, env, stdin, usePTY } = this.setup;
    this.ctx.logger.info({ argv: command.fakeRepr, workdir: this.spec.workdir, usePTY }, 'starting a process');
    let child: ProcessChild;
    try {
      const options: SpawnOptions = { cwd: this.spec.workdir, env };
      child = usePTY ? await spawnPty(command.argv, options) : await spawnGroup(command.argv, options);
    } catch (err) {
      return this.notStarted(err as NodeJS.ErrnoException);
    }
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.attach(child, stdin);
    });
  }

  private notStarted(err: NodeJS.ErrnoException): Promise<number> {
    if (err instanceof CommandError) {
      // No PTY can be made here (PTY_UNAVAILABLE): the step's log says why before the master's EXCEPTION.
      this.done = true;
      this.ctx.updates.header(`${err.message}\n`);
      throw err;
    }
    if (START_FAILURES.has(err.code ?? '')) {
      this.done = true;
      this.ctx.updates.stderr(`error starting the process (${describeSpawnError(err)})\n`);
      throw new CommandError('PROCESS_START', `cannot start ${this.setup.command.fakeRepr}: ${describeSpawnError(err)}`, { cause: err });
    }
    // buildbot-worker's forked child prints a traceback and exits 1: the master sees rc 1, not an exception.
    const program = reprText(this.setup.command.program);
    this.ctx.updates.stderr(`cannot execute ${program} in dir ${this.spec.workdir}: ${describeSpawnError(err)}\n`);
    return this.finish(1, null);
  }

  private attach(child: ProcessChild, stdin: Buffer): void {
    this.child = child;
    child.on('error', (err) => this.ctx.logger.warn({ err, pid: child.pid }, 'process error'));
    // Under a PTY, stderr is the terminal too: everything arrives as stdout, as with Twisted's usePTY.
    const { stdout, stderr } = child;
    stdout.on('data', (chunk: Buffer) => this.output(this.stdout, chunk, stdout));
    stderr?.on('data', (chunk: Buffer) => this.output(this.stderr, chunk, stderr));
    // A child that exits without reading its stdin makes the write fail with EPIPE, which is no error of ours.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
    child.once('close', (code, signal) => void this.finish(code ?? -1, signal).then(this.settle!.resolve, this.settle!.reject));
    const { timeout, maxTime } = this.spec;
    const { fakeRepr } = this.setup.command;
    if (hasLimit(timeout)) {
      this.silenceTimer = setTimeout(() => {
        // Paused by our own backpressure: the resume starts the silence afresh.
        if (this.pausedReads === 0) this.kill(silenceTimeoutReason(timeout, fakeRepr), 'timeout_without_output');
      }, delayMs(timeout));
    }
    if (hasLimit(maxTime)) this.maxTimer = setTimeout(() => this.kill(maxTimeReason(maxTime, fakeRepr), 'timeout'), delayMs(maxTime));
    for (const watcher of this.watchers) watcher.start();
    this.ctx.interrupted?.addEventListener('abort', this.onAbort, { once: true });
    if (this.ctx.interrupted?.aborted) this.kill(INTERRUPT_REASON);
  }

  private output(stream: OutputStream, chunk: Buffer, pipe: Readable): void {
    this.silenceTimer?.refresh();
    stream.push(chunk);
    // While the master is behind, stop reading: the child then blocks on a full pipe. That time is
    // not the command's silence (buildbot-worker, which never pauses, resets its timer on each read).
    const backlog = this.ctx.updates.backlog();
    if (backlog) {
      pipe.pause();
      this.pausedReads++;
      void backlog.then(() => {
        this.pausedReads--;
        // Reactivates the timer if it went off meanwhile (cancelled timers are undefined by now).
        this.silenceTimer?.refresh();
        pipe.resume();
      });
    }
  }

  /**
   * Sent output counts against max_lines. As in 4.2.1, the piece that goes over the limit is
   * still sent, after the kill header. On pipes stdout is closed (stderr is read on), so nothing
   * more of it is. A terminal is one stream that Twisted's PTYProcess cannot close (its
   * closeStdout does nothing): the process keeps it, gets only the kill's signals, and what it
   * writes meanwhile (a TERM trap's last words) is read and sent, as 4.2.1 sends it.
   */
  private send(text: string, emit: (text: string) => void): void {
    if (this.lineLimit?.add(text) && !this.done && this.child) {
      const closeStdout = !this.setup.usePTY;
      if (closeStdout) this.stdout.close();
      this.kill(this.lineLimit.reason(this.setup.command.fakeRepr), 'max_lines_failure');
      // Only after the signal: a process still writing would otherwise end on EPIPE first, with its own rc.
      if (closeStdout) this.child.stdout.destroy();
    }
    emit(text);
  }

  private kill(reason: string, failure?: FailureReason): void {
    if (this.done || !this.child) return;
    this.cancelTimers();
    if (failure) this.ctx.updates.send('failure_reason', failure);
    this.ctx.updates.header(`\n${reason}, attempting to kill\n`);
    this.ctx.logger.warn({ pid: this.child.pid, reason }, 'killing the process group');
    this.killed = true;
    const { sigtermTime } = this.spec;
    if (sigtermTime === null || sigtermTime === undefined) {
      this.signal(this.setup.interruptSignal);
      this.abandonPipes();
      return;
    }
    this.signal('SIGTERM');
    this.sigtermTimer = setTimeout(() => {
      // The whole group again, not just the direct child as in 3.7: grandchildren that trapped TERM die too.
      this.signal(this.setup.interruptSignal);
      this.abandonPipes();
    }, delayMs(sigtermTime));
  }

  private signal(signal: NodeJS.Signals): void {
    if (!signalGroup(this.child!, signal)) this.ctx.logger.info({ pid: this.child!.pid, signal }, 'nothing left to signal');
  }

  /**
   * Stops reading, so that processes outside the group (daemons) holding the
   * pipes cannot keep the command alive, and abandons the command if the
   * process does not end in time.
   */
  private abandonPipes(): void {
    const child = this.child!;
    child.stdin?.destroy();
    child.stdout.destroy();
    child.stderr?.destroy();
    this.graceTimer = setTimeout(() => this.killFailed(), KILL_GRACE_MS);
  }

  private killFailed(): void {
    if (this.done) return;
    this.done = true;
    this.stopListening();
    for (const watcher of this.watchers) watcher.abandon();
    const text = `${this.setup.interruptSignal} failed to kill process`;
    this.ctx.updates.header(`${text}\n`);
    if (this.spec.sendRC !== false) {
      this.ctx.updates.header('using fake rc=-1\n');
      this.ctx.updates.send('rc', -1);
    }
    this.ctx.logger.warn({ pid: this.child!.pid }, text);
    this.settle!.reject(new CommandError('PROCESS_KILL_FAILED', text));
  }

  private async finish(code: number, signal: NodeJS.Signals | null): Promise<number> {
    if (this.done) return -1;
    this.done = true;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    this.stopListening();
    await Promise.all(this.watchers.map((watcher) => watcher.stop()));
    this.stdout.end();
    this.stderr.end();
    const rc = signal !== null || (this.killed && code === 0) ? -1 : code;
    this.ctx.logger.info({ pid: this.child?.pid, rc, signal, elapsed }, 'process finished');
    if (this.spec.sendRC !== false) {
      if (signal !== null) this.ctx.updates.header(`process killed by signal ${osConstants.signals[signal]}\n`);
      this.ctx.updates.send('rc', rc);
    }
    this.ctx.updates.header(`elapsedTime=${elapsed.toFixed(6)}\n`);
    return rc;
  }

  private stopListening(): void {
    this.cancelTimers();
    this.ctx.interrupted?.removeEventListener('abort', this.onAbort);
  }

  private cancelTimers(): void {
    for (const timer of [this.silenceTimer, this.maxTimer, this.sigtermTimer, this.graceTimer]) clearTimeout(timer);
    this.silenceTimer = this.maxTimer = this.sigtermTimer = this.graceTimer = undefined;
  }
}
