// Reads a buildbot.tac without Python: runs its statements over a small model of
// the objects a worker tac touches (os.path, Application, LogFile, Worker), then
// checks the Worker's arguments as buildbot-worker 3.7 would use them.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BbgateError, isBbgateError } from '../../errors.js';
import { parseEndpoint } from '../../address/connection-string.js';
import type { Endpoint } from '../../address/endpoint.js';
import { masterConnectionString } from '../../address/master-address.js';
import { parseProxySetting, type ProxySetting } from '../../address/proxy-setting.js';
import { DEFAULT_MAXDELAY, type WorkerConfig } from '../config.js';
import { pythonDirname, pythonJoin } from '../python/os-path.js';
import { TacError } from './errors.js';
import { parseTacSource, type Alias, type Expr, type Stmt } from './parse.js';

type Obj =
  | { obj: 'module'; name: string }
  | { obj: 'function'; name: string }
  | { obj: 'interface'; name: string }
  | { obj: 'bytes' }
  | { obj: 'application'; log?: Obj & { obj: 'logfile' } }
  | { obj: 'logfile'; path: string; rotateLength: Located; maxRotatedFiles: Located; line: number }
  | { obj: 'observer'; logfile: Obj & { obj: 'logfile' } }
  | { obj: 'emit'; logfile: Obj & { obj: 'logfile' } }
  | { obj: 'worker'; args: Map<string, Located>; line: number; parent?: Obj }
  | { obj: 'method'; self: Obj; name: string };

type Value = string | number | boolean | null | Obj;

/** A value and the line its literal (or the call that made it) is on, which is where errors about it point. */
interface Located {
  v: Value;
  line: number;
}

const fn = (name: string): Obj => ({ obj: 'function', name });
const mod = (name: string): Obj => ({ obj: 'module', name });

/** The modules a tac imports, and what bbgate knows of each. */
const MODULES: Record<string, Record<string, Obj>> = {
  os: { path: mod('os.path') },
  'os.path': { join: fn('os.path.join'), abspath: fn('os.path.abspath'), dirname: fn('os.path.dirname') },
  twisted: {},
  'twisted.application': { service: mod('twisted.application.service') },
  'twisted.application.service': { Application: fn('Application') },
  'twisted.python': {},
  'twisted.python.logfile': { LogFile: fn('LogFile') },
  'twisted.python.log': { ILogObserver: { obj: 'interface', name: 'ILogObserver' }, FileLogObserver: fn('FileLogObserver') },
  buildbot_worker: {},
  'buildbot_worker.bot': { Worker: fn('Worker') },
  'buildbot_worker.pb': { Worker: fn('Worker') },
};

/** buildbot_worker.pb.Worker's parameters, in order (3.7). */
const WORKER_PARAMS = [
  'buildmaster_host', 'port', 'name', 'passwd', 'basedir', 'keepalive', 'usePTY', 'keepaliveTimeout', 'umask', 'maxdelay', 'numcpus',
  'unicode_encoding', 'protocol', 'useTls', 'allow_shutdown', 'maxRetries', 'connection_string', 'delete_leftover_dirs', 'proxy_connection_string',
];
const WORKER_REQUIRED = 6;

/** LogFile.fromFullPath(filename, rotateLength=1000000, defaultMode=None, maxRotatedFiles=None). */
const LOGFILE_PARAMS = ['filename', 'rotateLength', 'defaultMode', 'maxRotatedFiles'];

/**
 * Reads the worker's configuration from a buildbot.tac, as written by
 * `buildbot-worker create-worker`, by `bbgate create-worker`, or edited by
 * hand. Throws a TacError (TAC_SYNTAX, TAC_UNSUPPORTED, TAC_INVALID) naming
 * the file and line, or ENDPOINT_SYNTAX / PROXY_SYNTAX for a connection or
 * proxy string that does not parse. The connection and proxy come back parsed
 * (and as written, for the log), so that nothing parses them again.
 */
