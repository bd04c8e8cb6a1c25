// Runs a buildbot.tac's statements without Python, over a small model of what
// a worker tac touches: os.path, os.environ, sys.stdout, fnmatch, str methods,
// a few builtins, twistd's Application and log observers, and Worker. What the
// tac leaves behind (its Worker's arguments, its log observer, its changes to
// the environment) is read by ./read.ts.
import { resolve } from 'node:path';
import { fnmatch } from '../python/glob.js';
import { pythonAbspath, pythonDirname, pythonJoin } from '../python/os-path.js';
import { pythonIntDigits, pythonSplit, pythonStrip } from '../python/str.js';
import { TacError } from './errors.js';
import type { Alias, Expr, Stmt, Target } from './parse.js';
import { bindArguments, describeValue, equal, isObj, truthy, typeName, type ApplicationObj, type LogTarget, type Located, type Obj, type Value, type WorkerObj } from './values.js';

const fn = (name: string): Obj => ({ obj: 'function', name });
const mod = (name: string): Obj => ({ obj: 'module', name });

/** The modules a tac imports, and what bbgate knows of each. */
const MODULES: Record<string, Record<string, Obj>> = {
  os: { path: mod('os.path'), environ: { obj: 'environ' }, getenv: fn('os.getenv') },
  'os.path': { join: fn('os.path.join'), abspath: fn('os.path.abspath'), dirname: fn('os.path.dirname') },
  sys: { stdout: { obj: 'stream', name: 'stdout' }, stderr: { obj: 'stream', name: 'stderr' } },
  fnmatch: { fnmatch: fn('fnmatch.fnmatch'), fnmatchcase: fn('fnmatch.fnmatch') },
  twisted: {},
  'twisted.application': { service: mod('twisted.application.service') },
  'twisted.application.service': { Application: fn('Application') },
  'twisted.python': {},
  'twisted.python.logfile': { LogFile: fn('LogFile') },
  'twisted.python.log': { ILogObserver: { obj: 'interface', name: 'ILogObserver' }, FileLogObserver: fn('FileLogObserver') },
  'twisted.logger': {
    ILogObserver: { obj: 'interface', name: 'ILogObserver' },
    textFileLogObserver: fn('textFileLogObserver'),
    FilteringLogObserver: fn('FilteringLogObserver'),
    LogLevelFilterPredicate: fn('LogLevelFilterPredicate'),
  },
  buildbot_worker: {},
  'buildbot_worker.bot': { Worker: fn('Worker') },
  'buildbot_worker.pb': { Worker: fn('Worker') },
};

/** Python's builtins a tac may call. */
const BUILTINS = new Set(['int', 'str', 'list', 'bool', 'len']);
/** Python's other builtins: defined in Python, so not TAC_INVALID, but not run here. */
const PYTHON_BUILTINS = new Set([
  'print', 'open', 'exec', 'eval', 'compile', '__import__', 'getattr', 'setattr', 'hasattr', 'delattr', 'range', 'dict', 'tuple', 'set',
  'frozenset', 'float', 'complex', 'bytes', 'bytearray', 'min', 'max', 'sum', 'sorted', 'reversed', 'enumerate', 'zip', 'map', 'filter',
  'any', 'all', 'abs', 'round', 'repr', 'format', 'isinstance', 'issubclass', 'type', 'iter', 'next', 'ord', 'chr', 'hex', 'oct', 'bin',
  'vars', 'globals', 'locals', 'dir', 'id', 'hash', 'input', 'super', 'object', 'Exception', 'ValueError', 'KeyError', 'TypeError',
]);

/** LogFile.fromFullPath(filename, rotateLength=1000000, defaultMode=None, maxRotatedFiles=None). */
const LOGFILE_PARAMS = ['filename', 'rotateLength', 'defaultMode', 'maxRotatedFiles'];

/**
 * The most steps of work a tac may do: a statement (loop bodies included) is
 * one; so is each item a call or loop makes or reads (list(), split(), a
 * loop's names), and each CHARS_PER_STEP characters of the strings a call or
 * comparison reads or makes. The official container tac does a few per
 * environment variable and pattern; the bound turns a runaway loop, or one
 * that builds ever larger values, into an error instead of a hang or an
 * exhausted heap.
 */
