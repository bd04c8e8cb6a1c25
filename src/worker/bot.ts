import { mkdir, readdir, rm } from 'node:fs/promises';
import { PbFailure, Referenceable, RemoteReference, type RemoteCall, toText, type PbValue } from '../pb/index.js';
import type { CommandLogger, CommandSpec } from './commands/types.js';
import type { PythonCodec } from './python/codec.js';
import { withDeadline } from '../deadline.js';
import { pythonJoin } from './python/os-path.js';
import { checkRequired, CommandRunner, pbChannel, type CommandChannel } from './runner.js';
import type { UpdateOptions } from './updates.js';
import { workerInfo, workerVersion } from './info.js';

/**
 * What every command version is reported as: buildbot-worker 4.2.1's. 3.2 tells a master that
 * the shell command reports `failure_reason` on a timeout, 3.3 that it honours `max_lines`; a 3.7
 * master reads neither (it records failure_reason among its updates and sends no max_lines).
 */
export const COMMAND_VERSION = '3.3';

/** buildbot-worker's exception for an unknown command, under the names the master matches on. */
const UNKNOWN_COMMAND = {
  type: 'buildbot_worker.base.UnknownCommand',
  parents: ['buildbot_worker.base.UnknownCommand', 'twisted.spread.pb.Error', 'builtins.Exception', 'builtins.BaseException', 'builtins.object'],
};

export interface BotOptions {
  basedir: string;
  numcpus?: number;
  deleteLeftoverDirs: boolean;
  commands: ReadonlyMap<string, CommandSpec>;
  environ: NodeJS.ProcessEnv;
  /** The worker's usePTY default (WorkerConfig.usePTY); absent means false. */
  usePTY?: boolean;
  /** The tac's unicode_encoding, for decoding command output. */
  codec?: PythonCodec;
  logger: CommandLogger;
  /** The master asked the worker to stop (after a graceful shutdown). */
  onShutdown(): void;
}

/**
 * The worker's mind: what the master calls on attach and for each build. It
 * outlives connections, so builders (and their directories) survive reconnects.
 */
export class Bot extends Referenceable {
  readonly builders = new Map<string, WorkerForBuilder>();

  constructor(private readonly o: BotOptions) {
    super();
  }

  remote_print(call: RemoteCall): null {
    this.o.logger.info({}, `message from master: ${toText(call.arg(0, 'message')) ?? ''}`);
    return null;
  }

  remote_getWorkerInfo(): Promise<Map<string, unknown>> {
    return workerInfo({ ...this.o, commands: this.commandVersions() });
  }

  remote_getCommands(): Map<string, string> {
    return this.commandVersions();
  }

  remote_getVersion(): string {
    return workerVersion(this.o.environ);
  }

  async remote_setBuilderList(call: RemoteCall): Promise<Map<string, WorkerForBuilder>> {
    const wanted = call.arg(0, 'wanted');
    if (!Array.isArray(wanted)) throw new PbFailure('builtins.TypeError', 'setBuilderList takes a list of (name, builddir) pairs');
    const kept = new Map<string, WorkerForBuilder>();
    for (const entry of wanted) {
      const [name, builddir] = Array.isArray(entry) ? entry.map((x) => toText(x)) : [];
      if (name === undefined || builddir === undefined) throw new PbFailure('builtins.TypeError', 'setBuilderList takes a list of (name, builddir) pairs');
      const dir = pythonJoin(this.o.basedir, builddir);
      await mkdir(dir, { recursive: true });
      const builder = this.builders.get(name) ?? new WorkerForBuilder(name, this.o);
      builder.builderDir = dir;
      kept.set(name, builder);
    }
    for (const [name, builder] of this.builders) {
      if (!kept.has(name)) {
        void builder.interrupt('the builder was removed from this worker');
        this.o.logger.info({ builder: name }, 'removing a builder the master no longer wants');
      }
    }
    this.builders.clear();
    for (const [name, builder] of kept) this.builders.set(name, builder);
    await this.leftoverDirs([...kept.values()].map((b) => b.builderDir));
    return kept;
  }

  remote_shutdown(): null {
    this.o.logger.info({}, 'the master asked this worker to shut down');
    setTimeout(() => this.o.onShutdown(), 200);
    return null;
  }

  /**
   * Interrupts every running command; resolves once they have ended (their
   * process groups killed, TERM-then-KILL included) or `waitMs` has passed.
   */
  async interruptAll(why: string, waitMs = 0): Promise<void> {
    await awaitInterrupted([...this.builders.values()].map((builder) => builder.interrupt(why)), waitMs);
  }

  private commandVersions(): Map<string, string> {
    return commandVersions(this.o.commands);
  }