export function readTac(path: string): WorkerConfig {
  const file = resolve(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new TacError('TAC_INVALID', file, 0, `cannot read it: ${(err as Error).message}`, { cause: err });
  }
  let source: string;
  try {
    source = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new TacError('TAC_SYNTAX', file, 0, 'it is not UTF-8 text, which Python source must be unless it declares another encoding');
  }
  return parseTac(source, file);
}

/** `readTac` for a tac's text; `file` is its absolute path (a relocatable tac's basedir is its directory). */
export function parseTac(source: string, file: string): WorkerConfig {
  const cookie = /^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)/m.exec(source.split(/\r?\n/, 2).join('\n'));
  if (cookie && !/^utf[-_]?8$/i.test(cookie[1]!)) {
    throw new TacError('TAC_UNSUPPORTED', file, 1, `the encoding declaration "${cookie[1]}" is not supported: save the tac as UTF-8`);
  }
  const evaluator = new Evaluator(file);
  evaluator.run(parseTacSource(source, file));
  return evaluator.config();
}

class Evaluator {
  private readonly env = new Map<string, Located>();
  private readonly workers: (Obj & { obj: 'worker' })[] = [];
  private readonly cwd: string;

  constructor(private readonly file: string) {
    // twistd runs the tac from its own directory, which is where relative paths start.
    this.cwd = dirname(file);
    this.env.set('__file__', { v: file, line: 0 });
  }

  private error(code: 'TAC_SYNTAX' | 'TAC_UNSUPPORTED' | 'TAC_INVALID', line: number, what: string): TacError {
    return new TacError(code, this.file, line, what);
  }

  run(body: Stmt[]): void {
    for (const stmt of body) this.statement(stmt);
  }

  private statement(s: Stmt): void {
    switch (s.k) {
      case 'import':
        for (const m of s.modules) this.importModule(m, s.line);
        return;
      case 'from':
        this.fromImport(s.module, s.names, s.line);
        return;
      case 'assign':
        this.env.set(s.target, this.eval(s.value));
        return;
      case 'expr':
        this.eval(s.value);
        return;
      case 'if': {
        const taken = s.branches.find((b) => truthy(this.eval(b.test).v));
        this.run(taken ? taken.body : s.orelse);
        return;
      }
      case 'pass':
        return;
    }
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
    this.env.set(bound, { v: mod(as ? name : name.split('.')[0]!), line });
  }

  private fromImport(module: string, names: Alias[], line: number): void {
    const m = this.knownModule(module, line);
    for (const { name, as } of names) {
      const value = m[name] ?? (MODULES[`${module}.${name}`] ? mod(`${module}.${name}`) : undefined);
      if (!value) throw this.error('TAC_UNSUPPORTED', line, `"from ${module} import ${name}" is not supported (bbgate knows ${Object.keys(m).join(', ') || 'nothing'} from ${module})`);
      this.env.set(as ?? name, { v: value, line });
    }
  }

  private eval(e: Expr): Located {
    switch (e.k) {
      case 'const':
        return { v: e.value, line: e.line };
      case 'bytes':
        return { v: { obj: 'bytes' }, line: e.line };
      case 'name': {
        const bound = this.env.get(e.id);
        if (!bound) {
          if (['print', 'open', 'exec', 'eval', '__import__', 'getattr', 'setattr', 'int', 'str', 'len'].includes(e.id)) {
            throw this.error('TAC_UNSUPPORTED', e.line, `calling Python's ${e.id}() is not supported`);
          }
          throw this.error('TAC_INVALID', e.line, `name "${e.id}" is not defined`);
        }
        return bound;
      }
      case 'attr':
        return { v: this.attribute(this.eval(e.obj).v, e.name, e.line), line: e.line };
      case 'compare': {
        const left = this.eval(e.left).v;
        const right = this.eval(e.right).v;
        if (isObj(left) || isObj(right)) throw this.error('TAC_UNSUPPORTED', e.line, `comparing ${typeName(left)} with ${typeName(right)} is not supported`);
        return { v: (left === right) === (e.op === '=='), line: e.line };
      }
      case 'call':
        return { v: this.call(e), line: e.line };
    }
  }

