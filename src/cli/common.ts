// What the worker commands (create-worker, start, stop, restart) share: their
// argument parsing, error output, and buildbot-worker's worker-directory check.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getSystemErrorMap, parseArgs, type ParseArgsConfig } from 'node:util';
import { BbgateError, isBbgateError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, with its errors turned into USAGE errors that the command prints with its own usage text. */
export function parseCommand<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options, strict: true });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('ERR_PARSE_ARGS')) throw new BbgateError('USAGE', (err as Error).message);
    throw err;
  }
}

/**
 * Prints a failure as `bbgate: message`; usage errors also get the command's
 * usage text, as buildbot-worker does. Returns the exit status, 1. Anything
 * that is not a BbgateError is a bug and is rethrown.
 */
export function report(err: unknown, usage: string): number {
  if (!isBbgateError(err)) throw err;
  process.stderr.write(`bbgate: ${err.message}\n${err.code === 'USAGE' ? `\n${usage}` : ''}`);
  return 1;
}

/** The BASEDIR argument of start, stop and restart: optional, the current directory by default, made absolute. */
export function basedirArgument(positionals: string[]): string {
  if (positionals.length > 1) throw new BbgateError('USAGE', `expected at most one BASEDIR, got ${positionals.length} arguments`);
  return resolve(positionals[0] ?? process.cwd());
}

/**
 * buildbot-worker's test for a worker directory: its buildbot.tac can be read
 * and contains `Application('buildbot-worker')`. The messages are its own.
 */
export function checkWorkerDir(basedir: string): void {
  const tac = join(basedir, 'buildbot.tac');
  let contents: string;
  try {
    contents = readFileSync(tac, 'utf8');
  } catch (err) {
    throw new BbgateError('WORKER_DIR', `error reading '${tac}': ${strerror(err)}\ninvalid worker directory '${basedir}'`, { cause: err });
  }
  if (!contents.includes("Application('buildbot-worker')")) {
    throw new BbgateError('WORKER_DIR', `unexpected content in '${tac}'\ninvalid worker directory '${basedir}'`);
  }
}

/** The C library's text for a system error ("No such file or directory"), as Python's strerror gives it. */
export function strerror(err: unknown): string {
  const errno = (err as { errno?: number }).errno;
  const text = errno === undefined ? undefined : getSystemErrorMap().get(errno)?.[1];
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : (err as Error).message;
}
