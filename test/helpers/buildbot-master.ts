// Test fixture: a real Buildbot master, plus the real Python `buildbot-worker`, each run as a
// child process on 127.0.0.1: Debian bookworm's 3.7 (the default), or with `version: '4'`
// Debian trixie's 4.2.1 from the root that scripts/buildbot4-root.sh makes (buildbot-runtime.ts).
//
// See test/helpers/README.md for usage. The master's configuration lives in
// test/fixtures/master/ (master.cfg, buildbot.tac, wwwstub/); everything per-test goes
// into `fixture.json` in a fresh temporary basedir.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildbotRuntime, type BuildbotRuntime, type BuildbotVersion } from './buildbot-runtime.js';
import { fixtureDir } from './fixture-dir.js';
import { freePort } from './ports.js';
import { PYTHON } from './python.js';

export { buildbot4Root, type BuildbotVersion } from './buildbot-runtime.js';
export { fixtureDir } from './fixture-dir.js';

/** The Debian interpreter that has buildbot (the `python3` on PATH may not). */
export { PYTHON } from './python.js';
/** This machine's Buildbot 3.7 programs. */
export { BUILDBOT, BUILDBOT_WORKER } from './buildbot-runtime.js';
import { BUILDBOT } from './buildbot-runtime.js';
const HOST = '127.0.0.1';

/** Buildbot result codes (buildbot.process.results). */
export const Results = {
  SUCCESS: 0,
  WARNINGS: 1,
  FAILURE: 2,
  SKIPPED: 3,
  EXCEPTION: 4,
  RETRY: 5,
  CANCELLED: 6,
} as const;
const RESULT_NAMES = ['SUCCESS', 'WARNINGS', 'FAILURE', 'SKIPPED', 'EXCEPTION', 'RETRY', 'CANCELLED'];
export function resultName(code: number | null | undefined): string {
  if (code === null || code === undefined) return 'NONE';
  return RESULT_NAMES[code] ?? `UNKNOWN(${code})`;
}

// ---------------------------------------------------------------------------------------
// Options and result types

export interface WorkerSpec {
  name: string;
  password: string;
  /** Extra keyword arguments for `worker.Worker(...)`, as Python source, e.g. "max_builds=1". */
  options?: string;
}

export interface BuilderSpec {
  name: string;
  workernames: string[];
  /**
   * Build steps as Python expressions, evaluated in master.cfg's globals (`steps`,
   * `util`, ...), e.g. `"steps.ShellCommand(command=['echo', 'hi'])"`.
   */
  steps?: string[];
  /** Extra keyword arguments for `util.BuilderConfig(...)`, as Python source. */
  options?: string;
}

export interface MasterOptions {
  /** Which Buildbot: '3.7' (default, this machine's) or '4' (4.2.1 in the trixie root). */
  version?: BuildbotVersion;
  workers: WorkerSpec[];
  /**
   * Each builder also gets a force scheduler named `force-<builder name>`. Buildbot
   * refuses to start without builders, so the default (undefined or []) is one builder
   * `idle`, with no steps, for all workers.
   */
  builders?: BuilderSpec[];
  /** Python statements run at the end of master.cfg (may modify `c`). */
  extraConfig?: string;
  /**
   * Files written into the basedir before the master starts (relative name -> content). The
   * master runs in its basedir, so master.cfg and steps can name them relatively, e.g. TLS keys in
   * a `ssl:` port string; that works for both versions (a 4.2.1 master sees other paths).
   */
  files?: Record<string, string | Uint8Array>;
  /** Fixed PB port (default: a free one, with retries if it gets taken meanwhile). */
  pbPort?: number;
  /**
   * Also listen for msgpack_experimental_v7 workers (WebSocket), on a free port (`msgpackPort`).
   * The 3.7 master takes only an integer there, so it listens on every interface.
   */
  msgpack?: boolean;
  /** Give up if the master is not up within this time (default 60 s). */
  startTimeoutMs?: number;
  /** Keep the basedir after stop() (also with env BBGATE_KEEP_MASTER=1). */
  keepBasedir?: boolean;
}

export interface ForceBuildOptions {
  /** Build properties (any JSON values), set with source "bbgate fixture". */
  properties?: Record<string, unknown>;
  reason?: string;
  /** Must look like `Name <x@domain.tld>` if given (the master validates it). */
  username?: string;
}

