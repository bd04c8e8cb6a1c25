// Reads a buildbot.tac without Python: runs its statements over a small model of
// the objects a worker tac touches (./evaluate.ts), then checks the Worker's
// arguments as buildbot-worker 3.7 would use them.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BbgateError, isBbgateError } from '../../errors.js';
import { parseEndpoint } from '../../address/connection-string.js';
import type { Endpoint } from '../../address/endpoint.js';
import { masterConnectionString } from '../../address/master-address.js';
import { parseProxySetting, type ProxySetting } from '../../address/proxy-setting.js';
import { DEFAULT_MAXDELAY, type EnvironmentChanges, type WorkerConfig, type WorkerProtocol, msgpackOverWsUrl } from '../config.js';
import { lookupCodec } from '../python/codec.js';
import { Evaluator, type TacOutcome } from './evaluate.js';
import { bindArguments, describeValue, isObj, truthy, typeName, type ApplicationObj, type Located, type LogTarget, type WorkerObj } from './values.js';
import { TacError } from './errors.js';
import { parseTacSource } from './parse.js';

/** buildbot_worker.pb.Worker's parameters, in order (3.7). */
const WORKER_PARAMS = [
  'buildmaster_host', 'port', 'name', 'passwd', 'basedir', 'keepalive', 'usePTY', 'keepaliveTimeout', 'umask', 'maxdelay', 'numcpus',
  'unicode_encoding', 'protocol', 'useTls', 'allow_shutdown', 'maxRetries', 'connection_string', 'delete_leftover_dirs', 'proxy_connection_string',
  // 4.x: the msgpack endpoint's URL path (its place among 4.x's parameters differs; tacs pass it by name).
  'path',
];
const WORKER_REQUIRED = 6;

/**
 * Reads the worker's configuration from a buildbot.tac, as written by
 * `buildbot-worker create-worker`, by `bbgate create-worker`, or edited by
 * hand. Throws a TacError (TAC_SYNTAX, TAC_UNSUPPORTED, TAC_INVALID) naming
 * the file and line, or ENDPOINT_SYNTAX / PROXY_SYNTAX for a connection or
 * proxy string that does not parse. The connection and proxy come back parsed
 * (and as written, for the log), so that nothing parses them again.
 */
export function readTac(path: string, environ: NodeJS.ProcessEnv = process.env): WorkerConfig {
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
  return parseTac(source, file, environ);
}

/**
 * `readTac` for a tac's text; `file` is its absolute path (a relocatable tac's
 * basedir is its directory); `environ` is what the tac's os.environ starts as.
 */
export function parseTac(source: string, file: string, environ: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const cookie = /^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)/m.exec(source.split(/\r?\n/, 2).join('\n'));
  if (cookie && !/^utf[-_]?8$/i.test(cookie[1]!)) {
    throw new TacError('TAC_UNSUPPORTED', file, 1, `the encoding declaration "${cookie[1]}" is not supported: save the tac as UTF-8`);
  }
  const evaluator = new Evaluator(file, environ);
  evaluator.run(parseTacSource(source, file));
  return tacConfig(file, evaluator.outcome(), environ);
}

/** What the tac left behind, checked: one Worker attached to the application. */
function tacConfig(file: string, outcome: TacOutcome, environ: NodeJS.ProcessEnv): WorkerConfig {
  const app = outcome.application;
  if (!app || !isObj(app.v) || app.v.obj !== 'application') {
    throw new TacError('TAC_INVALID', file, 0, "it defines no `application = service.Application('buildbot-worker')`, which is what twistd runs");
  }
  const attached = outcome.workers.filter((w) => w.parent === app.v);
  if (attached.length === 0) throw new TacError('TAC_INVALID', file, 0, 'no Worker(...) is attached to the application (s.setServiceParent(application))');
  if (attached.length > 1) throw new TacError('TAC_UNSUPPORTED', file, attached[1]!.line, 'more than one Worker in a tac is not supported');
  const config = new WorkerArguments(file, dirname(file), attached[0]!, app.v).config();
  const changes = environmentChanges(environ, outcome.environ);
  return changes ? { ...config, environ: changes } : config;
}

/** What the tac did to os.environ, if anything: variables it deleted, and those it set. */
function environmentChanges(before: NodeJS.ProcessEnv, after: Map<string, string>): EnvironmentChanges | undefined {
  const unset = Object.keys(before).filter((name) => typeof before[name] === 'string' && !after.has(name));
  const set: Record<string, string> = {};
  for (const [name, value] of after) if (before[name] !== value) set[name] = value;
  if (unset.length === 0 && Object.keys(set).length === 0) return undefined;
  return { unset, set };
}

/** The Worker's arguments, checked and turned into a WorkerConfig. */
class WorkerArguments {
  private readonly args: Map<string, Located>;

  private readonly log: LogTarget | undefined;

  constructor(
    private readonly file: string,
    private readonly cwd: string,
    private readonly worker: WorkerObj,
    app: ApplicationObj,
  ) {
    this.args = bindArguments((line, what) => new TacError('TAC_INVALID', file, line, what), 'Worker', WORKER_PARAMS, WORKER_REQUIRED, worker.args, worker.kwargs, worker.line);
    this.log = app.log;
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
    if (a.origin && typeof a.v !== 'number') throw this.invalid(a, `Worker's ${name} must be a str${secret ? '' : ' or None'}, not ${typeName(a.v)} (from the environment variable ${a.origin})`);
    const shown = secret ? typeName(a.v) : describeValue(a);
    if (isObj(a.v) && a.v.obj === 'bytes') throw this.invalid(a, `Worker's ${name} as bytes is not supported: write a str`, 'TAC_UNSUPPORTED');
    throw this.invalid(a, `Worker's ${name} must be a str${secret ? '' : ' or None'}, not ${shown}`);
  }

