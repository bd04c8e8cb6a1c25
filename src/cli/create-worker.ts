// `bbgate create-worker`: buildbot-worker's create-worker, writing the same
// buildbot.tac and info files, so that either program can run the directory.
import { closeSync, existsSync, fchmodSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BbgateError } from '../errors.js';
import { parseEndpoint } from '../address/connection-string.js';
import { parseMasterAddress } from '../address/master-address.js';
import { isPacSource, parseProxySetting } from '../address/proxy-setting.js';
import { proxyPort } from '../address/proxy-string.js';
import type { TlsEndpoint, WsEndpoint } from '../address/endpoint.js';
import { DEFAULT_KEEPALIVE, DEFAULT_LOG_ROTATE, DEFAULT_MAXDELAY } from '../worker/config.js';
import { loadTrustRoots } from '../tls/index.js';
import { renderTac, type TacSettings } from '../worker/tac/write.js';
import { parseCommand, report, strerror } from './common.js';
import { tlsExtensionNotes } from './tls-extensions.js';

export const CREATE_WORKER_USAGE = `Usage: bbgate create-worker [options] BASEDIR MASTER[:PORT] WORKERNAME PASSWORD
       bbgate create-worker [options] --connection-string STRING BASEDIR WORKERNAME PASSWORD

Creates BASEDIR (its parent must exist) with buildbot.tac and info/admin,
info/host, as buildbot-worker create-worker does; buildbot-worker can run the
directory too. MASTER is a host name, an IPv4 address or [IPv6]; PORT defaults
to 9989. An existing buildbot.tac that differs is kept, and the new one written
as buildbot.tac.new.

Options:
  -k, --keepalive S        seconds between keepalives, 0 for none (default ${DEFAULT_KEEPALIVE})
      --maxdelay S         longest wait between connection attempts (default ${DEFAULT_MAXDELAY})
      --maxretries N       give up after N failed attempts in a row (default None: never)
      --use-tls            connect with TLS, checked against the platform's CAs
      --connection-string STRING
                           where the master is, in Twisted's syntax, instead of
                           MASTER[:PORT], e.g. tls:master:9989:trustRoots=/etc/ca
      --proxy-connection-string P
                           tunnel through this HTTP proxy: tcp:HOST:PORT (what
                           buildbot-worker takes), or http(s)://[USER:PASSWORD@]HOST:PORT,
                           or a PAC file: pac+file:///PATH, pac+http(s)://HOST/PATH
      --umask MASK         the worker's umask, e.g. 0o022 or 022 (octal; default None:
                           0o077 when started as a daemon)
  -a, --allow-shutdown H   let the worker ask for a graceful shutdown: signal (SIGHUP)
                           or file (touching BASEDIR/shutdown.stamp)
      --numcpus N          CPUs reported to the master (default None: all)
      --delete-leftover-dirs
                           delete builder directories the master no longer uses
  -s, --log-size BYTES     rotate twistd.log at this size (default ${DEFAULT_LOG_ROTATE.size})
  -l, --log-count N        old logs to keep, or None for all (default ${DEFAULT_LOG_ROTATE.count})
  -n, --no-logrotate       leave rotation to the defaults (1,000,000 bytes, keep all)
  -r, --relocatable        write basedir = '.': the tac uses the directory it is in
      --protocol P         pb (Perspective Broker, the default) or msgpack_experimental_v7
                           (msgpack over WebSocket: MASTER[:PORT] is then the master's
                           c['protocols']['msgpack_experimental_v7'] port)
  -f, --force              accepted, as buildbot-worker does: an existing BASEDIR is always reused
  -q, --quiet              print nothing but errors
  -h, --help               this text
`;

