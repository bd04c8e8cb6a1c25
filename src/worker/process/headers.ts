import { pyRepr, type PyNumber } from '../python/repr.js';
import { pyTruthy } from '../python/truth.js';

/** Seconds as the master sent them, int or float, so the headers print them as 3.7 does. */
export type Seconds = PyNumber;

/** A watched logfile as the master describes it: a path relative to the workdir, or `{filename, follow}`. */
export type LogfileSpec = string | { readonly filename: string; readonly follow?: boolean };

export interface StartHeaderFacts {
  readonly display: string;
  readonly fakeRepr: string;
  readonly workdir: string;
  readonly timeout: Seconds | null;
  readonly maxTime: Seconds | null;
  readonly logfiles: ReadonlyMap<string, LogfileSpec>;
  /** Only when logEnviron is on. */
  readonly environment: Readonly<Record<string, string>> | null;
  readonly stdinBytes: number;
  readonly usePTY: boolean;
}

/** Python's `if timeout:`: None and 0 (or 0.0, which arrives as a PyFloat object) mean no limit. */
export function hasLimit(seconds: Seconds | null | undefined): seconds is Seconds {
  return seconds !== undefined && pyTruthy(seconds);
}

function limit(name: string, seconds: Seconds | null): string {
  if (!hasLimit(seconds)) return '';
  return ` (${name} ${pyRepr(seconds)} ${Number(seconds) === 1 ? 'sec' : 'secs'})`;
}

/** The headers buildbot-worker 3.7 sends before starting a process, in its order and wording. */
export function startHeaders(facts: StartHeaderFacts): string[] {
  const headers = [
    `${facts.display}\n`,
    ` in dir ${facts.workdir}${limit('timeout', facts.timeout)}${limit('maxTime', facts.maxTime)}\n`,
    ` watching logfiles ${pyRepr(facts.logfiles)}\n`,
    ` argv: ${facts.fakeRepr}\n`,
  ];
  if (facts.environment) {
    const lines = Object.keys(facts.environment)
      .sort()
      .map((key) => `  ${key}=${facts.environment![key]}\n`);
    headers.push(` environment:\n${lines.join('')}`);
  }
  if (facts.stdinBytes > 0) headers.push(` writing ${facts.stdinBytes} bytes to stdin\n`);
  headers.push(` using PTY: ${facts.usePTY ? 'True' : 'False'}\n`);
  return headers;
}

export function silenceTimeoutReason(timeout: Seconds, fakeRepr: string): string {
  return `command timed out: ${pyRepr(timeout)} seconds without output running ${fakeRepr}`;
}

export function maxTimeReason(maxTime: Seconds, fakeRepr: string): string {
  return `command timed out: ${pyRepr(maxTime)} seconds elapsed running ${fakeRepr}`;
}

export const INTERRUPT_REASON = 'command interrupted';

/**
 * Sent first when usePTY comes with initialStdin (a PTY's input cannot be closed without closing
 * the terminal), without a newline, exactly as buildbot-worker sends it.
 */
export const PTY_DISABLED_WARNING = 'WARNING: disabling usePTY for this command';