  private requiredString(name: string, secret = false): string {
    const s = this.string(name, secret);
    if (s === undefined) {
      const a = this.arg(name);
      throw this.invalid(a, `Worker's ${name} must be a str, not None${a.origin ? `: the environment variable ${a.origin} is not set` : ''}`);
    }
    return s;
  }

  private integer(name: string, min: number, max: number, hint = ''): number | undefined {
    const a = this.arg(name);
    if (a.v === null) return undefined;
    if (typeof a.v !== 'number' || a.v < min || a.v > max) {
      throw this.invalid(a, `Worker's ${name} must be None or a whole number from ${formatBound(name, min)} to ${formatBound(name, max)}${hint}, not ${describeValue(a)}`);
    }
    return a.v;
  }

  config(): WorkerConfig {
    const usePTY = this.usePTY();
    // keepaliveTimeout is accepted and ignored by buildbot-worker 3.7, so it is here too.
    const protocol = this.protocol();
    const basedir = resolve(this.cwd, this.requiredString('basedir'));
    const connection = this.connection();
    if (protocol !== 'pb' && connection.endpoint.type === 'ws') throw this.invalid(this.arg('connection_string'), msgpackOverWsUrl);
    const proxy = this.proxy();
    const keepalive = this.integer('keepalive', 0, 86_400 * 365) ?? 0;
    const umask = this.integer('umask', 0, 0o777, ' (octal: 0o022)');
    const maxdelay = this.integer('maxdelay', 0, 86_400 * 365) ?? DEFAULT_MAXDELAY;
    const maxretries = this.integer('maxRetries', 0, Number.MAX_SAFE_INTEGER);
    const numcpus = this.integer('numcpus', 0, 1_000_000);
    const allowShutdown = this.allowShutdown();
    const unicodeEncoding = this.unicodeEncoding();
    const codec = lookupCodec(unicodeEncoding ?? 'utf-8')!;
    for (const [arg, what] of [['name', 'the worker name'], ['passwd', 'the password']] as const) {
      const value = this.arg(arg);
      if (typeof value.v === 'string' && codec.encode(value.v) === undefined) {
        throw this.invalid(value, `${what} cannot be encoded in ${codec.name} (UnicodeEncodeError in Python, which sends both encoded with unicode_encoding)`);
      }
    }
    if (this.log?.obj === 'logfile' && this.log.path !== resolve(basedir, 'twistd.log')) {
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
      ...this.msgpackPath(protocol),
      usePTY,
      ...(unicodeEncoding !== undefined ? { unicodeEncoding } : {}),
      ...(this.log?.obj === 'logfile' ? { logRotate: this.logRotate(this.log) } : {}),
      ...(this.log?.obj === 'stream' ? { logTo: this.log.name } : {}),
    };
  }

  /**
   * Old tacs pass `usepty = 0` (or 1, True, False) to Worker; buildbot-worker 3.x
   * asserts None. bbgate takes them all: the default for commands that do not say.
   */
  private usePTY(): boolean {
    const a = this.arg('usePTY');
    if (a.v === null || a.v === 0 || a.v === 1 || typeof a.v === 'boolean') return truthy(a.v);
    throw this.invalid(a, `usePTY must be None, 0, 1, True or False, not ${describeValue(a)}`);
  }

  /** The encoding's canonical name, if the tac gives one bbgate can decode with as Python would. */
  private unicodeEncoding(): string | undefined {
    const name = this.string('unicode_encoding');
    if (name === undefined) return undefined;
    const codec = lookupCodec(name);
    const a = this.arg('unicode_encoding');
    if (!codec) throw this.invalid(a, `unicode_encoding ${describeValue(a, true)} is not supported: bbgate knows utf-8, latin-1, ascii and cp1252 (and their Python aliases)`, 'TAC_UNSUPPORTED');
    return codec.name;
  }

  /** 4.x's `path=`: a str or None; used over msgpack only (the PB factory ignores it, as 4.x does). */
  private msgpackPath(protocol: WorkerProtocol): { msgpackPath?: string } {
    const path = this.string('path');
    return path !== undefined && protocol === 'msgpack_experimental_v7' ? { msgpackPath: path } : {};
  }

  private protocol(): WorkerProtocol {
    const a = this.args.get('protocol');
    if (a === undefined) return 'pb';
    if (a.v === 'pb' || a.v === 'msgpack_experimental_v7') return a.v;
    throw this.invalid(a, `unknown protocol ${describeValue(a, true)}: buildbot-worker knows 'pb' and 'msgpack_experimental_v7'`);
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
    if (typeof portNumber !== 'number' || !Number.isInteger(portNumber)) throw this.invalid(port, `port must be a whole number, not ${describeValue(port)}`);
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
    throw this.invalid(a, `allow_shutdown must be None, 'signal' or 'file', not ${describeValue(a)}`);
  }

  private logRotate(log: LogTarget & { obj: 'logfile' }): { size: number; count: number | null } {
    const size = log.rotateLength;
    const count = log.maxRotatedFiles;
    if (size.v !== null && (typeof size.v !== 'number' || size.v < 0)) {
      throw this.invalid(size, `rotateLength must be None or a whole number of bytes, not ${describeValue(size)}`);
    }
    if (count.v !== null && (typeof count.v !== 'number' || count.v < 0)) {
      throw this.invalid(count, `maxRotatedFiles must be None or a whole number, not ${describeValue(count)}`);
    }
    // Twisted's LogFile never rotates when rotateLength is None or 0.
    return { size: (size.v as number | null) ?? 0, count: count.v as number | null };
  }
}

function formatBound(name: string, n: number): string {
  return name === 'umask' ? `0o${n.toString(8)}` : String(n);
}
