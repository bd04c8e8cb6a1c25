import type { PythonCodec } from '../python/codec.js';
import type { CommandLogger, CommandUpdates } from './reporting.js';
import type { CommandLine } from './command-line.js';
import type { EnvChanges } from './environment.js';
import type { PyNumber } from '../python/repr.js';
import type { LogfileSpec, Seconds } from './headers.js';

export interface ProcessContext {
  readonly updates: CommandUpdates;
  /** The worker's own environment: the base of the child's, and the source of `${NAME}`. */
  readonly environ: NodeJS.ProcessEnv;
  readonly logger: CommandLogger;
  /** When it aborts, the process group is killed under the `command interrupted` header. */
  readonly interrupted?: AbortSignal;
  /** The tac's unicode_encoding: how output and watched logfiles are decoded (default UTF-8). */
  readonly codec?: PythonCodec;
}

/** What to run and how; absent and null mean the same. Defaults are buildbot-worker's. */
export interface ProcessSpec {
  readonly command: CommandLine;
  /** Created if missing. Relative logfile paths start here; PWD is its absolute form. */
  readonly workdir: string;
  readonly env?: EnvChanges | null;
  /** Seconds without output (stdout, stderr or a logfile) before the process is killed; 0 or null: never. */
  readonly timeout?: Seconds | null;
  /** Seconds from the start before the process is killed; 0 or null: never. */
  readonly maxTime?: Seconds | null;
  /**
   * Lines of sent output (stdout and stderr) after which stdout is closed and the process killed,
   * reported as `failure_reason` max_lines_failure (Buildbot 4.x); null: no limit. 0 is a limit.
   */
  readonly maxLines?: PyNumber | null;
  /** If set, the kill sends TERM first and `interruptSignal` this many seconds later. */
  readonly sigtermTime?: Seconds | null;
  /** A signal name without SIG; default KILL. */
  readonly interruptSignal?: string | null;
  readonly sendStdout?: boolean;
  readonly sendStderr?: boolean;
  /** Send the `rc` update (and the `process killed by signal` header); default true. */
  readonly sendRC?: boolean;
  /** Written in full, then stdin is closed; stdin is closed in any case. */
  readonly initialStdin?: string | Uint8Array | null;
  readonly logfiles?: ReadonlyMap<string, LogfileSpec> | null;
  /**
   * Run on a pseudo-terminal (./pty.ts) as the controlling terminal of a new session: stdout and
   * stderr merged into stdout. Ignored, with buildbot-worker's warning header, when
   * initialStdin is given.
   */
  readonly usePTY?: boolean;
  /** Send the ` environment:` header; default true. */
  readonly logEnviron?: boolean;
}