const OPTIONS = {
  force: { type: 'boolean', short: 'f' },
  relocatable: { type: 'boolean', short: 'r' },
  'no-logrotate': { type: 'boolean', short: 'n' },
  'use-tls': { type: 'boolean' },
  'delete-leftover-dirs': { type: 'boolean' },
  keepalive: { type: 'string', short: 'k' },
  umask: { type: 'string' },
  maxdelay: { type: 'string' },
  maxretries: { type: 'string' },
  numcpus: { type: 'string' },
  'log-size': { type: 'string', short: 's' },
  'log-count': { type: 'string', short: 'l' },
  'allow-shutdown': { type: 'string', short: 'a' },
  protocol: { type: 'string' },
  'proxy-connection-string': { type: 'string' },
  'connection-string': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const INFO_FILES: [string, string][] = [
  ['admin', 'Your Name Here <admin@youraddress.invalid>\n'],
  ['host', 'Please put a description of this build host here\n'],
];

export interface CreateWorkerPlan {
  /** Absolute. */
  basedir: string;
  quiet: boolean;
  tac: TacSettings;
  /** Things to tell the user about the tac (warnings, not errors). */
  notes: string[];
}

export async function runCreateWorker(argv: string[]): Promise<number> {
  let plan: CreateWorkerPlan | undefined;
  try {
    plan = await planCreateWorker(argv);
  } catch (err) {
    return report(err, 'create-worker');
  }
  if (!plan) {
    process.stdout.write(CREATE_WORKER_USAGE);
    return 0;
  }
  for (const note of plan.notes) process.stderr.write(`bbgate: note: ${note}\n`);
  return createWorker(plan);
}

/**
 * Checks every argument and works out what to write, touching nothing, so
 * that a bad value leaves the disk as it was. Undefined means --help.
 */
export async function planCreateWorker(argv: string[], cwd = process.cwd()): Promise<CreateWorkerPlan | undefined> {
  const { values: v, positionals } = parseCommand('create-worker', argv, OPTIONS);
  if (v.help) return undefined;
  const connectionString = v['connection-string'];
  const expected = connectionString === undefined ? 4 : 3;
  if (positionals.length !== expected) {
    const shape = connectionString === undefined ? 'BASEDIR MASTER[:PORT] WORKERNAME PASSWORD' : 'BASEDIR WORKERNAME PASSWORD (--connection-string replaces MASTER[:PORT])';
    throw new BbgateError('USAGE', `create-worker takes ${expected} arguments, ${shape}; got ${positionals.length}`);
  }
  const [basedirArg, ...rest] = positionals as [string, ...string[]];
  const [workername, password] = rest.slice(-2) as [string, string];
  const notes: string[] = [];

  if (workername === '') throw new BbgateError('USAGE', 'WORKERNAME is empty: give the name the master\'s c[\'workers\'] entry has for this worker');
  if (password === '') throw new BbgateError('USAGE', 'PASSWORD is empty: give the password the master\'s c[\'workers\'] entry has for this worker');
  const basedir = resolve(cwd, basedirArg);

  let master: TacSettings['master'];
  if (connectionString !== undefined) {
    if (v['use-tls']) throw new BbgateError('USAGE', '--use-tls and --connection-string do not go together: write tls:HOST:PORT in the connection string');
    const endpoint = parseEndpoint(connectionString);
    if (endpoint.type === 'ws') notes.push('buildbot-worker cannot run this buildbot.tac: it has no ws:// or wss:// transport; bbgate can (a bbgate relay\'s WebSocket listener)');
    if (endpoint.type !== 'tcp') notes.push(...(await checkTlsFiles(endpoint, basedir)));
    notes.push(...tlsExtensionNotes(endpoint));
    master = { connectionString };
  } else {
    master = parseMasterAddress(rest[0]!);
  }

  const proxy = v['proxy-connection-string'] === undefined ? undefined : unquoted(v['proxy-connection-string']);
  if (proxy !== undefined) {
    const parsed = parseProxySetting(proxy);
    const kind = isPacSource(parsed) ? 'a PAC file' : `${parsed.url.protocol}// proxy`;
    if (!isPacSource(parsed) && parsed.url.port === '' && !/^tcp:/i.test(proxy)) {
      notes.push(`the proxy string names no port: bbgate will connect to ${parsed.url.hostname} on port ${proxyPort(parsed)}, ${parsed.url.protocol}//'s default (proxies often listen on 3128 or 8080: write ${parsed.url.protocol}//…@${parsed.url.hostname}:PORT)`);
    }
    if (!/^tcp:/i.test(proxy)) notes.push(`buildbot-worker cannot run this buildbot.tac: its proxy_connection_string takes only tcp:HOST:PORT (and no credentials); bbgate can (${kind})`);
    if (connectionString !== undefined) notes.push('buildbot-worker cannot run this buildbot.tac: it refuses a proxy_connection_string together with a connection_string; bbgate can');
  }

  const umask = pythonUmask(v.umask ?? 'None');
  if (/^[1-9]\d*$/.test(umask)) {
    notes.push(`--umask=${umask} is the decimal number ${umask} (0o${Number(umask).toString(8).padStart(3, '0')}), as buildbot-worker reads it; for octal write --umask=0o${umask} or --umask=0${umask}`);
  }
  const allowShutdown = v['allow-shutdown'];
  if (allowShutdown !== undefined && allowShutdown !== 'signal' && allowShutdown !== 'file') {
    throw new BbgateError('USAGE', `--allow-shutdown must be signal or file, not "${allowShutdown}"`);
  }
  const protocol = v.protocol ?? 'pb';
  if (protocol !== 'pb' && protocol !== 'msgpack_experimental_v7') throw new BbgateError('USAGE', `--protocol must be pb or msgpack_experimental_v7, not "${protocol}"`);

  const tac: TacSettings = {
    basedir: '',
    logRotate: !v['no-logrotate'],
    logSize: wholeNumber('--log-size', v['log-size'], DEFAULT_LOG_ROTATE.size, 'bytes'),
    logCount: pythonCount('--log-count', v['log-count'] ?? String(DEFAULT_LOG_ROTATE.count)),
    master,
    workername,
    password,
    keepalive: wholeNumber('--keepalive', v.keepalive, DEFAULT_KEEPALIVE, 'seconds (0 turns keepalives off)'),
    umask,
    maxdelay: wholeNumber('--maxdelay', v.maxdelay, DEFAULT_MAXDELAY, 'seconds'),
    numcpus: pythonCount('--numcpus', v.numcpus ?? 'None'),
    ...(allowShutdown !== undefined ? { allowShutdown } : {}),
    maxretries: pythonCount('--maxretries', v.maxretries ?? 'None'),
    useTls: Boolean(v['use-tls']),
    deleteLeftoverDirs: Boolean(v['delete-leftover-dirs']),
    ...(proxy !== undefined ? { proxyConnectionString: proxy } : {}),
    protocol,
  };

  tac.basedir = v.relocatable ? '.' : basedir;
  checkBasedir(basedir);
  return { basedir, quiet: Boolean(v.quiet), tac, notes };
}

/** The filesystem part, with buildbot-worker's messages. Returns the exit status. */
export function createWorker(plan: CreateWorkerPlan): number {
  const say = (line: string) => {
    if (!plan.quiet) process.stdout.write(`${line}\n`);
  };
  const { basedir } = plan;
  try {
    if (existsSync(basedir)) {
      say('updating existing installation');
    } else {
      say(`mkdir ${basedir}`);
      mkdir(basedir);
    }
    writeTac(basedir, renderTac(plan.tac), say);
    writeInfoFiles(basedir, say);
  } catch (err) {
    if (!(err instanceof BbgateError) || err.code !== 'WORKER_DIR') throw err;
    process.stderr.write(`${err.message}\nfailed to configure worker in ${basedir}\n`);
    return 1;
  }
  say(`worker configured in ${basedir}`);
  return 0;
}

function mkdir(path: string): void {
  try {
    mkdirSync(path);
  } catch (err) {
    throw new BbgateError('WORKER_DIR', `error creating directory ${path}: ${strerror(err)}`, { cause: err });
  }
}

function writeTac(basedir: string, contents: string, say: (line: string) => void): void {
  let tacfile = join(basedir, 'buildbot.tac');
  if (existsSync(tacfile)) {
    let old: string;
    try {
      old = readFileSync(tacfile, 'utf8');
    } catch (err) {
      throw new BbgateError('WORKER_DIR', `error reading ${tacfile}: ${strerror(err)}`, { cause: err });
    }
    if (old === contents) {
      say('buildbot.tac already exists and is correct');
      return;
    }
    say('not touching existing buildbot.tac');
    say('creating buildbot.tac.new instead');
    tacfile = join(basedir, 'buildbot.tac.new');
  }
  try {
    // The tac holds the password: 0600 before the first byte goes in, also when overwriting a .new.
    const fd = openSync(tacfile, 'w', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, contents);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new BbgateError('WORKER_DIR', `could not write ${tacfile}: ${strerror(err)}`, { cause: err });
  }
}

function writeInfoFiles(basedir: string, say: (line: string) => void): void {
  const info = join(basedir, 'info');
  if (!existsSync(info)) {
    say(`mkdir ${info}`);
    mkdir(info);
  }
  let created = false;
  for (const [name, contents] of INFO_FILES) {
    const path = join(info, name);
    if (existsSync(path)) continue;
    say(`Creating ${join('info', name)}, you need to edit it appropriately.`);
    try {
      writeFileSync(path, contents);
    } catch (err) {
      throw new BbgateError('WORKER_DIR', `could not write ${path}: ${strerror(err)}`, { cause: err });
    }
    created = true;
  }
  if (!existsSync(join(info, 'access_uri'))) say(`Not creating ${join('info', 'access_uri')} - add it if you wish`);
  if (created) say(`Please edit the files in ${info} appropriately.`);
}

/**
 * The files a TLS connection string names, as the worker will look for them
 * (relative paths from BASEDIR, where it runs): trust roots the worker could
 * not load are refused, with the loader's own reasons (every connection would
 * fail); a missing certificate or key is a note (they may be copied in before
 * the first start).
 */
async function checkTlsFiles(endpoint: TlsEndpoint | WsEndpoint, basedir: string): Promise<string[]> {
  const notes: string[] = [];
  if (endpoint.trustRoots !== undefined) await loadTrustRoots(resolve(basedir, endpoint.trustRoots));
  for (const [option, path] of [['certificate', endpoint.certificate], ['privateKey', endpoint.privateKey]] as const) {
    if (path !== undefined && !existsSync(resolve(basedir, path))) notes.push(`${option}=${path} does not exist yet${isAbsolute(path) ? '' : ` (relative to ${basedir})`}: the worker will not connect until it does`);
  }
  return notes;
}

/** buildbot-worker makes only BASEDIR itself, not its parents; say so before anything is written. */
function checkBasedir(basedir: string): void {
  const isDir = (p: string) => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return undefined;
    }
  };
  const self = isDir(basedir);
  if (self === false) throw new BbgateError('WORKER_DIR', `${basedir} exists and is not a directory`);
  if (self === undefined && !isDir(dirname(basedir))) {
    throw new BbgateError('WORKER_DIR', `cannot create ${basedir}: its parent directory ${dirname(basedir)} does not exist (create-worker makes only BASEDIR itself)`);
  }
}