  private attribute(v: Value, name: string, line: number): Value {
    if (isObj(v)) {
      if (v.obj === 'module') {
        const found = MODULES[v.name]?.[name] ?? (MODULES[`${v.name}.${name}`] ? mod(`${v.name}.${name}`) : undefined);
        if (found) return found;
        throw this.error('TAC_UNSUPPORTED', line, `${v.name}.${name} is not supported`);
      }
      if (v.obj === 'function' && v.name === 'LogFile' && name === 'fromFullPath') return fn('LogFile.fromFullPath');
      if (v.obj === 'observer' && name === 'emit') return { obj: 'emit', logfile: v.logfile };
      if (v.obj === 'application' && name === 'setComponent') return { obj: 'method', self: v, name };
      if (v.obj === 'worker' && name === 'setServiceParent') return { obj: 'method', self: v, name };
    }
    throw this.error('TAC_UNSUPPORTED', line, `the attribute .${name} of ${typeName(v)} is not supported`);
  }

  private call(e: Expr & { k: 'call' }): Value {
    const callee = this.eval(e.fn).v;
    const args = e.args.map((a) => this.eval(a));
    const kwargs = new Map(e.kwargs.map((kw) => [kw.name, this.eval(kw.value)] as const));
    if (!isObj(callee) || (callee.obj !== 'function' && callee.obj !== 'method')) {
      throw this.error('TAC_INVALID', e.line, `${typeName(callee)} is not callable`);
    }
    const name = callee.name;
    switch (name) {
      case 'os.path.join':
        this.noKeywords(name, kwargs, e.line);
        return pythonJoin(...args.map((a) => this.str(a, `an argument of ${name}()`)));
      case 'os.path.abspath':
        return resolve(this.cwd, this.str(this.single(name, args, kwargs, e.line), `the argument of ${name}()`));
      case 'os.path.dirname':
        return pythonDirname(this.str(this.single(name, args, kwargs, e.line), `the argument of ${name}()`));
      case 'Application': {
        const app = this.bind(name, ['name', 'uid', 'gid'], 1, args, kwargs, e.line);
        this.str(app.get('name')!, 'the application name');
        return { obj: 'application' };
      }
      case 'LogFile.fromFullPath': {
        const a = this.bind(name, LOGFILE_PARAMS, 1, args, kwargs, e.line);
        const path = resolve(this.cwd, this.str(a.get('filename')!, 'the log file name'));
        const none = { v: null, line: e.line };
        return { obj: 'logfile', path, rotateLength: a.get('rotateLength') ?? { v: 1_000_000, line: e.line }, maxRotatedFiles: a.get('maxRotatedFiles') ?? none, line: e.line };
      }
      case 'FileLogObserver': {
        const f = this.single(name, args, kwargs, e.line);
        if (!isObj(f.v) || f.v.obj !== 'logfile') throw this.error('TAC_UNSUPPORTED', f.line, 'FileLogObserver() of anything but a LogFile is not supported');
        return { obj: 'observer', logfile: f.v };
      }
      case 'Worker': {
        const bound = this.bind(name, WORKER_PARAMS, WORKER_REQUIRED, args, kwargs, e.line);
        const worker: Obj & { obj: 'worker' } = { obj: 'worker', args: bound, line: e.line };
        this.workers.push(worker);
        return worker;
      }
      case 'setComponent': {
        this.noKeywords(name, kwargs, e.line);
        const [iface, component] = args;
        if (args.length !== 2 || !isObj(iface!.v) || iface!.v.obj !== 'interface' || !isObj(component!.v) || component!.v.obj !== 'emit') {
          throw this.error('TAC_UNSUPPORTED', e.line, 'application.setComponent() is supported only as setComponent(ILogObserver, FileLogObserver(logfile).emit)');
        }
        (callee as Obj & { obj: 'method'; self: Obj & { obj: 'application' } }).self.log = component!.v.logfile;
        return null;
      }
      case 'setServiceParent': {
        const parent = this.single(name, args, kwargs, e.line);
        if (!isObj(parent.v) || parent.v.obj !== 'application') throw this.error('TAC_UNSUPPORTED', e.line, 'setServiceParent() of anything but the application is not supported');
        (callee as Obj & { obj: 'method'; self: Obj & { obj: 'worker' } }).self.parent = parent.v;
        return null;
      }
      default:
        throw this.error('TAC_UNSUPPORTED', e.line, `calling ${name}() is not supported`);
    }
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
    if (args.length > params.length) throw this.error('TAC_INVALID', line, `${name}() takes at most ${params.length} positional arguments (${args.length} given)`);
    const bound = new Map<string, Located>();
    args.forEach((a, i) => bound.set(params[i]!, a));
    for (const [key, value] of kwargs) {
      if (!params.includes(key)) throw this.error('TAC_INVALID', value.line, `${name}() got an unexpected keyword argument "${key}"`);
      if (bound.has(key)) throw this.error('TAC_INVALID', value.line, `${name}() got multiple values for argument "${key}"`);
      bound.set(key, value);
    }
    const missing = params.slice(0, required).filter((p) => !bound.has(p));
    if (missing.length > 0) throw this.error('TAC_INVALID', line, `${name}() is missing required argument${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
    return bound;
  }

  private str(a: Located, what: string): string {
    if (typeof a.v !== 'string') throw this.error(isObj(a.v) && a.v.obj === 'bytes' ? 'TAC_UNSUPPORTED' : 'TAC_INVALID', a.line, `${what} must be a str, not ${typeName(a.v)}`);
    return a.v;
  }

  config(): WorkerConfig {
    const app = this.env.get('application');
    if (!app || !isObj(app.v) || app.v.obj !== 'application') {
      throw this.error('TAC_INVALID', 0, "it defines no `application = service.Application('buildbot-worker')`, which is what twistd runs");
    }
    const attached = this.workers.filter((w) => w.parent === app.v);
    if (attached.length === 0) throw this.error('TAC_INVALID', 0, 'no Worker(...) is attached to the application (s.setServiceParent(application))');
    if (attached.length > 1) throw this.error('TAC_UNSUPPORTED', attached[1]!.line, 'more than one Worker in a tac is not supported');
    return new WorkerArguments(this.file, this.cwd, attached[0]!, app.v.log).config();
  }
}

/** The Worker's arguments, checked and turned into a WorkerConfig. */
class WorkerArguments {
  private readonly args: Map<string, Located>;

  constructor(
    private readonly file: string,
    private readonly cwd: string,
    private readonly worker: Obj & { obj: 'worker' },
    private readonly log: (Obj & { obj: 'logfile' }) | undefined,
  ) {
    this.args = worker.args;
  }

  private arg(name: string): Located {
    return this.args.get(name) ?? { v: null, line: this.worker.line };
  }

  private invalid(a: Located, what: string, code: 'TAC_INVALID' | 'TAC_UNSUPPORTED' = 'TAC_INVALID'): TacError {
    return new TacError(code, this.file, a.line, what);
  }

  private string(name: string, secret = false): string | undefined {
    const a = this.arg(name);
    if (a.v === null) return undefined;
    if (typeof a.v === 'string') return a.v;
    const shown = secret ? typeName(a.v) : describeValue(a.v);
    if (isObj(a.v) && a.v.obj === 'bytes') throw this.invalid(a, `Worker's ${name} as bytes is not supported: write a str`, 'TAC_UNSUPPORTED');
    throw this.invalid(a, `Worker's ${name} must be a str${secret ? '' : ' or None'}, not ${shown}`);
  }

  private requiredString(name: string, secret = false): string {
    const s = this.string(name, secret);
    if (s === undefined) throw this.invalid(this.arg(name), `Worker's ${name} must be a str, not None`);
    return s;
  }

  private integer(name: string, min: number, max: number, hint = ''): number | undefined {
    const a = this.arg(name);
    if (a.v === null) return undefined;
    if (typeof a.v !== 'number' || a.v < min || a.v > max) {
      throw this.invalid(a, `Worker's ${name} must be None or a whole number from ${formatBound(name, min)} to ${formatBound(name, max)}${hint}, not ${describeValue(a.v)}`);
    }
    return a.v;
  }

  config(): WorkerConfig {
    const usePty = this.arg('usePTY');
    if (usePty.v !== null) throw this.invalid(usePty, 'usePTY must be None: buildbot-worker no longer supports a worker-side usePTY');
    // keepaliveTimeout is accepted and ignored by buildbot-worker 3.7, so it is here too.
    const protocol = this.protocol();
    const basedir = resolve(this.cwd, this.requiredString('basedir'));
    const connection = this.connection();
    const proxy = this.proxy();
    const keepalive = this.integer('keepalive', 0, 86_400 * 365) ?? 0;
    const umask = this.integer('umask', 0, 0o777, ' (octal: 0o022)');
    const maxdelay = this.integer('maxdelay', 0, 86_400 * 365) ?? DEFAULT_MAXDELAY;
    const maxretries = this.integer('maxRetries', 0, Number.MAX_SAFE_INTEGER);
    const numcpus = this.integer('numcpus', 0, 1_000_000);
    const allowShutdown = this.allowShutdown();
    const unicodeEncoding = this.string('unicode_encoding');
    if (this.log && this.log.path !== resolve(basedir, 'twistd.log')) {
      throw this.invalid({ v: null, line: this.log.line }, `the LogFile writes to ${this.log.path}, but bbgate logs to twistd.log in the Worker's basedir (${basedir}); point the LogFile there`, 'TAC_UNSUPPORTED');
    }
    return {
      basedir,
      workername: this.requiredString('name'),
      password: this.requiredString('passwd', true),
      ...connection,
      ...proxy,
      keepalive,
      ...(umask !== undefined ? { umask } : {}),
      maxdelay,
      // buildbot-worker tests `if maxRetries and ...`: 0 means forever, as None does.
      ...(maxretries ? { maxretries } : {}),
      ...(numcpus !== undefined ? { numcpus } : {}),
      ...(allowShutdown !== undefined ? { allowShutdown } : {}),
      deleteLeftoverDirs: truthy(this.arg('delete_leftover_dirs').v),
      protocol,
      ...(unicodeEncoding !== undefined ? { unicodeEncoding } : {}),
      ...(this.log ? { logRotate: this.logRotate(this.log) } : {}),
    };
  }

  private protocol(): 'pb' {
    const a = this.args.get('protocol');
    if (a === undefined) return 'pb';
    if (a.v === 'pb') return 'pb';
    if (a.v === 'msgpack_experimental_v7') {
      throw this.invalid(a, "protocol 'msgpack_experimental_v7' is not supported by this version of bbgate: use protocol = 'pb' (which the master accepts when its c['protocols'] has a 'pb' port)", 'TAC_UNSUPPORTED');
    }
    throw this.invalid(a, `unknown protocol ${describeValue(a.v)}: buildbot-worker knows 'pb' and 'msgpack_experimental_v7'`);
  }

  /** The connection string (or the one buildbot-worker builds from host, port and useTls) and the endpoint it parses to. */
  private connection(): { connection: string; endpoint: Endpoint } {
    const stringArg = this.arg('connection_string');
    const given = this.string('connection_string');
    const host = this.arg('buildmaster_host');
    const port = this.arg('port');
    if (given !== undefined) {
      if (host.v !== null || port.v !== null) {
        throw this.invalid(stringArg, 'with a connection_string, buildmaster_host and port must be None (buildbot-worker refuses both)');
      }
      return { connection: given, endpoint: this.checked(stringArg, 'connection_string', given, parseEndpoint) };
    }
    const hostName = this.string('buildmaster_host');
    if (hostName === undefined) throw this.invalid(host, 'buildmaster_host is None and there is no connection_string: the worker has no master to connect to');
    const portNumber = typeof port.v === 'string' && /^\d+$/.test(port.v) ? Number(port.v) : port.v;
    if (typeof portNumber !== 'number' || !Number.isInteger(portNumber)) throw this.invalid(port, `port must be a whole number, not ${describeValue(port.v)}`);
    const connection = masterConnectionString(hostName, portNumber, truthy(this.arg('useTls').v));
    return { connection, endpoint: this.checked(port, 'buildmaster_host and port', connection, parseEndpoint) };
  }

  /** buildbot-worker's proxy strings are tcp: endpoints; bbgate also takes http(s):// URLs, pac+ PAC locations, and a proxy together with a connection_string. */
  private proxy(): { proxyConnectionString?: string; proxy?: ProxySetting } {
    const a = this.arg('proxy_connection_string');
    const s = this.string('proxy_connection_string');
    if (s === undefined || s === '') return {};
    return { proxyConnectionString: s, proxy: this.checked(a, 'proxy_connection_string', s, parseProxySetting) };
  }

  /** Runs a parser, giving its error (ENDPOINT_SYNTAX, PROXY_SYNTAX) the tac's file and line. */
  private checked<T>(a: Located, what: string, value: string, parse: (s: string) => T): T {
    try {
      return parse(value);
    } catch (err) {
      if (!isBbgateError(err)) throw err;
      throw new BbgateError(err.code, `${this.file}:${a.line}: ${what}: ${err.message}`, { cause: err });
    }
  }

  private allowShutdown(): 'signal' | 'file' | undefined {
    const a = this.arg('allow_shutdown');
    if (a.v === null) return undefined;
    if (a.v === 'signal' || a.v === 'file') return a.v;
    throw this.invalid(a, `allow_shutdown must be None, 'signal' or 'file', not ${describeValue(a.v)}`);
  }

  private logRotate(log: Obj & { obj: 'logfile' }): { size: number; count: number | null } {
    const size = log.rotateLength;
    const count = log.maxRotatedFiles;
    if (size.v !== null && (typeof size.v !== 'number' || size.v < 0)) {
      throw this.invalid(size, `rotateLength must be None or a whole number of bytes, not ${describeValue(size.v)}`);
    }
    if (count.v !== null && (typeof count.v !== 'number' || count.v < 0)) {
      throw this.invalid(count, `maxRotatedFiles must be None or a whole number, not ${describeValue(count.v)}`);
    }
    // Twisted's LogFile never rotates when rotateLength is None or 0.
    return { size: (size.v as number | null) ?? 0, count: count.v as number | null };
  }
}

function isObj(v: Value): v is Obj {
  return typeof v === 'object' && v !== null;
}

/** Python's truth value, for the values a tac holds. */
function truthy(v: Value): boolean {
  return isObj(v) ? true : Boolean(v);
}

function typeName(v: Value): string {
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
    default:
      return `a ${v.obj === 'logfile' ? 'LogFile' : v.obj === 'worker' ? 'Worker' : v.obj}`;
  }
}

/** A value for an error message. Used only for settings that are never secret. */
function describeValue(v: Value): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v === true ? 'True' : v === false ? 'False' : v);
  return typeName(v);
}

function formatBound(name: string, n: number): string {
  return name === 'umask' ? `0o${n.toString(8)}` : String(n);
}
