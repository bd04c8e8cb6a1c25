import type { Readable, Writable } from 'node:stream';

/**
 * What the supervisor needs of a running process, whether it runs on pipes
 * (Node's ChildProcess, ./group.ts) or on a pseudo-terminal (./pty.ts): the
 * pid of its group's leader, its output, and one `close` once it has exited
 * and its output has ended.
 */
export interface ProcessChild {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** On pipes: the child's stdin. Under a PTY: null (Twisted writes nothing to a PTY and leaves it open). */
  readonly stdin: Writable | null;
  /** Under a PTY: the terminal, stdout and stderr merged as Twisted's usePTY merges them. */
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}
