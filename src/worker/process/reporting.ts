// Where a running command's output and log lines go. The process runner writes
// to these; the worker's command runner (src/worker/runner.ts) implements them.

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
