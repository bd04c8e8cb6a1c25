import { performance } from 'node:perf_hooks';
import { PbFailure, PY, releaseReferences, type RemoteReference, float, type PbValue } from '../pb/index.js';
import type { CommandLogger, CommandSpec } from './commands/types.js';
import type { PythonCodec } from './python/codec.js';
import { UpdateBuffer, type UpdateOptions } from './updates.js';

export interface RunnerOptions {
  name: string;
  spec: CommandSpec;
  args: ReadonlyMap<string, PbValue>;
  /** The master's RemoteCommand: receives update() and complete(). */
  commandRef: RemoteReference;
  builderDir: string;
  basedir: string;
  environ: NodeJS.ProcessEnv;
  /** The worker's usePTY default: see CommandContext.usePTY. */
  usePTY?: boolean;
  codec?: PythonCodec;
  logger: CommandLogger;
  buffering?: UpdateOptions;
}

/** Unanswered update batches (each up to 64 KiB of text) a command may have before it is held back. */
export const MAX_UPDATES_IN_FLIGHT = 4;

/** Fails like buildbot-worker when the master left out an argument the command needs. */
export function checkRequired(name: string, spec: CommandSpec, args: ReadonlyMap<string, PbValue>): void {
  const missing = spec.required.filter((key) => !args.has(key));
  if (missing.length) {
    throw new PbFailure(PY.ValueError, `command ${name} is missing required argument${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  }
}

/**
 * Runs one command for the master: streams its updates, then reports
 * `complete(None | failure)`, with `elapsed` first unless it was interrupted.
 * When the connection drops, the command is interrupted and nothing more is
 * sent. Every reference the master handed over (the RemoteCommand, writers,
 * readers) is released once the command is over.
 */
export class CommandRunner {
  readonly done: Promise<void>;
  private readonly abort = new AbortController();
  private interruptedByMaster = false;
  private connected = true;
  /** update() calls the master has not answered yet, and who waits for that number to drop. */
  private inFlight = 0;
  private drained: { promise: Promise<void>; resolve(): void } | undefined;

  constructor(private readonly o: RunnerOptions) {
    const stopWatching = o.commandRef.notifyOnDisconnect(() => {
      this.connected = false;
      this.drained?.resolve();
      this.abort.abort(new Error('the connection to the master was lost'));
    });
    this.done = this.run().finally(stopWatching);
  }

  /** The master's interruptCommand, or the builder going away. */
  interrupt(why: string): void {
    if (this.abort.signal.aborted) return;
    this.interruptedByMaster = true;
    this.o.logger.info({ command: this.o.name, why }, 'interrupting command');
    this.abort.abort(new Error(why));
  }

  private async run(): Promise<void> {
    const { o } = this;
    const buffer = new UpdateBuffer((items) => this.sendUpdates(items), o.buffering);
    const started = performance.now();
    let failure: PbFailure | null = null;
    try {
      await o.spec.run({
        args: o.args,
        builderDir: o.builderDir,
        basedir: o.basedir,
        environ: o.environ,
        usePTY: o.usePTY ?? false,
        ...(o.codec ? { codec: o.codec } : {}),
        logger: o.logger,
        interrupted: this.abort.signal,
        updates: {
          stdout: (t) => buffer.text('stdout', t),
          stderr: (t) => buffer.text('stderr', t),
          header: (t) => buffer.text('header', t),
          log: (name, t) => buffer.log(name, t),
          send: (key, value) => buffer.other(key, value),
          backlog: () => this.backlog(),
        },
      });
    } catch (err) {
      failure = PbFailure.fromError(err);
      o.logger.warn({ command: o.name, err: failure.message }, 'command failed');
    }
    try {
      if (!this.connected) {
        buffer.discard();
        return;
      }
      if (!this.interruptedByMaster) buffer.other('elapsed', float((performance.now() - started) / 1000));
      buffer.flush();
      await o.commandRef.callRemote('complete', [failure]);
    } catch (err) {
      o.logger.warn({ command: o.name, err: (err as Error).message }, 'could not report the command as complete');
    } finally {
      o.commandRef.release();
      releaseReferences(o.args);
    }
  }

  private sendUpdates(items: [string, unknown][]): void {
    if (!this.connected) return;
    this.inFlight++;
    this.o.commandRef
      .callRemote('update', [items.map(([key, value]) => [new Map([[key, value]]), 0])])
      .catch((err: Error) => {
        this.o.logger.warn({ command: this.o.name, err: err.message }, 'the master refused an update');
      })
      .finally(() => {
        this.inFlight--;
        if (this.inFlight < MAX_UPDATES_IN_FLIGHT && this.drained) {
          this.drained.resolve();
          this.drained = undefined;
        }
      });
  }

  private backlog(): Promise<void> | undefined {
    if (this.inFlight < MAX_UPDATES_IN_FLIGHT || !this.connected) return undefined;
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }
}