export interface ForcedBuild {
  builder: string;
  builderId: number;
  buildsetId: number;
  buildRequestId: number;
}

export interface LogResult {
  logId: number;
  name: string;
  slug: string;
  /** 's' = stdio (lines prefixed with a channel letter), 't' = text, 'h' = html. */
  type: string;
  numLines: number;
  /** The raw `/logs/N/contents` text (for 's' logs each line starts with o/e/h). */
  content: string;
  /** For 's' logs: the text with channel prefixes removed (all channels). Else = content. */
  text: string;
  /** For 's' logs: only the stdout / stderr / header lines (prefixes removed). */
  stdout: string;
  stderr: string;
  header: string;
}

export interface StepResult {
  stepId: number;
  number: number;
  name: string;
  results: number | null;
  resultName: string;
  stateString: string;
  complete: boolean;
  /** Filled when waitForBuild(..., { logs: true }) (the default). */
  logs: LogResult[];
  raw: any;
}

export interface BuildResult {
  buildRequestId: number;
  buildId: number;
  number: number;
  builderId: number;
  workerId: number;
  /** Result code of the build (see `Results`). */
  results: number | null;
  resultName: string;
  stateString: string;
  /** name -> value (the REST API's [value, source] pairs reduced to the value). */
  properties: Record<string, unknown>;
  steps: StepResult[];
  /**
   * The earlier builds of this build request, oldest first: each ended (RETRY, when the worker
   * was lost mid-build) and the master ran the request again. Empty unless `allowRetries`.
   */
  retried: { buildId: number; results: number | null; resultName: string }[];
  raw: any;
}

export interface WaitForBuildOptions {
  timeoutMs?: number;
  /** Fetch step logs (default true). */
  logs?: boolean;
  /**
   * Return as soon as any build of the request has finished, even with RETRY (default:
   * wait until the build request itself is complete; a RETRY build is re-queued).
   */
  anyBuild?: boolean;
  /**
   * Accept a request that ran more than one build (default: that is an error naming each build's
   * result, so a build that only passed on its second try after a lost worker is never taken for
   * a plain SUCCESS). Tests that drop a worker on purpose set this and check `retried`.
   */
  allowRetries?: boolean;
}