  /** Directories in basedir that no builder uses: logged, or deleted with delete_leftover_dirs. */
  private async leftoverDirs(used: string[]): Promise<void> {
    const entries = await readdir(this.o.basedir, { withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name === 'info') continue;
      const path = pythonJoin(this.o.basedir, entry.name);
      if (used.includes(path)) continue;
      if (this.o.deleteLeftoverDirs) {
        this.o.logger.info({ dir: path }, 'deleting a leftover directory');
        // As buildbot-worker: a directory that will not go is logged, and the attach goes on.
        await rm(path, { recursive: true, force: true }).catch((err: Error) => this.o.logger.warn({ dir: path, err: err.message }, 'cannot remove a leftover directory'));
      } else {
        this.o.logger.info({ dir: path }, 'leftover directory (no builder uses it; delete_leftover_dirs would remove it)');
      }
    }
  }
}

/** One builder's side of the worker: runs the master's commands, one at a time. */
export class WorkerForBuilder extends Referenceable {
  builderDir = '';
  private current: CommandRunner | undefined;

  constructor(
    readonly name: string,
    private readonly o: BotOptions,
  ) {
    super();
  }

  remote_print(call: RemoteCall): null {
    this.o.logger.info({ builder: this.name }, `message from master to ${this.name}: ${toText(call.arg(0, 'message')) ?? ''}`);
    return null;
  }

  remote_startBuild(): null {
    return null;
  }

  remote_setMaster(): null {
    return null;
  }

  remote_startCommand(call: RemoteCall): null {
    const [commandRef, stepId, rawName, rawArgs] = call.args;
    const name = toText(rawName);
    // A refused command keeps none of the master's references: the broker gives them back.
    if (!(commandRef instanceof RemoteReference) || name === undefined || !(rawArgs instanceof Map)) {
      throw new PbFailure('builtins.TypeError', 'startCommand takes (command, stepId, name, args)');
    }
    const spec = this.o.commands.get(name);
    if (!spec) throw new PbFailure(UNKNOWN_COMMAND.type, `unrecognized WorkerCommand '${name}'`, { parents: UNKNOWN_COMMAND.parents });
    const args = textKeys(rawArgs);
    checkRequired(name, spec, args);
    // The runner owns the command's references (its commandRef, an upload's writer) and releases them when it ends.
    call.keep(call.args);
    if (this.current) void this.current.interrupt('a new command started while this one was running (leftover command)');
    this.o.logger.info({ builder: this.name, command: name, step: toText(stepId) }, `starting command ${name}`);
    const runner = startRunner(this.o, { name, spec, args, channel: pbChannel(commandRef, args), builderDir: this.builderDir });
    this.current = runner;
    void runner.done
      .catch((err: Error) => this.o.logger.warn({ command: name, err: err.message }, 'a command ended with an internal error'))
      .finally(() => {
        if (this.current === runner) this.current = undefined;
      });
    return null;
  }

  /** stepId is ignored, as in buildbot-worker: the builder runs one command at a time. */
  remote_interruptCommand(call: RemoteCall): null {
    void this.interrupt(toText(call.arg(1, 'why')) ?? 'interrupted by the master');
    return null;
  }

  /** Interrupts the running command, if any; resolves when it has ended. */
  interrupt(why: string): Promise<void> {
    this.current?.interrupt(why);
    return this.current?.done ?? Promise.resolve();
  }
}

/** Waits up to `waitMs` for interrupted commands to end (not at all for 0). */
export async function awaitInterrupted(running: Promise<void>[], waitMs: number): Promise<void> {
  // withDeadline clears its timer as soon as the commands end, so it need not be unref'd
  // (an unref'd one would let the process exit with the commands still dying).
  if (waitMs > 0) await withDeadline(Promise.all(running), waitMs, () => new Error('commands still running')).catch(() => undefined);
}

/** getCommands' answer: every command name, each with COMMAND_VERSION. */
export function commandVersions(commands: ReadonlyMap<string, CommandSpec>): Map<string, string> {
  return new Map([...commands.keys()].map((name) => [name, COMMAND_VERSION]));
}

/** What one command needs beyond the worker's own settings. */
export interface CommandStart {
  name: string;
  spec: CommandSpec;
  args: ReadonlyMap<string, PbValue>;
  channel: CommandChannel;
  builderDir: string;
  buffering?: UpdateOptions;
}

/** Starts a command with the worker's settings (basedir, environment, PTY default, encoding, logger). */
export function startRunner(o: BotOptions, start: CommandStart): CommandRunner {
  return new CommandRunner({
    ...start,
    basedir: o.basedir,
    environ: o.environ,
    usePTY: o.usePTY ?? false,
    ...(o.codec ? { codec: o.codec } : {}),
    logger: o.logger,
  });
}

function textKeys(args: Map<PbValue, PbValue>): Map<string, PbValue> {
  const out = new Map<string, PbValue>();
  for (const [key, value] of args) {
    const name = toText(key);
    if (name !== undefined) out.set(name, value);
  }
  return out;
}
