// The values a buildbot.tac's evaluation deals in (./evaluate.ts), and what
// Python does with them that ./read.ts needs too: truth, equality, names in
// messages, binding arguments to a signature.
import type { TacError } from './errors.js';

export type Stream = { obj: 'stream'; name: 'stdout' | 'stderr' };
export type LogFileObj = { obj: 'logfile'; path: string; rotateLength: Located; maxRotatedFiles: Located; line: number };
/** Where a log observer writes: a rotating file, or a stream of the worker process. */
export type LogTarget = LogFileObj | Stream;
export type WorkerObj = { obj: 'worker'; args: Located[]; kwargs: Map<string, Located>; line: number; parent?: Obj };
export type ApplicationObj = { obj: 'application'; log?: LogTarget };

export type Obj =
  | { obj: 'module'; name: string }
  | { obj: 'function'; name: string }
  | { obj: 'interface'; name: string }
  | { obj: 'bytes' }
  /** `origin`: the environment variable its items were read from, if any (see Located). */
  | { obj: 'list'; items: Value[]; origin?: string }
  | { obj: 'environ' }
  /** os.environ.keys(): a view of the names, iterated (as os.environ is) over a snapshot taken when the loop starts. */
  | { obj: 'keys' }
  | ApplicationObj
  | LogFileObj
  | Stream
  /** twisted.python.log.FileLogObserver(f): its .emit is the legacy observer. */
  | { obj: 'observer'; target: LogTarget }
  | { obj: 'emit'; target: LogTarget }
  /** twisted.logger.textFileLogObserver(f), or a FilteringLogObserver around one. */
  | { obj: 'textObserver'; target: Stream }
  | { obj: 'predicate' }
  | WorkerObj
  /** `origin`: the environment variable `self` (a str) was read from, if any (see Located). */
  | { obj: 'method'; self: Value; name: string; origin?: string };

export type Value = string | number | boolean | null | Obj;

/**
 * A value and the line its literal (or the call that made it) is on, which is
 * where errors about it point; `origin` names the environment variable it was
 * read from, or made from (by str methods, os.path, list(), ...), for messages
 * such as "WORKERPASS is not set", and so that no message quotes it: any
 * variable may hold a secret.
 */
export interface Located {
  v: Value;
  line: number;
  origin?: string;
  /** The variable was not set: `v` is the default the tac gave. */
  defaulted?: boolean;
}

/** Python's binding of a call's arguments to a signature, with its errors. */
export function bindArguments(
  invalid: (line: number, what: string) => TacError,
  name: string,
  params: string[],
  required: number,
  args: Located[],
  kwargs: Map<string, Located>,
  line: number,
): Map<string, Located> {
  if (args.length > params.length) throw invalid(line, `${name}() takes at most ${params.length} positional arguments (${args.length} given)`);
  const bound = new Map<string, Located>();
  args.forEach((a, i) => bound.set(params[i]!, a));
  for (const [key, value] of kwargs) {
    if (!params.includes(key)) throw invalid(value.line, `${name}() got an unexpected keyword argument "${key}"`);
    if (bound.has(key)) throw invalid(value.line, `${name}() got multiple values for argument "${key}"`);
    bound.set(key, value);
  }
  const missing = params.slice(0, required).filter((p) => !bound.has(p));
  if (missing.length > 0) throw invalid(line, `${name}() is missing required argument${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return bound;
}

export function isObj(v: Value): v is Obj {
  return typeof v === 'object' && v !== null;
}

/** Python's truth value, for the values a tac holds. */
export function truthy(v: Value): boolean {
  if (isObj(v)) return v.obj === 'list' ? v.items.length > 0 : true;
  return Boolean(v);
}

/** Python's ==: True == 1, lists item by item, objects by identity. */
export function equal(a: Value, b: Value): boolean {
  const num = (v: Value) => (typeof v === 'boolean' ? Number(v) : v);
  const x = num(a);
  const y = num(b);
  if (isObj(x) && isObj(y) && x.obj === 'list' && y.obj === 'list') return x.items.length === y.items.length && x.items.every((item, i) => equal(item, y.items[i]!));
  return x === y;
}

export function typeName(v: Value): string {
  if (v === null) return 'None';
  if (typeof v === 'string') return 'a str';
  if (typeof v === 'number') return 'an int';
  if (typeof v === 'boolean') return 'a bool';
  switch (v.obj) {
    case 'module':
      return `the module ${v.name}`;
    case 'function':
      return v.name;
    case 'method':
      return `the method ${v.name}`;
    case 'environ':
      return 'os.environ';
    case 'keys':
      return 'os.environ.keys()';
    case 'stream':
      return `sys.${v.name}`;
    default:
      return `a ${v.obj === 'logfile' ? 'LogFile' : v.obj === 'worker' ? 'Worker' : v.obj}`;
  }
}

/**
 * A value for an error message: quoted when the tac wrote it, named by its
 * variable (parenthesised when `inline`) when it came from the environment.
 */
export function describeValue(a: Located, inline = false): string {
  if (a.origin !== undefined) {
    const named = a.defaulted ? `${typeName(a.v)}, the default for the unset environment variable ${a.origin}` : `${typeName(a.v)} from the environment variable ${a.origin}`;
    return inline ? `(${named})` : named;
  }
  const v = a.v;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v === true ? 'True' : v === false ? 'False' : v);
  return typeName(v);
}
