/**
 * Between the worker (./pty.ts) and its PTY host (./pty-host.ts). The worker writes one
 * PtyRequest as a JSON line on the host's stdin and holds stdin open; the host sends the
 * terminal's output on its stdout, and PtyHostMessages as JSON lines on its stderr.
 */
export interface PtyRequest {
  readonly file: string;
  readonly args: readonly string[];
  /** `NAME=value`, the command's whole environment (a pipe, not argv: argv is public in /proc). */
  readonly env: readonly string[];
  readonly cwd: string;
  readonly cols: number;
  readonly rows: number;
}

export type PtyHostMessage =
  /** Forked: the process's pid, the leader of its session and process group. */
  | { readonly started: number }
  /** The package cannot be loaded (PTY_UNAVAILABLE's whole message). */
  | { readonly unavailable: string }
  /** forkpty failed (node-pty's message). */
  | { readonly forkFailed: string }
  /** The process exited: its exit code and the number of the signal that killed it (0: none). */
  | { readonly exit: readonly [code: number, signal: number] }
  /** Reading the terminal failed (other than at its end). */
  | { readonly error: string };
