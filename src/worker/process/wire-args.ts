import { CommandError } from '../../errors.js';
import { PyFloat, Tuple, toText, type PbValue } from '../../pb/values/values.js';
import type { ArgvItem, CommandLine } from './command-line.js';
import type { EnvChanges, EnvValue } from './environment.js';
import type { LogfileSpec, Seconds } from './headers.js';
import { pyRepr, pyStr } from './python-format.js';

// Command arguments as the master sends them over PB, turned into process settings with buildbot-worker's rules.

function invalid(message: string): CommandError {
  return new CommandError('COMMAND_ARGS', message);
}

/** Python's dict.get(key, default): a key the master sent as None gives None, not the default. */
export function argOr(args: ReadonlyMap<string, PbValue>, key: string, fallback: PbValue): PbValue {
  return args.has(key) ? args.get(key)! : fallback;
}

/** Python's truth value (the master sends 1/0 for flags such as want_stdout). */
export function pyTruthy(value: PbValue): boolean {
  if (value === null || value === false || value === 0 || value === 0n || value === '') return false;
  if (value instanceof PyFloat) return value.value !== 0;
  if (value instanceof Uint8Array || Array.isArray(value)) return value.length > 0;
  if (value instanceof Map || value instanceof Set) return value.size > 0;
  return true;
}

export function textArg(name: string, value: PbValue): string {
  const text = toText(value);
  if (text === undefined) throw invalid(`'${name}' must be a string, not ${pyRepr(value)}`);
  return text;
}

export function secondsArg(name: string, value: PbValue): Seconds | null {
  if (value === null || typeof value === 'number' || value instanceof PyFloat) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  throw invalid(`'${name}' must be a number of seconds, not ${pyRepr(value)}`);
}

/** str() of an argv item, as buildbot-worker applies it; bytes are taken as UTF-8. */
function argvText(value: PbValue): string {
  return toText(value) ?? pyStr(value);
}

function argvItem(value: PbValue): ArgvItem {
  if (value instanceof Tuple && value.length === 3 && value[0] === 'obfuscated') {
    return { real: argvText(value[1] as PbValue), fake: argvText(value[2] as PbValue) };
  }
  return argvText(value);
}

export function commandArg(value: PbValue): CommandLine {
  const text = toText(value);
  if (text !== undefined) return text;
  if (Array.isArray(value)) return value.map(argvItem);
  throw invalid(`'command' must be a string or a list, not ${pyRepr(value)}`);
}

function envValue(key: string, value: PbValue): EnvValue {
  if (value === null || typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  throw invalid(`'env' values must be strings or lists; key '${key}' is incorrect`);
}

export function envArg(value: PbValue): EnvChanges | null {
  if (value === null) return null;
  if (!(value instanceof Map)) throw invalid(`'env' must be a dict, not ${pyRepr(value)}`);
  const changes = new Map<string, EnvValue>();
  for (const [key, item] of value) {
    const name = textArg('env', key);
    changes.set(name, envValue(name, item));
  }
  return changes;
}

function logfileSpec(name: string, value: PbValue): LogfileSpec {
  const path = toText(value);
  if (path !== undefined) return path;
  if (!(value instanceof Map) || !value.has('filename')) throw invalid(`logfile '${name}' must be a path or a dict with a 'filename'`);
  const filename = textArg(`logfiles['${name}']['filename']`, value.get('filename')!);
  return value.has('follow') ? { filename, follow: pyTruthy(value.get('follow')!) } : { filename };
}

export function logfilesArg(value: PbValue): Map<string, LogfileSpec> {
  if (value === null) return new Map();
  if (!(value instanceof Map)) throw invalid(`'logfiles' must be a dict, not ${pyRepr(value)}`);
  return new Map(Array.from(value, ([key, item]) => {
    const name = textArg('logfiles', key);
    return [name, logfileSpec(name, item)];
  }));
}

export function stdinArg(value: PbValue): string | Uint8Array | null {
  if (value === null || typeof value === 'string' || value instanceof Uint8Array) return value;
  throw invalid(`'initial_stdin' must be a string, not ${pyRepr(value)}`);
}
