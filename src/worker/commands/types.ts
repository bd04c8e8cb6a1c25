import type { PbValue } from '../../pb/index.js';
import type { PythonCodec } from '../python/codec.js';
import type { CommandLogger, CommandUpdates } from '../process/index.js';

export type { CommandLogger, CommandUpdates } from '../process/index.js';

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
  /** The worker's usePTY default, for a shell step whose usePTY is "slave-config"; absent means false. */
  readonly usePTY?: boolean;
  /** The tac's unicode_encoding: how command output is decoded (default UTF-8). */
  readonly codec?: PythonCodec;
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
