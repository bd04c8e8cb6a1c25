// What the worker commands (create-worker, start, stop, restart) share: their
// argument parsing, error output, and buildbot-worker's worker-directory check.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getSystemErrorMap, parseArgs, type ParseArgsConfig } from 'node:util';
import { BbgateError, isBbgateError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseCommand gives back: parseArgs's typed values and the positionals. */
export type ParsedCommand<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O; strict: true }>>;

/** bbgate's commands, as typed after `bbgate`. */
export type CommandName = 'probe' | 'create-worker' | 'start' | 'stop' | 'restart' | 'relay' | 'ntlm-hash';

/** parseArgs, with its errors turned into USAGE errors that say in a few words what was wrong. */
export function parseCommand<O extends Options>(command: CommandName, argv: string[], options: O): ParsedCommand<O> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options, strict: true });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('ERR_PARSE_ARGS')) throw new BbgateError('USAGE', describeParseError(command, code, (err as Error).message));
    throw err;
  }
}

/**
 * Node's parseArgs messages run to three lines with an unbalanced quote
 * ("Unknown option '--bogus'. To specify a positional argument … '-- \"--bogus\""):
 * only the option it names is kept.
 */
function describeParseError(command: CommandName, code: string, message: string): string {
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const option = quoted.split(/[\s,]+/).filter((t) => t.startsWith('-')).pop() ?? quoted;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option} for ${command}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return /argument missing/.test(message) ? `option ${option} of ${command} needs a value` : `option ${option} of ${command} takes no value`;
  }
  return `${command}: ${message}`;
}

/** Where a usage mistake sends the user: the command's own help. */
export function seeHelp(command: CommandName | undefined): string {
  return `Try 'bbgate ${command === undefined ? '' : `${command} `}--help' for more information.\n`;
}

/**
 * Prints a failure as `bbgate: message`; a usage mistake adds one line naming
 * the command's help, rather than the whole usage text. Returns the exit
 * status, 1. Anything that is not a BbgateError is a bug and is rethrown.
 */
export function report(err: unknown, command: CommandName): number {
  if (!isBbgateError(err)) throw err;
  process.stderr.write(`bbgate: ${err.message}\n${err.code === 'USAGE' ? seeHelp(command) : ''}`);
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