/** A whole number of seconds or bytes, as Python's int() reads it, but never negative. */
function wholeNumber(option: string, value: string | undefined, fallback: number, unit: string): number {
  if (value === undefined) return fallback;
  const text = value.trim().replace(/_/g, '');
  if (!/^\+?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new BbgateError('USAGE', `${option} must be a whole number of ${unit}, not "${value}"`);
  }
  return Number(text);
}

/**
 * --log-count, --numcpus, --maxretries: buildbot-worker accepts digits, 0o
 * digits or None and pastes them into the tac, where `010` is a Python syntax
 * error; it is written as 10 here. Returns Python source.
 */
export function pythonCount(option: string, value: string): string {
  if (value === 'None' || /^(0|[1-9]\d*|0o[0-7]+)$/.test(value)) return value;
  if (/^\d+$/.test(value)) return String(Number(value));
  throw new BbgateError('USAGE', `${option} must be a whole number or None, not "${value}"`);
}

/**
 * --umask: None, decimal (as buildbot-worker reads `--umask=18`), 0o octal, or
 * a leading 0 (which buildbot-worker writes as a Python syntax error, and which
 * everyone means as octal, as for the shell's umask): written as 0o. Returns Python source.
 */
export function pythonUmask(value: string): string {
  let source: string;
  if (value === 'None' || /^(0|[1-9]\d*|0o[0-7]+)$/.test(value)) source = value;
  else if (/^0[0-7]+$/.test(value)) source = `0o${value.replace(/^0+/, '') || '0'}`;
  else throw new BbgateError('USAGE', `--umask must be an octal mask such as 0o022 or 022 (or None), not "${value}"`);
  const mask = source === 'None' ? 0 : source.startsWith('0o') ? parseInt(source.slice(2), 8) : Number(source);
  if (mask > 0o777) throw new BbgateError('USAGE', `--umask must be at most 0o777, not "${value}"`);
  return source;
}

/**
 * buildbot-worker pastes --proxy-connection-string into the tac as Python, so
 * users had to quote it ("'tcp:proxy:3128'"); take such a value as the string it spells.
 */
function unquoted(value: string): string {
  const m = /^(['"])(.*)\1$/s.exec(value);
  return m && !m[2]!.includes(m[1]!) && !m[2]!.includes('\\') ? m[2]! : value;
}
