import type { PbValue } from '../../pb/values/values.js';

/**
 * What a command reports to the master. Text goes through the runner's line
 * splitting and buffering; everything else is queued in order with it.
 */
export interface CommandUpdates {
  stdout(text: string): void;
  stderr(text: string): void;
  header(text: string): void;
  /** A watched logfile's new text. */
  log(name: string, text: string): void;
  /** Any other update key, such as rc, stat or files. */
  send(key: string, value: unknown): void;
  /**
   * Undefined while the master keeps up with the updates; otherwise a promise
   * to wait for before producing more, so a slow master or link holds the
   * command back instead of filling the worker's memory.
   */
  backlog(): Promise<void> | undefined;
}

export interface CommandLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface CommandContext {
  /** The arguments as the master sent them; a key the master sent as None holds null. */
  readonly args: ReadonlyMap<string, PbValue>;
  /** The builder's directory: the worker's basedir joined with the builder's builddir. */
  readonly builderDir: string;
  /** The worker's basedir (rmdir and cpdir run their processes there, as buildbot-worker does). */
  readonly basedir: string;
  readonly updates: CommandUpdates;
  /** Aborts when the master interrupts the command, its builder goes away, or the connection drops. */
  readonly interrupted: AbortSignal;
  readonly logger: CommandLogger;
  /** The worker's own environment: the base for shell environments and ${VAR} expansion. */
  readonly environ: NodeJS.ProcessEnv;
}

/**
 * A worker command. `run` resolves once the command has finished and sent its
 * rc; it rejects with a PbFailure to fail the command (the master then marks
 * the step EXCEPTION). Arguments named in `required` are checked by the runner
 * before `run` starts.
 */
export interface CommandSpec {
  required: readonly string[];
  run(ctx: CommandContext): Promise<void>;
}
