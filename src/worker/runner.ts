import { performance } from 'node:perf_hooks';
import { PbFailure, PY, releaseReferences, type RemoteReference, float, type PbValue } from '../pb/index.js';
import type { CommandLogger, CommandSpec } from './commands/types.js';
import type { PythonCodec } from './python/codec.js';
import { UpdateBuffer, type Update, type UpdateOptions } from './updates.js';

/**
 * How a running command reaches its counterpart on the master, whatever the
 * protocol: over PB the master's RemoteCommand reference, over msgpack the
 * command's command_id on the session (./msgpack/channel.ts).
 */
export interface CommandChannel {
  /** Sends one batch of updates; resolves once the master has taken it. */
  update(items: Update[]): Promise<unknown>;
  /** Reports the command finished: None, or the failure that ended it. */
  complete(failure: PbFailure | null): Promise<unknown>;
  /** Calls `listener` if the connection is lost; returns an unsubscribe. */
  onDisconnect(listener: () => void): () => void;
  /** The command is over: gives back whatever the master lent for it. */
  release(): void;
}

/** PB's channel: the master's RemoteCommand, whose remote_update takes `[[{key: value}, 0], ...]`. */
export function pbChannel(commandRef: RemoteReference, args: ReadonlyMap<string, PbValue>): CommandChannel {
  return {
    update: (items) => commandRef.callRemote('update', [items.map(([key, value]) => [new Map([[key, value]]), 0])]),
    complete: (failure) => commandRef.callRemote('complete', [failure]),
    onDisconnect: (listener) => commandRef.notifyOnDisconnect(listener),
    release: () => {
      commandRef.release();
      releaseReferences(args);
    },
  };
}

export interface RunnerOptions {
  name: string;
  spec: CommandSpec;
  args: ReadonlyMap<string, PbValue>;
  /** The master's side of the command: receives the updates and the completion. */
  channel: CommandChannel;
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
 * sent. Whatever the master handed over (over PB the RemoteCommand, writers,
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
    const stopWatching = o.channel.onDisconnect(() => {
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
      await o.channel.complete(failure);
    } catch (err) {
      o.logger.warn({ command: o.name, err: (err as Error).message }, 'could not report the command as complete');
    } finally {
      o.channel.release();
    }
  }

  private sendUpdates(items: Update[]): void {
    if (!this.connected) return;
    this.inFlight++;
    this.o.channel
      .update(items)
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

