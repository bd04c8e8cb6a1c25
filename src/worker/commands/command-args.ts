import { RemoteReference, PyFloat, Tuple, toNumber, toText, type PbValue } from '../../pb/index.js';
import type { ArgvItem, CommandLine, EnvChanges, EnvValue, LogfileSpec, Seconds } from '../process/index.js';
import { pyError } from '../python/oserror.js';
import { pyRepr, pyStr, type PyNumber } from '../python/repr.js';
import { pyTruthy } from '../python/truth.js';

/**
 * The one reader of a command's arguments: the values the master sent over
 * PB, read with buildbot-worker's rules and turned into the typed values the
 * commands and the process runner take, so nothing below commands/ sees a PB
 * value. The master sends every key it knows, None included. A value the
 * worker cannot use fails the command with the TypeError Python would raise
 * (code COMMAND_ARGS), before anything has run.
 */
export class CommandArgs {
  constructor(private readonly args: ReadonlyMap<string, PbValue>) {}

  /** Python's dict.get(name, fallback): a key the master sent as None gives None, not the fallback. */
  get(name: string, fallback: PbValue = null): PbValue {
    return this.args.has(name) ? this.args.get(name)! : fallback;
  }

  /** `if args.get(name, fallback):` */
  flag(name: string, fallback: PbValue = false): boolean {
    return pyTruthy(this.get(name, fallback));
  }

  text(name: string): string {
    return textOf(name, this.get(name));
  }

  /** A string, or undefined for None. */
  optionalText(name: string): string | undefined {
    return this.get(name) === null ? undefined : this.text(name);
  }

  /** A path argument that may be one string or a list of them (rmdir's `dir`). */
  textList(name: string): string[] {
    const value = this.get(name);
    const texts = Array.isArray(value) ? value.map(toText) : [toText(value)];
    if (texts.some((text) => text === undefined)) throw wrongArgument(`'${name}' must be a string or a list of strings, not ${pyRepr(value)}`);
    return texts as string[];
  }

  /** A number, or undefined for None; unlike Python, True and False are refused. */
  optionalNumber(name: string): number | undefined {
    const value = this.get(name);
    if (value === null) return undefined;
    const n = typeof value === 'boolean' ? undefined : toNumber(value);
    if (n === undefined) throw wrongArgument(`'${name}' must be a number, not ${pyRepr(value)}`);
    return n;
  }

  number(name: string): number {
    const n = this.optionalNumber(name);
    if (n === undefined) throw wrongArgument(`'${name}' must be a number, not None`);
    return n;
  }

  /** A timeout as the master sent it (a float stays a float, for the headers), or null for None. */
  seconds(name: string, fallback: PbValue = null): Seconds | null {
    const value = this.get(name, fallback);
    if (value === null || typeof value === 'number' || value instanceof PyFloat) return value;
    if (typeof value === 'bigint') return Number(value);
    if (typeof value === 'boolean') return value ? 1 : 0;
    throw wrongArgument(`'${name}' must be a number of seconds, not ${pyRepr(value)}`);
  }

  /** A count as the master sent it (Buildbot 4.x's max_lines, int or float), or null for None; True and False are refused. */
  lineCount(name: string): PyNumber | null {
    const value = this.get(name);
    if (value === null || typeof value === 'number' || value instanceof PyFloat) return value;
    if (typeof value === 'bigint') return Number(value);
    throw wrongArgument(`'${name}' must be a number of lines, not ${pyRepr(value)}`);
  }

  reference(name: string): RemoteReference {
    const value = this.get(name);
    if (!(value instanceof RemoteReference)) throw wrongArgument(`'${name}' must be a remote reference, not ${pyRepr(value)}`);
    return value;
  }

  /** shell's `command`: a string for /bin/sh -c, or an argv list whose items may be ('obfuscated', real, fake). */
  command(): CommandLine {
    const value = this.get('command');
    const text = toText(value);
    if (text !== undefined) return text;
    if (Array.isArray(value)) return value.map(argvItem);
    throw wrongArgument(`'command' must be a string or a list, not ${pyRepr(value)}`);
  }

  env(): EnvChanges | null {
    const value = this.get('env');
    if (value === null) return null;
    if (!(value instanceof Map)) throw wrongArgument(`'env' must be a dict, not ${pyRepr(value)}`);
    const changes = new Map<string, EnvValue>();
    for (const [key, item] of value) {
      const name = textOf('env', key);
      changes.set(name, envValue(name, item));
    }
    return changes;
  }

  logfiles(): Map<string, LogfileSpec> {
    const value = this.get('logfiles');
    if (value === null) return new Map();
    if (!(value instanceof Map)) throw wrongArgument(`'logfiles' must be a dict, not ${pyRepr(value)}`);
    return new Map(Array.from(value, ([key, item]) => {
      const name = textOf('logfiles', key);
      return [name, logfileSpec(name, item)];
    }));
  }

  initialStdin(): string | Uint8Array | null {
    const value = this.get('initial_stdin');
    if (value === null || typeof value === 'string' || value instanceof Uint8Array) return value;
    throw wrongArgument(`'initial_stdin' must be a string, not ${pyRepr(value)}`);
  }
}

function wrongArgument(message: string): Error {
  return pyError('TypeError', message, 'COMMAND_ARGS');
}

function textOf(name: string, value: PbValue): string {
  const text = toText(value);
  if (text === undefined) throw wrongArgument(`'${name}' must be a string, not ${pyRepr(value)}`);
  return text;
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

function envValue(key: string, value: PbValue): EnvValue {
  if (value === null || typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  throw wrongArgument(`'env' values must be strings or lists; key '${key}' is incorrect`);
}

function logfileSpec(name: string, value: PbValue): LogfileSpec {
  const path = toText(value);
  if (path !== undefined) return path;
  if (!(value instanceof Map) || !value.has('filename')) throw wrongArgument(`logfile '${name}' must be a path or a dict with a 'filename'`);
  const filename = textOf(`logfiles['${name}']['filename']`, value.get('filename')!);
  return value.has('follow') ? { filename, follow: pyTruthy(value.get('follow')!) } : { filename };
}