export interface RunningMaster {
  readonly version: BuildbotVersion;
  readonly pbPort: number;
  readonly apiPort: number;
  /** The msgpack_experimental_v7 port, when started with `msgpack: true`. */
  readonly msgpackPort: number | undefined;
  /** The basedir on this machine (for 4.2.1, under the root's /tmp). */
  readonly basedir: string;
  readonly pid: number;
  /** `http://127.0.0.1:<apiPort>/api/v2` */
  readonly apiUrl: string;
  /** Whole twistd.log. */
  log(): Promise<string>;
  /** Current twistd.log size in bytes; pass as `since` to waitForLog to see only newer lines. */
  logSize(): Promise<number>;
  /** Wait for a twistd.log line matching `re` (after byte offset `since`); returns that line. */
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<string>;
  /** Captured stdout+stderr of the twistd process (tracebacks from before logging started). */
  output(): string;
  /** GET /api/v2/<path> (path like "builds?builderid=1"), parsed JSON. Throws on HTTP errors. */
  api(apiPath: string): Promise<any>;
  /** JSON-RPC POST to /api/v2/<path>; returns `result`, throws on `error`. */
  rpc(apiPath: string, method: string, params?: Record<string, unknown>): Promise<any>;
  forceBuild(builder: string, opts?: ForceBuildOptions): Promise<ForcedBuild>;
  waitForBuild(req: ForcedBuild | number, opts?: WaitForBuildOptions): Promise<BuildResult>;
  /** forceBuild + waitForBuild. */
  runBuild(builder: string, opts?: ForceBuildOptions & WaitForBuildOptions): Promise<BuildResult>;
  /**
   * Poll /api/v2/workers/<name> until its `connected_to` is non-empty (or empty, with
   * `connected: false`). Note: the master marks the worker connected *before* it sends
   * setBuilderList, so this is not "attach finished".
   */
  waitForWorker(name: string, opts?: { connected?: boolean; timeoutMs?: number }): Promise<any>;
  /** Run a query against state.sqlite (via Python's sqlite3); rows as objects. */
  sql(query: string, params?: unknown[]): Promise<any[]>;
  /** Rewrite fixture.json with these changes and reconfig the master (SIGHUP). */
  reconfig(changes: Partial<Pick<MasterOptions, 'workers' | 'builders' | 'extraConfig'>>): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs` (default 10 s); then removes the basedir. Idempotent. */
  stop(opts?: { graceMs?: number }): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Child process bookkeeping: never leave masters/workers behind.

interface Tracked {
  child: ChildProcess;
  dir: string | undefined;
}
const live = new Set<Tracked>();
let exitHookInstalled = false;

function track(t: Tracked): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Runs on normal exit and on uncaught exceptions. A SIGKILLed test process is
    // covered by the children themselves: they poll their parent pid (see master.cfg
    // and the worker tac) and stop within ~1 s once it is gone.
    process.on('exit', () => {
      for (const l of live) {
        try {
          l.child.kill('SIGKILL');
        } catch {
          /* already gone */
        }
        if (l.dir) {
          try {
            rmSync(l.dir, { recursive: true, force: true });
          } catch {
            /* best effort */
          }
        }
      }
    });
  }
  live.add(t);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (exited(child)) return;
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitExit(child, 5000);
}

function keepDirs(explicit: boolean | undefined): boolean {
  return explicit ?? process.env.BBGATE_KEEP_MASTER === '1';
}

// ---------------------------------------------------------------------------------------
// Small utilities

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago (bind 0, close). Callers must cope with races. */
export { freePort } from './ports.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function allConnect(ports: number[]): Promise<boolean> {
  for (const port of ports) if (!(await canConnect(port))) return false;
  return true;
}

function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? pythonEnv(), cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The environment for Debian-Python children: no pyenv/virtualenv leftovers. */
function pythonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  delete env.VIRTUAL_ENV;
  return { ...env, ...extra };
}

async function readFrom(file: string, since: number): Promise<string> {
  try {
    const buf = await fsp.readFile(file);
    return buf.subarray(Math.min(since, buf.length)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return 0;
  }
}

function tail(text: string, lines = 60): string {
  return text.split('\n').slice(-lines).join('\n');
}

async function waitForLogIn(file: string, what: string, re: RegExp, timeoutMs: number, since: number, isDead?: () => string | null): Promise<string> {
  const rx = new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFrom(file, since);
    const line = text.split('\n').find((l) => rx.test(l));
    if (line !== undefined) return line;
    const m = rx.exec(text);
    if (m) return m[0];
    const dead = isDead?.();
    if (dead) throw new Error(`${what}: ${dead} while waiting for ${re}\n--- log tail ---\n${tail(text)}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms waiting for ${re}\n--- log tail ---\n${tail(text)}`);
    await sleep(100);
  }
}

function httpRequest(port: number, method: string, urlPath: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: HOST,
        port,
        method,
        path: urlPath,
        agent: false, // no keep-alive sockets holding the test process open
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`HTTP ${method} ${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(data);
  });
}

// ---------------------------------------------------------------------------------------
// Fixture files and the cached empty database

const templateDbs = new Map<BuildbotVersion, Promise<string>>();

/**
 * An empty, fully migrated state.sqlite. `buildbot create-master` takes about a second,
 * so its database is made once and cached in the temp dir (shared by test processes);
 * a master that finds it outdated makes startMaster() rebuild it.
 */