export const MAX_STEPS = 1_000_000;
const CHARS_PER_STEP = 16;

type Flow = 'break' | 'continue' | undefined;

/** The state a tac leaves behind. */
export interface TacOutcome {
  application?: Located;
  workers: WorkerObj[];
  /** The environment as the tac left it. */
  environ: Map<string, string>;
}

export class Evaluator {
  private readonly scope = new Map<string, Located>();
  private readonly workers: WorkerObj[] = [];
  private readonly cwd: string;
  private readonly environ: Map<string, string>;
  private steps = 0;

  /** `environ` is the worker's environment at start; the evaluator works on a copy. */
  constructor(
    private readonly file: string,
    environ: NodeJS.ProcessEnv,
  ) {
    // twistd runs the tac from its own directory, which is where relative paths start.
    this.cwd = resolve(file, '..');
    this.scope.set('__file__', { v: file, line: 0 });
    this.environ = new Map(Object.entries(environ).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }

  outcome(): TacOutcome {
    const application = this.scope.get('application');
    return { ...(application ? { application } : {}), workers: this.workers, environ: this.environ };
  }

  private error(code: 'TAC_SYNTAX' | 'TAC_UNSUPPORTED' | 'TAC_INVALID', line: number, what: string): TacError {
    return new TacError(code, this.file, line, what);
  }

  run(body: Stmt[]): Flow {
    for (const stmt of body) {
      const flow = this.statement(stmt);
      if (flow) return flow;
    }
    return undefined;
  }

  /** Counts `steps` of work against MAX_STEPS. */
  private charge(steps: number, line: number): void {
    this.steps += steps;
    if (this.steps > MAX_STEPS) {
      throw this.error(
        'TAC_UNSUPPORTED',
        line,
        `the tac did more than ${MAX_STEPS} steps of work (a statement, an item a call or loop makes or reads, ${CHARS_PER_STEP} characters): bbgate bounds a tac's work so that a mistake is an error, not a hang; loop over fewer items, or smaller values`,
      );
    }
  }

  /** Charges what making or reading these values costs. */
  private chargeValues(line: number, values: Value[]): void {
    this.charge(values.reduce<number>((sum, v) => sum + workSize(v), 0), line);
  }

  private statement(s: Stmt): Flow {
    this.charge(1, s.line);
    switch (s.k) {
      case 'import':
        for (const m of s.modules) this.importModule(m, s.line);
        return undefined;
      case 'from':
        this.fromImport(s.module, s.names, s.line);
        return undefined;
      case 'assign':
        this.assign(s.target, this.eval(s.value));
        return undefined;
      case 'del':
        for (const t of s.targets) this.delete(t);
        return undefined;
      case 'expr':
        this.eval(s.value);
        return undefined;
      case 'if': {
        const taken = s.branches.find((b) => truthy(this.eval(b.test).v));
        return this.run(taken ? taken.body : s.orelse);
      }
      case 'for':
        return this.forLoop(s);
      case 'break':
      case 'continue':
        return s.k;
      case 'pass':
        return undefined;
    }
  }

  private forLoop(s: Stmt & { k: 'for' }): Flow {
    // Python's os.environ (and its keys()) iterates a list of the names taken when the loop
    // starts, so the body may delete and add variables, as `items` gives it here.
    const items = this.items(this.eval(s.iter), `a "for" loop over`, s.line);
    let broke = false;
    for (const item of items) {
      this.scope.set(s.target, { ...item, line: s.line });
      if (this.run(s.body) === 'break') {
        broke = true;
        break;
      }
    }
    // A break or continue in the else block belongs to an enclosing loop.
    return broke ? undefined : this.run(s.orelse);
  }

  private assign(t: Target, value: Located): void {
    if (t.k === 'name') {
      this.scope.set(t.id, value);
      return;
    }
    const container = this.eval(t.obj);
    if (!isObj(container.v) || container.v.obj !== 'environ') throw this.error('TAC_UNSUPPORTED', t.line, `assigning to an item of ${typeName(container.v)} is not supported (only os.environ[name] = value)`);
    const name = this.envKey(this.eval(t.index), 'os.environ[...] =');
    if (typeof value.v !== 'string') throw this.error('TAC_INVALID', value.line, `os.environ values must be str, not ${typeName(value.v)}`);
    this.environ.set(name, value.v);
  }

  private delete(t: Target): void {
    if (t.k === 'name') {
      if (!this.scope.delete(t.id)) throw this.error('TAC_INVALID', t.line, `name "${t.id}" is not defined`);
      return;
    }
    const container = this.eval(t.obj);
    if (!isObj(container.v) || container.v.obj !== 'environ') throw this.error('TAC_UNSUPPORTED', t.line, `deleting an item of ${typeName(container.v)} is not supported (only del os.environ[name])`);
    const index = this.eval(t.index);
    const name = this.envKey(index, 'del os.environ[...]');
    if (!this.environ.delete(name)) throw this.error('TAC_INVALID', t.line, `del os.environ[...]: the environment variable ${envName(index)} is not set (KeyError in Python)`);
  }

  private knownModule(name: string, line: number): Record<string, Obj> {
    const m = MODULES[name];
    if (!m) throw this.error('TAC_UNSUPPORTED', line, `importing "${name}" is not supported (bbgate knows ${Object.keys(MODULES).join(', ')})`);
    return m;
  }

  private importModule({ name, as }: Alias, line: number): void {
    this.knownModule(name, line);
    // `import os.path` binds `os`; `import os.path as p` binds the submodule.
    const bound = as ?? name.split('.')[0]!;
    this.scope.set(bound, { v: mod(as ? name : name.split('.')[0]!), line });
  }

  private fromImport(module: string, names: Alias[], line: number): void {
    const m = this.knownModule(module, line);
    for (const { name, as } of names) {
      const value = m[name] ?? (MODULES[`${module}.${name}`] ? mod(`${module}.${name}`) : undefined);
      if (!value) throw this.error('TAC_UNSUPPORTED', line, `"from ${module} import ${name}" is not supported (bbgate knows ${Object.keys(m).join(', ') || 'nothing'} from ${module})`);
      this.scope.set(as ?? name, { v: value, line });
    }
  }

  private eval(e: Expr): Located {
    switch (e.k) {
      case 'const':
        return { v: e.value, line: e.line };
      case 'bytes':
        return { v: { obj: 'bytes' }, line: e.line };
      case 'list': {
        const items = e.items.map((i) => this.eval(i));
        return tainted({ v: { obj: 'list', items: items.map((i) => i.v) }, line: e.line }, items);
      }
      case 'name': {
        const bound = this.scope.get(e.id);
        if (bound) return bound;
        if (BUILTINS.has(e.id)) return { v: fn(e.id), line: e.line };
        if (PYTHON_BUILTINS.has(e.id)) {
          throw this.error('TAC_UNSUPPORTED', e.line, `calling Python's ${e.id}() is not supported`);
        }
        throw this.error('TAC_INVALID', e.line, `name "${e.id}" is not defined`);
      }
      case 'attr':
        return { v: this.attribute(this.eval(e.obj), e.name, e.line), line: e.line };
      case 'subscript':
        return this.subscript(e);
      case 'not':
        return { v: !truthy(this.eval(e.operand).v), line: e.line };
      case 'boolop': {
        // Python's and/or give the first operand that decides (true for `or`, false for `and`), or the last, evaluating no further.
        let last!: Located;
        for (const operand of e.values) {
          last = this.eval(operand);
          if (truthy(last.v) === (e.op === 'or')) return last;
        }
        return last;
      }
      case 'compare':
        return { v: this.compare(e), line: e.line };
      case 'call':
        return this.call(e);
    }
  }

  private compare(e: Expr & { k: 'compare' }): boolean {
    const left = this.eval(e.left).v;
    const right = this.eval(e.right).v;
    this.chargeValues(e.line, [left, right]);
    switch (e.op) {
      case '==':
      case '!=':
        return equal(left, right) === (e.op === '==');
      case 'is':
      case 'is not': {
        // Identity is only meaningful here for None, True, False and objects; for str and int Python's answer depends on interning.
        const comparable = left === null || right === null || typeof left === 'boolean' || typeof right === 'boolean' || (isObj(left) && isObj(right));
        if (!comparable) throw this.error('TAC_UNSUPPORTED', e.line, `"${e.op}" between ${typeName(left)} and ${typeName(right)} is not supported: use ${e.op === 'is' ? '==' : '!='}`);
        return (left === right) === (e.op === 'is');
      }
      case 'in':
      case 'not in':
        return this.contains(right, left, e.line) === (e.op === 'in');
    }
  }

  private contains(container: Value, item: Value, line: number): boolean {
    if (typeof container === 'string') {
      if (typeof item !== 'string') throw this.error('TAC_INVALID', line, `"in <str>" requires a str on the left, not ${typeName(item)} (TypeError in Python)`);
      return container.includes(item);
    }
    if (isObj(container)) {
      if (container.obj === 'list') return container.items.some((i) => equal(i, item));
      if (container.obj === 'environ' || container.obj === 'keys') return typeof item === 'string' && this.environ.has(item);
    }
    throw this.error('TAC_UNSUPPORTED', line, `"in" with ${typeName(container)} on the right is not supported`);
  }

  private subscript(e: Expr & { k: 'subscript' }): Located {
    const container = this.eval(e.obj).v;
    const index = this.eval(e.index);
    if (isObj(container) && container.obj === 'environ') {
      const name = this.envKey(index, 'os.environ[...]');
      const value = this.environ.get(name);
      if (value === undefined) {
        const hint = index.origin === undefined ? `; os.environ.get(${JSON.stringify(name)}, default) gives a default` : '';
        throw this.error('TAC_INVALID', e.line, `os.environ[...]: the environment variable ${envName(index)} is not set (KeyError in Python)${hint}`);
      }
      return { v: value, line: e.line, origin: index.origin ?? name };
    }
    if (isObj(container) && container.obj === 'list') {
      if (typeof index.v !== 'number' && typeof index.v !== 'boolean') throw this.error('TAC_INVALID', e.line, `list indices must be integers, not ${typeName(index.v)}`);
      const n = Number(index.v);
      const i = n < 0 ? container.items.length + n : n;
      if (i < 0 || i >= container.items.length) throw this.error('TAC_INVALID', e.line, 'list index out of range (IndexError in Python)');
      return { v: container.items[i]!, line: e.line, ...(container.origin !== undefined ? { origin: container.origin } : {}) };
    }
    throw this.error('TAC_UNSUPPORTED', e.line, `subscripts of ${typeName(container)} are not supported (only os.environ[name] and lists)`);
  }

  /** An environment variable's name: Python's os.environ takes only str keys. */
  private envKey(key: Located, what: string): string {
    if (typeof key.v !== 'string') throw this.error('TAC_INVALID', key.line, `${what}: an environment variable's name must be a str, not ${typeName(key.v)}`);
    return key.v;
  }

  private attribute(of: Located, name: string, line: number): Value {
    const v = of.v;
    if (isObj(v)) {
      if (v.obj === 'module') {
        const found = MODULES[v.name]?.[name] ?? (MODULES[`${v.name}.${name}`] ? mod(`${v.name}.${name}`) : undefined);
        if (found) return found;
        throw this.error('TAC_UNSUPPORTED', line, `${v.name}.${name} is not supported`);
      }
      if (v.obj === 'function' && v.name === 'LogFile' && name === 'fromFullPath') return fn('LogFile.fromFullPath');
      if (v.obj === 'observer' && name === 'emit') return { obj: 'emit', target: v.target };
      if (v.obj === 'application' && name === 'setComponent') return { obj: 'method', self: v, name };
      if (v.obj === 'worker' && name === 'setServiceParent') return { obj: 'method', self: v, name };
      if (v.obj === 'environ' && ENVIRON_METHODS.has(name)) return { obj: 'method', self: v, name: `os.environ.${name}` };
    }
    if (typeof v === 'string' && STR_METHODS.has(name)) return { obj: 'method', self: v, name: `str.${name}`, ...(of.origin !== undefined ? { origin: of.origin } : {}) };
    throw this.error('TAC_UNSUPPORTED', line, `the attribute .${name} of ${typeName(v)} is not supported`);
  }

  /** A call, charged what it reads and makes; what it makes from a value of the environment is of the environment too. */
  private call(e: Expr & { k: 'call' }): Located {
    const callee = this.eval(e.fn).v;
    const args = e.args.map((a) => this.eval(a));
    const kwargs = new Map(e.kwargs.map((kw) => [kw.name, this.eval(kw.value)] as const));
    const self: Located[] = isObj(callee) && callee.obj === 'method' ? [{ v: callee.self, line: e.line, ...(callee.origin !== undefined ? { origin: callee.origin } : {}) }] : [];
    const inputs = [...self, ...args, ...kwargs.values()];
    this.chargeValues(e.line, inputs.map((a) => a.v));
    const result = this.invoke(callee, args, kwargs, e);
    this.chargeValues(e.line, [result.v]);
    return typeof result.v === 'string' || typeof result.v === 'number' || (isObj(result.v) && result.v.obj === 'list') ? tainted(result, inputs) : result;
  }

  private invoke(callee: Value, args: Located[], kwargs: Map<string, Located>, e: Expr & { k: 'call' }): Located {
    if (!isObj(callee) || (callee.obj !== 'function' && callee.obj !== 'method')) {
      throw this.error('TAC_INVALID', e.line, `${typeName(callee)} is not callable`);
    }
    if (callee.obj === 'method' && callee.name.startsWith('os.environ.')) return this.environCall(callee.name, args, kwargs, e.line);
    if (callee.obj === 'method' && typeof callee.self === 'string') return { v: this.strCall(callee.self, callee.name, args, kwargs, e.line), line: e.line };
    const name = callee.name;
    const at = (v: Value): Located => ({ v, line: e.line });
    switch (name) {
      case 'os.getenv':
        return this.environCall('os.environ.get', args, kwargs, e.line, 'os.getenv');
      case 'os.path.join':
        this.noKeywords(name, kwargs, e.line);
        return at(pythonJoin(...args.map((a) => this.str(a, `an argument of ${name}()`))));
      case 'os.path.abspath':
        return at(pythonAbspath(this.cwd, this.str(this.single(name, args, kwargs, e.line), `the argument of ${name}()`)));
      case 'os.path.dirname':
        return at(pythonDirname(this.str(this.single(name, args, kwargs, e.line), `the argument of ${name}()`)));
      case 'fnmatch.fnmatch': {
        const a = this.bind(name, ['name', 'pat'], 2, args, kwargs, e.line);
        return at(fnmatch(this.str(a.get('name')!, 'the name given to fnmatch()'), this.str(a.get('pat')!, 'the pattern given to fnmatch()')));
      }
      case 'int':
      case 'str':
      case 'list':
      case 'bool':
      case 'len':
        return this.builtin(name, args, kwargs, e.line);
      case 'Application': {
        const app = this.bind(name, ['name', 'uid', 'gid'], 1, args, kwargs, e.line);
        this.str(app.get('name')!, 'the application name');
        return at({ obj: 'application' });
      }
      case 'LogFile.fromFullPath': {
        const a = this.bind(name, LOGFILE_PARAMS, 1, args, kwargs, e.line);
        const path = resolve(this.cwd, this.str(a.get('filename')!, 'the log file name'));
        const none = { v: null, line: e.line };
        return at({ obj: 'logfile', path, rotateLength: a.get('rotateLength') ?? { v: 1_000_000, line: e.line }, maxRotatedFiles: a.get('maxRotatedFiles') ?? none, line: e.line });
      }
      case 'FileLogObserver': {
        const f = this.single(name, args, kwargs, e.line);
        if (!isObj(f.v) || (f.v.obj !== 'logfile' && f.v.obj !== 'stream')) throw this.error('TAC_UNSUPPORTED', f.line, 'FileLogObserver() of anything but a LogFile, sys.stdout or sys.stderr is not supported');
        return at({ obj: 'observer', target: f.v });
      }
      case 'textFileLogObserver': {
        const f = this.single(name, args, kwargs, e.line);
        if (!isObj(f.v) || f.v.obj !== 'stream') throw this.error('TAC_UNSUPPORTED', f.line, 'textFileLogObserver() of anything but sys.stdout or sys.stderr is not supported');
        return at({ obj: 'textObserver', target: f.v });
      }
      case 'LogLevelFilterPredicate':
        if (args.length > 0 || kwargs.size > 0) throw this.error('TAC_UNSUPPORTED', e.line, 'LogLevelFilterPredicate() with arguments is not supported: bbgate logs at level info, its default');
        return at({ obj: 'predicate' });
      case 'FilteringLogObserver': {
        const a = this.bind(name, ['observer', 'predicates'], 2, args, kwargs, e.line);
        const observer = a.get('observer')!;
        const predicates = a.get('predicates')!;
        if (!isObj(observer.v) || observer.v.obj !== 'textObserver') throw this.error('TAC_UNSUPPORTED', observer.line, 'FilteringLogObserver() is supported only around textFileLogObserver(sys.stdout) or (sys.stderr)');
        if (!isObj(predicates.v) || predicates.v.obj !== 'list' || !predicates.v.items.every((p) => isObj(p) && p.obj === 'predicate')) {
          throw this.error('TAC_UNSUPPORTED', predicates.line, 'FilteringLogObserver() is supported only with predicates=[LogLevelFilterPredicate()]');
        }
        return at(observer.v);
      }
      case 'Worker': {
        // The arguments are bound to Worker's signature by ./read.ts, which knows it.
        const worker: WorkerObj = { obj: 'worker', args, kwargs, line: e.line };
        this.workers.push(worker);
        return at(worker);
      }
      case 'setComponent': {
        this.noKeywords(name, kwargs, e.line);
        const [iface, component] = args;
        const target = args.length === 2 && isObj(iface!.v) && iface!.v.obj === 'interface' ? logTarget(component!.v) : undefined;
        if (!target) {
          throw this.error('TAC_UNSUPPORTED', e.line, 'application.setComponent() is supported only as setComponent(ILogObserver, FileLogObserver(logfile or sys.stdout).emit) or setComponent(ILogObserver, textFileLogObserver(sys.stdout)), maybe inside a FilteringLogObserver');
        }
        const app = (callee as Obj & { obj: 'method'; self: ApplicationObj }).self;
        app.log = target;
        return at(null);
      }
      case 'setServiceParent': {
        const parent = this.single(name, args, kwargs, e.line);
        if (!isObj(parent.v) || parent.v.obj !== 'application') throw this.error('TAC_UNSUPPORTED', e.line, 'setServiceParent() of anything but the application is not supported');
        (callee as Obj & { obj: 'method'; self: WorkerObj }).self.parent = parent.v;
        return at(null);
      }
      default:
        throw this.error('TAC_UNSUPPORTED', e.line, `calling ${name}() is not supported`);
    }
  }

  private environCall(name: string, args: Located[], kwargs: Map<string, Located>, line: number, shown = name): Located {
    this.noKeywords(shown, kwargs, line);
    const method = name.slice('os.environ.'.length);
    if (method === 'keys') {
      if (args.length > 0) throw this.error('TAC_INVALID', line, `${shown}() takes no arguments (${args.length} given)`);
      return { v: { obj: 'keys' }, line };
    }
    // get, pop and setdefault all take the name and an optional default.
    if (args.length < 1 || args.length > 2) throw this.error('TAC_INVALID', line, `${shown}() takes 1 or 2 arguments (${args.length} given)`);
    const key = this.envKey(args[0]!, `${shown}()`);
    // A name that came from the environment is named by where it came from.
    const origin = args[0]!.origin ?? key;
    const value = this.environ.get(key);
    const fallback: Located = args[1] ?? { v: null, line };
    switch (method) {
      case 'get':
        return value === undefined ? { ...fallback, origin, defaulted: true } : { v: value, line, origin };
      case 'pop':
        if (value === undefined && args.length < 2) throw this.error('TAC_INVALID', line, `${shown}(): the environment variable ${envName(args[0]!)} is not set (KeyError in Python)`);
        this.environ.delete(key);
        return value === undefined ? { ...fallback, origin, defaulted: true } : { v: value, line, origin };
      default: {
        if (value !== undefined) return { v: value, line, origin };
        if (typeof fallback.v !== 'string') throw this.error('TAC_INVALID', fallback.line, `os.environ values must be str, not ${typeName(fallback.v)}`);
        this.environ.set(key, fallback.v);
        return { ...fallback, origin };
      }
    }
  }

  private strCall(s: string, name: string, args: Located[], kwargs: Map<string, Located>, line: number): Value {
    const method = name.slice('str.'.length);
    switch (method) {
      case 'split': {
        const a = this.bind(name, ['sep', 'maxsplit'], 0, args, kwargs, line);
        const sep = a.get('sep')?.v ?? null;
        const maxsplit = a.get('maxsplit')?.v ?? -1;
        if (sep !== null && typeof sep !== 'string') throw this.error('TAC_INVALID', line, `str.split(): the separator must be a str or None, not ${typeName(sep)}`);
        if (sep === '') throw this.error('TAC_INVALID', line, 'str.split(): empty separator (ValueError in Python)');
        if (typeof maxsplit !== 'number') throw this.error('TAC_INVALID', line, `str.split(): maxsplit must be an int, not ${typeName(maxsplit)}`);
        return { obj: 'list', items: pythonSplit(s, sep, maxsplit) };
      }
      case 'strip':
      case 'lstrip':
      case 'rstrip':
      case 'lower':
      case 'upper':
        if (args.length > 0 || kwargs.size > 0) throw this.error('TAC_UNSUPPORTED', line, `${name}() with arguments is not supported`);
        if (method === 'lower') return s.toLowerCase();
        if (method === 'upper') return s.toUpperCase();
        return pythonStrip(s, method === 'strip' ? 'both' : method === 'lstrip' ? 'left' : 'right');
      default: {
        const prefix = this.single(name, args, kwargs, line);
        const p = this.str(prefix, `the argument of ${name}()`);
        return method === 'startswith' ? s.startsWith(p) : s.endsWith(p);
      }
    }
  }

  private builtin(name: string, args: Located[], kwargs: Map<string, Located>, line: number): Located {
    this.noKeywords(name, kwargs, line);
    if (name === 'list' && args.length === 0) return { v: { obj: 'list', items: [] }, line };
    if (name === 'str' && args.length === 0) return { v: '', line };
    if (args.length !== 1) throw this.error(name === 'int' && args.length === 2 ? 'TAC_UNSUPPORTED' : 'TAC_INVALID', line, `${name}() with ${args.length} arguments is not supported here: give it one`);
    const a = args[0]!;
    const from = a.origin ? (a.defaulted ? ` (the default for the unset environment variable ${a.origin})` : ` (from the environment variable ${a.origin})`) : '';
    switch (name) {
      case 'int': {
        if (typeof a.v === 'number') return { ...a, line };
        if (typeof a.v === 'boolean') return { v: Number(a.v), line };
        if (typeof a.v !== 'string') throw this.error('TAC_INVALID', line, `int() argument must be a string or a number, not ${typeName(a.v)}${from}${a.v === null && a.origin ? ': the variable is not set and there is no default' : ''}`);
        const digits = pythonIntDigits(a.v);
        // The text is not quoted: it could be anything the environment holds.
        if (digits === undefined) throw this.error('TAC_INVALID', line, `invalid literal for int() with base 10${from}: not a whole number (ValueError in Python)`);
        const n = Number(digits);
        if (!Number.isSafeInteger(n)) throw this.error('TAC_UNSUPPORTED', line, `int()${from}: numbers beyond ${Number.MAX_SAFE_INTEGER} are not supported`);
        return { v: n, line, ...(a.origin ? { origin: a.origin } : {}) };
      }
      case 'str':
        if (isObj(a.v)) throw this.error('TAC_UNSUPPORTED', line, `str() of ${typeName(a.v)} is not supported`);
        return { v: a.v === null ? 'None' : typeof a.v === 'boolean' ? (a.v ? 'True' : 'False') : String(a.v), line };
      case 'bool':
        return { v: truthy(a.v), line };
      case 'len':
        if (typeof a.v === 'string') return { v: [...a.v].length, line };
        if (isObj(a.v) && a.v.obj === 'list') return { v: a.v.items.length, line };
        if (isObj(a.v) && (a.v.obj === 'environ' || a.v.obj === 'keys')) return { v: this.environ.size, line };
        throw this.error('TAC_INVALID', line, `${typeName(a.v)} has no len() (TypeError in Python)`);
      default:
        return { v: { obj: 'list', items: this.items(a, 'list() of', line).map((i) => i.v) }, line };
    }
  }

  /** What iterating a value gives, as a snapshot (an environment's names in its order), charged an item each. */
  private items(a: Located, what: string, line: number): Located[] {
    const v = a.v;
    const values = typeof v === 'string' ? [...v] : isObj(v) && v.obj === 'list' ? v.items : isObj(v) && (v.obj === 'environ' || v.obj === 'keys') ? [...this.environ.keys()] : undefined;
    if (values) {
      this.charge(values.length, line);
      // An environment's names are not secret; the characters of a value, or a list's items, are as its origin says.
      const origin = typeof v === 'string' ? a.origin : isObj(v) && v.obj === 'list' ? v.origin : undefined;
      return values.map((i) => ({ v: i, line: a.line, ...(origin !== undefined ? { origin } : {}) }));
    }
    throw this.error(v === null || typeof v !== 'object' ? 'TAC_INVALID' : 'TAC_UNSUPPORTED', a.line, `${what} ${typeName(v)} is not supported${v === null || typeof v !== 'object' ? ` (${typeName(v)} is not iterable)` : ''}`);
  }

  private noKeywords(name: string, kwargs: Map<string, Located>, line: number): void {
    if (kwargs.size > 0) throw this.error('TAC_INVALID', line, `${name}() takes no keyword arguments`);
  }

  private single(name: string, args: Located[], kwargs: Map<string, Located>, line: number): Located {
    this.noKeywords(name, kwargs, line);
    if (args.length !== 1) throw this.error('TAC_INVALID', line, `${name}() takes exactly one argument (${args.length} given)`);
    return args[0]!;
  }

  /** Python's binding of a call's arguments to a signature, with its errors. */
  private bind(name: string, params: string[], required: number, args: Located[], kwargs: Map<string, Located>, line: number): Map<string, Located> {
    return bindArguments((l, what) => this.error('TAC_INVALID', l, what), name, params, required, args, kwargs, line);
  }

  private str(a: Located, what: string): string {
    if (typeof a.v !== 'string') {
      const unset = a.v === null && a.origin ? `: the environment variable ${a.origin} is not set` : '';
      throw this.error(isObj(a.v) && a.v.obj === 'bytes' ? 'TAC_UNSUPPORTED' : 'TAC_INVALID', a.line, `${what} must be a str, not ${typeName(a.v)}${unset}`);
    }
    return a.v;
  }
}

const ENVIRON_METHODS = new Set(['get', 'keys', 'pop', 'setdefault']);
const STR_METHODS = new Set(['split', 'strip', 'lstrip', 'rstrip', 'lower', 'upper', 'startswith', 'endswith']);

/** The log target of what a tac gives setComponent(ILogObserver, ...), if bbgate supports it. */
function logTarget(component: Value): LogTarget | undefined {
  if (!isObj(component)) return undefined;
  if (component.obj === 'emit') return component.target;
  if (component.obj === 'textObserver') return component.target;
  return undefined;
}

/** `result`, marked as of the environment when one of `inputs` is (a list through its `origin` too). */
function tainted(result: Located, inputs: Located[]): Located {
  const origin = result.origin ?? inputs.find((i) => i.origin !== undefined)?.origin;
  if (origin === undefined) return result;
  const v = isObj(result.v) && result.v.obj === 'list' ? { ...result.v, origin } : result.v;
  return { ...result, v, origin };
}

/** An environment variable's name for a message: a name read from the environment is not quoted, but said where it came from. */
function envName(key: Located): string {
  return key.origin === undefined ? String(key.v) : `whose name is ${describeValue(key)}`;
}

/**
 * The work a value stands for, in steps: a string's characters, a list's items (and theirs);
 * os.environ itself is free, and what iterates it is charged its names.
 */
function workSize(v: Value): number {
  if (typeof v === 'string') return Math.ceil(v.length / CHARS_PER_STEP);
  if (isObj(v) && v.obj === 'list') return v.items.reduce((sum: number, item) => sum + workSize(item), v.items.length);
  return 0;
}