function getTemplateDb(runtime: BuildbotRuntime, refresh = false): Promise<string> {
  const cached = templateDbs.get(runtime.version);
  if (cached && !refresh) return cached;
  const made = (async () => {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 'u';
    const cacheDir = path.join(os.tmpdir(), `bbgate-master-cache-${uid}`);
    const programs = runtime.version === '3.7' ? `${PYTHON}\0${BUILDBOT}` : runtime.tmpDir;
    const key = createHash('sha1').update(`${runtime.version}\0${programs}`).digest('hex').slice(0, 12);
    const target = path.join(cacheDir, `state-${key}.sqlite`);
    if (!refresh && existsSync(target)) return target;
    await fsp.mkdir(cacheDir, { recursive: true });
    // Made where the runtime's programs can see it, then moved into the cache.
    await fsp.mkdir(runtime.tmpDir, { recursive: true });
    const tmp = await fsp.mkdtemp(path.join(runtime.tmpDir, 'bbgate-create-'));
    try {
      await runIn(runtime, 'buildbot', ['create-master', '-q', '-r', 'm'], tmp);
      await fsp.copyFile(path.join(tmp, 'm', 'state.sqlite'), `${target}.${process.pid}`);
      await fsp.rename(`${target}.${process.pid}`, target); // atomic
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    return target;
  })();
  templateDbs.set(runtime.version, made);
  made.catch(() => templateDbs.delete(runtime.version));
  return made;
}

/** run() for a program of `runtime`, in `cwd` (a host path under runtime.tmpDir). */
function runIn(runtime: BuildbotRuntime, program: 'python' | 'buildbot' | 'buildbot-worker', args: string[], cwd: string): Promise<string> {
  const how = runtime.invoke(program, args, cwd);
  return run(how.file, how.args, how.cwd ? { cwd: how.cwd } : {});
}

// ---------------------------------------------------------------------------------------
// The master

interface FixtureJson {
  pbPort: number;
  msgpackPort?: number;
  apiPort: number;
  parentPid: number;
  keepBasedir: boolean;
  workers: WorkerSpec[];
  builders: BuilderSpec[];
  extraConfig: string;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly retry: 'ports' | 'db' | null,
  ) {
    super(message);
  }
}

class MasterProcess implements RunningMaster {
  readonly apiUrl: string;
  readonly msgpackPort: number | undefined;
  private out = '';
  private stopped: Promise<void> | undefined;
  private readonly tracked: Tracked;

  constructor(
    readonly version: BuildbotVersion,
    readonly basedir: string,
    readonly pbPort: number,
    readonly apiPort: number,
    private readonly child: ChildProcess,
    private fixture: FixtureJson,
    private readonly keep: boolean,
  ) {
    this.apiUrl = `http://${HOST}:${apiPort}/api/v2`;
    this.msgpackPort = fixture.msgpackPort;
    const collect = (b: Buffer) => {
      this.out += b.toString('utf8');
      if (this.out.length > 1 << 20) this.out = this.out.slice(-(1 << 19));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.tracked = { child, dir: keep ? undefined : basedir };
    track(this.tracked);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private get logFile(): string {
    return path.join(this.basedir, 'twistd.log');
  }

  private deadReason(): string | null {
    if (!exited(this.child)) return null;
    return `master exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
  }

  log(): Promise<string> {
    return readFrom(this.logFile, 0);
  }

  logSize(): Promise<number> {
    return fileSize(this.logFile);
  }

  waitForLog(re: RegExp, timeoutMs = 10_000, since = 0): Promise<string> {
    return waitForLogIn(this.logFile, 'master', re, timeoutMs, since, () => this.deadReason());
  }

  output(): string {
    return this.out;
  }

  /** Resolves once the master runs and both ports accept connections. */
  async waitStarted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.log();
      const fail = (msg: string, retry: 'ports' | 'db' | null = null) =>
        new StartError(`fixture master in ${this.basedir}: ${msg}\n--- twistd.log tail ---\n${tail(text)}\n--- stdout/stderr tail ---\n${tail(this.out, 30)}`, retry);
      if (/Address already in use/.test(text)) throw fail('port already in use', 'ports');
      if (/database needs to be upgraded/.test(text)) throw fail('database needs upgrading', 'db');
      if (/BuildMaster startup failed|Halting master\.|Configuration Errors:/.test(text)) throw fail('startup failed');
      const dead = this.deadReason();
      if (dead) throw fail(dead);
      const ports = [this.pbPort, this.apiPort, ...(this.msgpackPort === undefined ? [] : [this.msgpackPort])];
      if (/BuildMaster is running/.test(text) && (await allConnect(ports))) return;
      if (Date.now() > deadline) throw fail(`not running after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  async api(apiPath: string): Promise<any> {
    const p = `/api/v2/${apiPath.replace(/^\/+/, '')}`;
    const res = await httpRequest(this.apiPort, 'GET', p);
    if (res.status < 200 || res.status >= 300) throw new Error(`GET ${p}: HTTP ${res.status}: ${res.text}`);
    return JSON.parse(res.text);
  }

  private rpcId = 0;

  async rpc(apiPath: string, method: string, params: Record<string, unknown> = {}): Promise<any> {
    const p = `/api/v2/${apiPath.replace(/^\/+/, '')}`;
    const res = await httpRequest(this.apiPort, 'POST', p, { jsonrpc: '2.0', method, id: ++this.rpcId, params });
    let reply: any;
    try {
      reply = JSON.parse(res.text);
    } catch {
      throw new Error(`POST ${p} ${method}: HTTP ${res.status}: ${res.text}`);
    }
    if (reply.error) throw new Error(`POST ${p} ${method}: ${JSON.stringify(reply.error)}`);
    if (res.status < 200 || res.status >= 300) throw new Error(`POST ${p} ${method}: HTTP ${res.status}: ${res.text}`);
    return reply.result;
  }

  async forceBuild(builder: string, opts: ForceBuildOptions = {}): Promise<ForcedBuild> {
    const params: Record<string, unknown> = {
      reason: opts.reason ?? 'bbgate test',
      username: opts.username ?? 'bbgate test <bbgate@example.com>',
    };
    if (opts.properties) params.bbgate_properties = JSON.stringify(opts.properties);
    // result: [buildsetid, {builderid: buildrequestid}]
    const [bsid, brids] = (await this.rpc(`forceschedulers/force-${encodeURIComponent(builder)}`, 'force', params)) as [number, Record<string, number>];
    const [builderId, brid] = Object.entries(brids)[0]!;
    return { builder, builderId: Number(builderId), buildsetId: bsid, buildRequestId: brid };
  }

  async waitForBuild(req: ForcedBuild | number, opts: WaitForBuildOptions = {}): Promise<BuildResult> {
    const brid = typeof req === 'number' ? req : req.buildRequestId;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let builds: any[] = [];
    for (;;) {
      if (opts.anyBuild) {
        builds = (await this.api(`builds?buildrequestid=${brid}&property=*`)).builds;
        if (builds.some((b) => b.complete)) break;
      } else {
        const br = (await this.api(`buildrequests/${brid}`)).buildrequests[0];
        if (br?.complete) {
          builds = (await this.api(`builds?buildrequestid=${brid}&property=*`)).builds;
          break;
        }
      }
      const dead = this.deadReason();
      if (dead) throw new Error(`waitForBuild(${brid}): ${dead}\n${tail(await this.log())}`);
      if (Date.now() > deadline) {
        throw new Error(`waitForBuild(${brid}): not complete after ${timeoutMs} ms\n--- master log tail ---\n${tail(await this.log())}`);
      }
      await sleep(100);
    }
    builds.sort((a, b) => a.buildid - b.buildid);
    const done = builds.filter((b) => b.complete);
    const b = done[done.length - 1];
    if (!b) {
      const br = (await this.api(`buildrequests/${brid}`)).buildrequests[0];
      throw new Error(`build request ${brid} completed (results ${resultName(br?.results)}) without running a build`);
    }
    const retried = done.slice(0, -1).map((x) => ({ buildId: x.buildid as number, results: x.results as number | null, resultName: resultName(x.results) }));
    if (retried.length && !opts.allowRetries) {
      throw new Error(
        `build request ${brid} ran ${done.length} builds (${done.map((x) => `#${x.number} ${resultName(x.results)}`).join(', ')}): ` +
          'an earlier one was cut (a lost worker?) and the request ran again; pass allowRetries if the test expects that\n' +
          `--- master log tail ---\n${tail(await this.log())}`,
      );
    }
    const steps = ((await this.api(`builds/${b.buildid}/steps`)).steps as any[]).map(
      (s): StepResult => ({
        stepId: s.stepid,
        number: s.number,
        name: s.name,
        results: s.results,
        resultName: resultName(s.results),
        stateString: s.state_string,
        complete: s.complete,
        logs: [],
        raw: s,
      }),
    );
    if (opts.logs ?? true) {
      for (const s of steps) {
        const logs = (await this.api(`steps/${s.stepId}/logs`)).logs as any[];
        for (const l of logs) s.logs.push(await this.fetchLog(l));
      }
    }
    const properties: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((b.properties ?? {}) as Record<string, [unknown, string]>)) properties[k] = v[0];
    return {
      buildRequestId: brid,
      buildId: b.buildid,
      number: b.number,
      builderId: b.builderid,
      workerId: b.workerid,
      results: b.results,
      resultName: resultName(b.results),
      stateString: b.state_string,
      properties,
      steps,
      retried,
      raw: b,
    };
  }

  private async fetchLog(l: any): Promise<LogResult> {
    const chunks = ((await this.api(`logs/${l.logid}/contents`)).logchunks ?? []) as any[];
    const content = chunks.map((c) => c.content as string).join('');
    const r: LogResult = { logId: l.logid, name: l.name, slug: l.slug, type: l.type, numLines: l.num_lines, content, text: content, stdout: '', stderr: '', header: '' };
    if (l.type === 's') {
      const by: Record<string, string[]> = { o: [], e: [], h: [] };
      const all: string[] = [];
      for (const line of content.split('\n')) {
        if (line === '') continue;
        by[line[0]!]?.push(line.slice(1));
        all.push(line.slice(1));
      }
      const join = (a: string[]) => (a.length ? a.join('\n') + '\n' : '');
      r.text = join(all);
      r.stdout = join(by.o!);
      r.stderr = join(by.e!);
      r.header = join(by.h!);
    }
    return r;
  }

  async runBuild(builder: string, opts: ForceBuildOptions & WaitForBuildOptions = {}): Promise<BuildResult> {
    return this.waitForBuild(await this.forceBuild(builder, opts), opts);
  }

  async waitForWorker(name: string, opts: { connected?: boolean; timeoutMs?: number } = {}): Promise<any> {
    const want = opts.connected ?? true;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const w = (await this.api(`workers/${encodeURIComponent(name)}`)).workers[0];
      if (w && (w.connected_to.length > 0) === want) return w;
      if (Date.now() > deadline) {
        throw new Error(`worker ${name} not ${want ? 'connected' : 'disconnected'} after ${timeoutMs} ms\n${tail(await this.log())}`);
      }
      await sleep(100);
    }
  }

  async sql(query: string, params: unknown[] = []): Promise<any[]> {
    const script = [
      'import json, sqlite3, sys',
      'db = sqlite3.connect(sys.argv[1], timeout=30)',
      'db.row_factory = sqlite3.Row',
      'rows = [dict(r) for r in db.execute(sys.argv[2], json.loads(sys.argv[3]))]',
      "conv = lambda o: o.decode('utf-8', 'replace') if isinstance(o, (bytes, memoryview)) else str(o)",
      'sys.stdout.write(json.dumps(rows, default=lambda o: conv(bytes(o)) if isinstance(o, memoryview) else conv(o)))',
    ].join('\n');
    try {
      const out = await run(PYTHON, ['-c', script, path.join(this.basedir, 'state.sqlite'), query, JSON.stringify(params)]);
      return JSON.parse(out);
    } catch (e) {
      const lines = (e as Error).message.trim().split('\n');
      throw new Error(`sql(${JSON.stringify(query)}): ${lines[lines.length - 1]}`);
    }
  }

  async reconfig(changes: Partial<Pick<MasterOptions, 'workers' | 'builders' | 'extraConfig'>>): Promise<void> {
    this.fixture = {
      ...this.fixture,
      ...(changes.workers ? { workers: changes.workers } : {}),
      ...(changes.builders ? { builders: changes.builders } : {}),
      ...(changes.extraConfig !== undefined ? { extraConfig: changes.extraConfig } : {}),
    };
    await fsp.writeFile(path.join(this.basedir, 'fixture.json'), JSON.stringify(this.fixture, null, 2));
    const since = await this.logSize();
    this.child.kill('SIGHUP');
    const line = await this.waitForLog(/configuration update (complete|aborted|partially)/, 30_000, since);
    if (!/complete/.test(line)) throw new Error(`reconfig failed: ${line}\n${tail(await readFrom(this.logFile, since))}`);
  }

  stop(opts: { graceMs?: number } = {}): Promise<void> {
    this.stopped ??= (async () => {
      await terminate(this.child, opts.graceMs ?? 10_000);
      live.delete(this.tracked);
      if (!this.keep) await fsp.rm(this.basedir, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

async function launchMaster(runtime: BuildbotRuntime, opts: MasterOptions, dbTemplate: string): Promise<MasterProcess> {
  const fixtures = fixtureDir();
  const keep = keepDirs(opts.keepBasedir);
  const basedir = await fsp.mkdtemp(path.join(runtime.tmpDir, 'bbgate-master-'));
  await fsp.copyFile(path.join(fixtures, 'master.cfg'), path.join(basedir, 'master.cfg'));
  await fsp.copyFile(path.join(fixtures, 'buildbot.tac'), path.join(basedir, 'buildbot.tac'));
  await fsp.cp(path.join(fixtures, 'wwwstub'), path.join(basedir, 'wwwstub'), { recursive: true });
  await fsp.copyFile(dbTemplate, path.join(basedir, 'state.sqlite'));
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    const file = path.join(basedir, name);
    if (path.relative(basedir, file).startsWith('..')) throw new Error(`files: ${name} is outside the basedir`);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, content);
  }
  const pbPort = opts.pbPort ?? (await freePort());
  let apiPort = await freePort();
  while (apiPort === pbPort) apiPort = await freePort();
  let msgpackPort = opts.msgpack ? await freePort() : undefined;
  while (msgpackPort !== undefined && (msgpackPort === pbPort || msgpackPort === apiPort)) msgpackPort = await freePort();
  const fixture: FixtureJson = {
    pbPort,
    ...(msgpackPort !== undefined ? { msgpackPort } : {}),
    apiPort,
    parentPid: process.pid,
    keepBasedir: keep,
    workers: opts.workers,
    builders: opts.builders?.length ? opts.builders : [{ name: 'idle', workernames: opts.workers.map((w) => w.name), steps: [] }],
    extraConfig: opts.extraConfig ?? '',
  };
  await fsp.writeFile(path.join(basedir, 'fixture.json'), JSON.stringify(fixture, null, 2));
  // What `buildbot start --nodaemon` does, minus its own startup cost.
  const how = runtime.invoke(
    'python',
    ['-c', 'from twisted.scripts import twistd; twistd.run()', '--no_save', '--nodaemon', '--pidfile=', '--python=buildbot.tac'],
    basedir,
  );
  const child = spawn(how.file, how.args, {
    cwd: how.cwd,
    env: pythonEnv({ PYTHONPATH: path.join(runtime.inside(basedir), 'wwwstub') }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new MasterProcess(runtime.version, basedir, pbPort, apiPort, child, fixture, keep);
}

/** Start a fresh master (new temp basedir, new ports). Remember to `stop()` it. */
export async function startMaster(opts: MasterOptions): Promise<RunningMaster> {
  const runtime = buildbotRuntime(opts.version);
  let db = await getTemplateDb(runtime);
  let refreshed = false;
  for (let attempt = 1; ; attempt++) {
    const m = await launchMaster(runtime, opts, db);
    try {
      await m.waitStarted(opts.startTimeoutMs ?? 60_000);
      return m;
    } catch (e) {
      await m.stop({ graceMs: 2000 });
      const retry = e instanceof StartError ? e.retry : null;
      if (retry === 'ports' && opts.pbPort === undefined && attempt < 5) continue;
      if (retry === 'db' && !refreshed) {
        refreshed = true;
        db = await getTemplateDb(runtime, true);
        continue;
      }
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The reference Python worker (buildbot-worker 3.7, or 4.2.1 in the root), for end-to-end comparisons.

export interface PythonWorkerOptions {
  /** Which buildbot-worker: '3.7' (default) or '4' (4.2.1 in the trixie root, basedir under its /tmp). */
  version?: BuildbotVersion;
  /** The master's PB port (on 127.0.0.1 unless `masterHost` is given). */
  masterPort: number;
  masterHost?: string;
  name: string;
  password: string;
  /** Worker basedir (default: a new temp dir, removed by stop()); for version '4', under the root's /tmp. */
  basedir?: string;
  /** Extra `buildbot-worker create-worker` options, e.g. ['--keepalive=60']. */
  createArgs?: string[];
  /** Python code appended to the generated buildbot.tac (e.g. to tweak `s`). */
  tacAppend?: string;
  /** Extra environment for the worker process (and therefore its build steps). */
  env?: Record<string, string>;
  /**
   * Wait until the worker logs "Connected to buildmaster; worker is ready", i.e. the
   * master answered its login (default true). Set false for tests of failing logins.
   */
  waitAttached?: boolean;
  startTimeoutMs?: number;
  keepBasedir?: boolean;
}

export interface RunningPythonWorker {
  readonly basedir: string;
  readonly pid: number;
  log(): Promise<string>;
  logSize(): Promise<number>;
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<string>;
  output(): string;
  /** SIGTERM, SIGKILL after `graceMs` (default 10 s); removes a temp basedir. Idempotent. */
  stop(opts?: { graceMs?: number }): Promise<void>;
}

const PARENT_WATCH_TAC = (pid: number, removeBasedir: boolean) => `
# --- added by bbgate's test fixture: exit (and clean up) when the test process is gone ---
import os as _bbgate_os, shutil as _bbgate_shutil, threading as _bbgate_threading
from twisted.internet import reactor as _bbgate_reactor, task as _bbgate_task
def _bbgate_cleanup():
    if ${removeBasedir ? 'True' : 'False'}:
        _bbgate_shutil.rmtree(basedir, ignore_errors=True)
def _bbgate_hard_exit():
    _bbgate_cleanup()
    _bbgate_os._exit(1)
def _bbgate_watch_parent():
    if _bbgate_os.getppid() != ${pid}:
        _bbgate_watch.stop()
        _bbgate_reactor.addSystemEventTrigger('after', 'shutdown', _bbgate_cleanup)
        _t = _bbgate_threading.Timer(20.0, _bbgate_hard_exit)
        _t.daemon = True
        _t.start()
        _bbgate_reactor.stop()
_bbgate_watch = _bbgate_task.LoopingCall(_bbgate_watch_parent)
_bbgate_watch.start(1.0, now=False)
`;

export async function startPythonWorker(opts: PythonWorkerOptions): Promise<RunningPythonWorker> {
  const runtime = buildbotRuntime(opts.version);
  const ownDir = opts.basedir === undefined;
  if (ownDir) await fsp.mkdir(runtime.tmpDir, { recursive: true });
  const basedir = opts.basedir ?? (await fsp.mkdtemp(path.join(runtime.tmpDir, 'bbgate-pyworker-')));
  await runIn(
    runtime,
    'buildbot-worker',
    ['create-worker', '-q', '-r', ...(opts.createArgs ?? []), runtime.inside(basedir), `${opts.masterHost ?? HOST}:${opts.masterPort}`, opts.name, opts.password],
    basedir,
  );
  const keep = keepDirs(opts.keepBasedir) || !ownDir;
  const tac = path.join(basedir, 'buildbot.tac');
  await fsp.appendFile(tac, PARENT_WATCH_TAC(process.pid, !keep) + (opts.tacAppend ? `\n${opts.tacAppend}\n` : ''));
  const how = runtime.invoke('buildbot-worker', ['start', '--nodaemon', runtime.inside(basedir)], basedir);
  const child = spawn(how.file, how.args, {
    cwd: how.cwd,
    env: pythonEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tracked: Tracked = { child, dir: keep ? undefined : basedir };
  track(tracked);
  let out = '';
  const collect = (b: Buffer) => {
    out += b.toString('utf8');
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const logFile = path.join(basedir, 'twistd.log');
  const dead = () => (exited(child) ? `worker exited (code ${child.exitCode}, signal ${child.signalCode})` : null);
  let stopped: Promise<void> | undefined;
  const w: RunningPythonWorker = {
    basedir,
    pid: child.pid ?? -1,
    log: () => readFrom(logFile, 0),
    logSize: () => fileSize(logFile),
    waitForLog: (re, timeoutMs = 10_000, since = 0) => waitForLogIn(logFile, 'python worker', re, timeoutMs, since, dead),
    output: () => out,
    stop: (o = {}) =>
      (stopped ??= (async () => {
        await terminate(child, o.graceMs ?? 10_000);
        live.delete(tracked);
        if (!keep) await fsp.rm(basedir, { recursive: true, force: true });
      })()),
  };
  if (opts.waitAttached ?? true) {
    try {
      // Over msgpack buildbot-worker logs no "worker is ready"; the open WebSocket is its attach.
      const msgpack = (opts.createArgs ?? []).some((a) => /msgpack/.test(a));
      await w.waitForLog(msgpack ? /WebSocket connection open/ : /Connected to buildmaster; worker is ready/, opts.startTimeoutMs ?? 30_000);
    } catch (e) {
      await w.stop({ graceMs: 2000 });
      throw new Error(`${(e as Error).message}\n--- stdout/stderr ---\n${tail(out, 30)}`);
    }
  }
  return w;
}
