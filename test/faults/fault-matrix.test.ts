// The fault matrix: a scripted hostile peer (test/helpers/hostile-peer.ts) breaks off at every
// stage of a connection, in each of four ways (close, reset, stall, garbage), against the probe
// (the real CLI), the worker (a real `bbgate start --nodaemon` process), the relay's upstream side
// (the peer plays the master behind a real relay) and the relay's listener side (the peer plays
// the worker). Real `openssl s_server -quiet </dev/null`, which closes each connection right
// after the handshake, is in it too, with and without TLS 1.3 session tickets and as TLS 1.2.
//
// Every cell asserts an outcome, never a duration: the probe exits non-zero naming the failing
// step (text and --json); the worker logs the typed cause at least twice, retrying, and is still
// running; the relay logs a code or state naming the stage, and a good connection through it
// afterwards still logs in. A generous kill deadline only turns a hang into a failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCreateWorker } from '../../src/cli/create-worker.js';
import { probe, type ProbeReport } from '../../src/probe/probe.js';
import { bbgateEnv, CLI, type ProbeJson } from '../helpers/cli.js';
import { waitListening } from '../helpers/daemon.js';
import { FAULTS, playHostileWorker, startHostileMaster, type Fault, type HostileMaster, type MasterScript, type MasterStage, type WorkerScript, type WorkerStage } from '../helpers/hostile-peer.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

/** Seconds: the probe's --timeout, and the connection strings' timeout= (connect, TLS, upgrade, PB greeting and login). */
const TIMEOUT = 3;
/** Only to turn a hang into a failing cell: far beyond any budget a cell has. */
const KILL_AFTER_MS = 45_000;
/**
 * Cells at once: most of a cell waits on a timeout, and the rest is mostly starting processes,
 * which spread over the cores; the peers and relays share this process's one thread.
 */
const CONCURRENCY = 3 * availableParallelism();

type Variant = 'tls13' | 'tls12';

/** One way for the peer playing the master to misbehave: the stage, the fault, and for TLS the version it speaks. */
interface MasterCell {
  name: string;
  stage: MasterStage;
  fault: Fault;
  variant?: Variant;
  /** Real openssl s_server -quiet </dev/null instead of the scripted peer. */
  openssl?: { tickets: boolean; version: Variant };
}

const MASTER_STAGES: MasterStage[] = ['tcp', 'proxy-status', 'proxy-headers', 'proxy-body', 'tls-before', 'tls-after', 'websocket', 'pb-offer', 'pb-version', 'login-challenge', 'login-verdict', 'first-command'];

function masterCells(): MasterCell[] {
  const cells: MasterCell[] = [];
  for (const stage of MASTER_STAGES) {
    const variants: (Variant | undefined)[] = stage === 'tls-after' ? ['tls13', 'tls12'] : [undefined];
    for (const variant of variants) {
      for (const fault of FAULTS) cells.push({ name: `${stage}${variant ? `/${variant}` : ''}/${fault}`, stage, fault, ...(variant ? { variant } : {}) });
    }
  }
  // The issue's reproduction, as it was reported.
  for (const [name, openssl] of [
    ['tls13 with session tickets', { tickets: true, version: 'tls13' }],
    ['tls13 without session tickets', { tickets: false, version: 'tls13' }],
    ['tls12', { tickets: true, version: 'tls12' }],
  ] as const) {
    cells.push({ name: `openssl s_server -quiet </dev/null, ${name}`, stage: 'tls-after', fault: 'close', openssl });
  }
  return cells;
}

/** The probe step that must fail when the master breaks off at `stage`. */
const PROBE_STEP: Record<MasterStage, string[]> = {
  // A reset right after the accept (here, and after half an offer) can beat the connect's own completion.
  tcp: ['tcp', 'pb'],
  'proxy-status': ['connect'],
  'proxy-headers': ['connect'],
  'proxy-body': ['connect'],
  'tls-before': ['tls'],
  // A server that hangs up right after the handshake may be read as a refused client certificate (tls) or as a silent master (pb).
  'tls-after': ['tls', 'pb'],
  websocket: ['websocket'],
  'pb-offer': ['tcp', 'pb'],
  'pb-version': ['pb'],
  'login-challenge': ['login'],
  'login-verdict': ['login'],
  'first-command': ['keepalive'],
};

/** The family of typed codes that names the stage, for the worker's log and the relay's. */
const STAGE_CODE: Record<MasterStage, RegExp> = {
  tcp: /^(PB_|BANANA_|NET_)/,
  'proxy-status': /^PROXY_/,
  'proxy-headers': /^PROXY_/,
  'proxy-body': /^PROXY_/,
  'tls-before': /^(TLS_|NET_)/,
  'tls-after': /^(TLS_|PB_|NET_)/,
  websocket: /^(WS_|NET_)/,
  'pb-offer': /^(PB_|BANANA_|NET_)/,
  'pb-version': /^(PB_|BANANA_|NET_)/,
  'login-challenge': /^(PB_|BANANA_|JELLY_|NET_)/,
  'login-verdict': /^(PB_|BANANA_|JELLY_|NET_)/,
  'first-command': /^(PB_|BANANA_|JELLY_|NET_)/,
};

const TIMED_OUT = /within \d|timed out|timeout/i;

/**
 * The cause must be the one the peer gave: a stall is reported as a wait that ran out, and a
 * close, reset or garbage never is (a misleading cause sends whoever reads the log the wrong
 * way). Behind a proxy's refusal the status line alone decides, whatever follows it.
 */
function assertCause(c: { stage: string; fault: Fault }, said: string): void {
  if (c.stage === 'proxy-body' && c.fault !== 'garbage') return assert.match(said, /502 Bad Gateway/, said);
  if (c.fault === 'stall') assert.match(said, TIMED_OUT, `a stall is reported as a wait that ran out: ${said}`);
  else assert.doesNotMatch(said, TIMED_OUT, `a ${c.fault} is not reported as a timeout: ${said}`);
}

let pki: TestPki;
let trust: string;

before(async () => {
  pki = await testPki();
  trust = await pki.trustDir(pki.root);
});

/** A master that misbehaves as `cell` says, and how to reach it. */
interface Target {
  connection: string;
  proxy?: string;
  /** Turns the peer into a good master (for the relay's "still serving" check); undefined for openssl. */
  turnGood?: () => void;
  close(): Promise<void>;
}

async function startTarget(cell: MasterCell): Promise<Target> {
  if (cell.openssl) return startOpenssl(cell.openssl);
  const base: MasterScript = {
    ...(cell.stage.startsWith('proxy-') ? { proxy: true } : {}),
    ...(cell.stage.startsWith('tls-') ? { tls: { key: pki.server.key, cert: pki.serverChain, ...versions(cell.variant ?? 'tls13') } } : {}),
    ...(cell.stage === 'websocket' ? { websocket: true } : {}),
  };
  const peer: HostileMaster = await startHostileMaster({ ...base, stage: cell.stage, fault: cell.fault });
  const port = peer.port;
  const connection = base.tls ? `tls:127.0.0.1:${port}:trustRoots=${trust}:timeout=${TIMEOUT}`
    : base.websocket ? `ws://127.0.0.1:${port}/pb#timeout=${TIMEOUT}`
    : `tcp:127.0.0.1:${port}:timeout=${TIMEOUT}`;
  return {
    connection,
    ...(base.proxy ? { proxy: `tcp:127.0.0.1:${port}` } : {}),
    turnGood: () => (peer.script = base),
    close: () => peer.close(),
  };
}

function versions(variant: Variant): { minVersion: 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1.2' | 'TLSv1.3' } {
  return variant === 'tls12' ? { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } : { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
}

/** `openssl s_server -quiet` with stdin at EOF: it completes each handshake, then closes. */
async function startOpenssl(o: { tickets: boolean; version: Variant }): Promise<Target> {
  const port = await freePort();
  const server = startProcess('openssl', [
    's_server', '-quiet', '-accept', String(port), '-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile,
    ...(o.version === 'tls12' ? ['-tls1_2'] : ['-tls1_3']),
    ...(o.tickets ? [] : ['-num_tickets', '0']),
  ]);
  server.child.stdin.end();
  await waitListening('openssl s_server', server, [port], server.stderr);
  return {
    connection: `tls:127.0.0.1:${port}:trustRoots=${trust}:timeout=${TIMEOUT}`,
    close: async () => {
      server.kill();
      await server.exited;
    },
  };
}

interface CliRun {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Killed at KILL_AFTER_MS: it hung. */
  hung: boolean;
}

function runCli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: KILL_AFTER_MS, killSignal: 'SIGKILL', env: bbgateEnv() }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; killed?: boolean; signal?: string }) | null;
      resolve({
        status: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
        hung: Boolean(e?.killed),
      });
    });
  });
}

function describeRun(run: CliRun): string {
  return `status ${run.status}${run.signal ? ` signal ${run.signal}` : ''}${run.hung ? ' (hung: killed)' : ''}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
}

/** The probe, with --json and without, against one target; asserts exit, step and code. */
async function probeFails(target: Pick<Target, 'connection' | 'proxy'>, steps: string[], extra: string[] = []): Promise<ProbeJson['steps'][number]> {
  const args = ['probe', target.connection, ...(target.proxy ? ['--proxy-connection-string', target.proxy] : []), '--no-env-proxy', '--name', 'w', '--password', 'pw', '--timeout', String(TIMEOUT), ...extra];
  const [json, plain] = await Promise.all([runCli([...args, '--json']), runCli(args)]);
  for (const run of [json, plain]) {
    assert.ok(!run.hung && run.signal === null, `the probe must exit by itself: ${describeRun(run)}`);
    assert.notEqual(run.status, 0, `the probe must not report success: ${describeRun(run)}`);
  }
  let report: ProbeJson;
  try {
    report = JSON.parse(json.stdout) as ProbeJson;
  } catch {
    assert.fail(`--json printed no JSON: ${describeRun(json)}`);
  }
  assert.equal(report.ok, false);
  const failed = report.steps.at(-1)!;
  assert.equal(failed.ok, false, JSON.stringify(report));
  assert.ok(steps.includes(failed.step), `the failing step is ${failed.step}, expected ${steps.join(' or ')}: ${JSON.stringify(report)}`);
  assert.ok(failed.code, `a typed code: ${JSON.stringify(report)}`);
  assert.doesNotMatch(failed.code!, /INTERNAL/);
  // The text report (a run of its own, which may have met the fault a moment apart) names a step and code on its ✘ line.
  const cross = /^✘ (\S+)\s.*?\b([A-Z]+_[A-Z_]+): /m.exec(plain.stdout);
  assert.ok(cross && steps.includes(cross[1]!), `the text report names the failing step (${steps.join(' or ')}) and its code: ${describeRun(plain)}`);
  return failed;
}

/** Results, for the summary printed at the end. */
const outcomes: { target: string; cell: string; ok: boolean; detail: string }[] = [];

type Cell = (name: string, body: () => Promise<string>) => void;

/** The cells of one target, registered here; all of them run from one suite at the end of this file, interleaved. */
const registered: { target: string; name: string; body: () => Promise<string> }[] = [];

function cellsOf(target: string, register: (cell: Cell) => void): void {
  register((name, body) => registered.push({ target, name, body }));
}

after(() => {
  const targets = [...new Set(outcomes.map((o) => o.target))];
  const lines = targets.map((t) => {
    const mine = outcomes.filter((o) => o.target === t);
    return `  ${t}: ${mine.filter((o) => o.ok).length}/${mine.length} pass`;
  });
  const passed = outcomes.filter((o) => o.ok).length;
  console.log(`fault matrix: ${outcomes.length} cells, ${passed} pass\n${lines.join('\n')}`);
  if (process.env.BBGATE_MATRIX_DETAIL) for (const o of outcomes) console.log(`${o.ok ? 'ok  ' : 'FAIL'} ${o.target}: ${o.cell} — ${o.detail}`);
});

cellsOf('probe', (cell) => {
  for (const c of masterCells()) {
    cell(c.name, async () => {
      const target = await startTarget(c);
      try {
        const failed = await probeFails(target, PROBE_STEP[c.stage]);
        assertCause(c, `${failed.code}: ${failed.message}`);
        return `${failed.step} ${failed.code}: ${failed.message}`;
      } finally {
        await target.close();
      }
    });
  }
});

/** A `bbgate start --nodaemon` worker, its JSON log lines on stdout (BBGATE_LOG_FORMAT=json, for a log shipper). */
async function startWorkerProcess(connection: string, proxy: string | undefined): Promise<{ process: LineProcess; stop(): Promise<void> }> {
  const basedir = await mkdtemp(join(tmpdir(), 'bbgate-matrix-'));
  const created = await runCreateWorker(['--quiet', '--connection-string', connection, '--maxdelay', '1', '--keepalive', '1',
    ...(proxy ? ['--proxy-connection-string', proxy] : []), basedir, 'w', 'pw']);
  assert.equal(created, 0);
  const worker = startProcess(process.execPath, [CLI, 'start', '--nodaemon', basedir], { env: bbgateEnv({ BBGATE_LOG_FORMAT: 'json' }) });
  return {
    process: worker,
    async stop() {
      worker.child.kill('SIGTERM');
      const timer = setTimeout(() => worker.kill(), 10_000);
      await worker.exited;
      clearTimeout(timer);
      await rm(basedir, { recursive: true, force: true });
    },
  };
}

interface LogLine {
  msg: string;
  code?: string;
  [key: string]: unknown;
}

function parsed(lines: string[]): LogLine[] {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

const RETRY = /^connection (failed|ended): .*retrying in/;

/** The first `count` retries logged; fails if the worker exits first or the kill deadline passes. */
async function retries(worker: LineProcess, count: number): Promise<LogLine[]> {
  const seen = () => parsed(worker.lines).filter((l) => RETRY.test(l.msg));
  const log = () => `${worker.lines.join('\n')}\n${worker.stderr()}`;
  try {
    await waitFor(() => {
      if (seen().length >= count) return true;
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
        throw new Error(`the worker exited (status ${worker.child.exitCode}, signal ${worker.child.signalCode}) after ${seen().length} retries; it must stay alive and retry`);
      }
      return false;
    }, `${count} retries in the worker's log`, KILL_AFTER_MS, 50);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${log()}`);
  }
  return seen().slice(0, count);
}

cellsOf('worker', (cell) => {
  for (const c of masterCells()) {
    cell(c.name, async () => {
      const target = await startTarget(c);
      const worker = await startWorkerProcess(target.connection, target.proxy);
      try {
        const seen = await retries(worker.process, 2);
        for (const line of seen.slice(0, 2)) {
          assert.ok(line.code, `each retry names its cause with a code: ${JSON.stringify(line)}`);
          assert.match(line.code!, STAGE_CODE[c.stage], `the code names the stage: ${JSON.stringify(line)}`);
          assertCause(c, `${line.code}: ${line.msg.replace(/; retrying in .*$/, '')}`);
        }
        assert.equal(worker.process.child.exitCode, null, 'the worker is still running');
        assert.equal(worker.process.child.signalCode, null, 'the worker is still running');
        return seen.slice(0, 2).map((l) => `${l.code}: ${l.msg}`).join(' | ');
      } finally {
        await worker.stop();
        await target.close();
      }
    });
  }
});

/**
 * bbgate's probe, in this process: for the relay cells it is only the relay's client (the CLI
 * has its own cells), and a process per check would cost more than the cell. The relay's own
 * budget (connect, TLS, greeting: TIMEOUT each) comes before its client's answer.
 */
function probeInProcess(connection: string): Promise<ProbeReport> {
  return probe({ connection, environmentProxy: false, name: 'w', password: 'pw', timeout: TIMEOUT * 4 });
}

function failedStep(report: ProbeReport): ProbeReport['steps'][number] {
  const last = report.steps.at(-1)!;
  assert.ok(!report.ok && !last.ok && last.code, `the probe through the relay must fail with a code: ${JSON.stringify(report)}`);
  return last;
}

/** The relay's log lines that carry a typed code or a connection's last state and reason. */
function relayEvidence(relay: TestRelay): string {
  return relay.lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n');
}

cellsOf('relay upstream', (cell) => {
  for (const c of masterCells()) {
    cell(c.name, async () => {
      const target = await startTarget(c);
      const relay = await startRelay({
        listen: ['tcp:0:interface=127.0.0.1'],
        upstream: target.connection,
        ...(target.proxy ? { upstreamProxy: target.proxy } : {}),
        environmentProxy: false,
        allow: ['w'],
        handshakeTimeout: TIMEOUT,
        loginTimeout: TIMEOUT,
      });
      try {
        const through = `tcp:127.0.0.1:${relay.port()}`;
        const failed = failedStep(await probeInProcess(through));
        assert.ok(['login', 'keepalive'].includes(failed.step), JSON.stringify(failed));
        const said = await relay.waitForLog((l) => typeof l.fields.code === 'string' || (l.msg === 'connection closed' && l.fields.state !== 'handshake'), KILL_AFTER_MS);
        const code = said.fields.code as string | undefined;
        if (code !== undefined) assert.match(code, STAGE_CODE[c.stage], relayEvidence(relay));
        // A master silent after the login is no fault the relay can see (its idle timeout is long): the worker's keepalive gives up first.
        if (c.stage === 'first-command' && c.fault === 'stall') assert.match(String(said.fields.reason), /the worker closed/);
        else assertCause(c, code !== undefined ? `${code}: ${String(said.fields.err)}` : String(said.fields.reason));
        if (c.fault === 'stall' && c.stage === 'login-challenge') assert.match(String(said.fields.reason), /master's challenge/);
        if (c.fault === 'stall' && c.stage === 'login-verdict') assert.match(String(said.fields.reason), /master's verdict/);
        if (target.turnGood) {
          target.turnGood();
          const good = await probeInProcess(through);
          assert.ok(good.ok, `a good connection through the relay afterwards: ${JSON.stringify(good)}\n${relayEvidence(relay)}`);
        } else {
          // openssl cannot turn good: the relay still answers, and tells the next worker the same.
          assert.equal((await relay.healthz()).status, 200);
          assert.equal(failedStep(await probeInProcess(through)).code, 'RELAY_UPSTREAM');
        }
        return code ? `${code}: ${said.msg} ${String(said.fields.err ?? '')}` : `${String(said.fields.state)}: ${String(said.fields.reason)}`;
      } finally {
        await relay.stop();
        await target.close();
      }
    });
  }
});

type ListenerKind = 'tcp' | 'tls' | 'ws';

interface WorkerCell {
  name: string;
  stage: WorkerStage;
  fault: Fault;
  listener: ListenerKind;
  variant?: Variant;
}

function workerCells(): WorkerCell[] {
  const cells: WorkerCell[] = [];
  const stages: [WorkerStage, ListenerKind, Variant[]?][] = [
    ['tcp', 'tcp'],
    ['tls-before', 'tls'],
    ['tls-after', 'tls', ['tls13', 'tls12']],
    ['websocket', 'ws'],
    ['pb-offer', 'tcp'],
    ['pb-version', 'tcp'],
    ['login-challenge', 'tcp'],
    ['login-verdict', 'tcp'],
    ['first-command', 'tcp'],
  ];
  for (const [stage, listener, variants] of stages) {
    for (const variant of variants ?? [undefined]) {
      for (const fault of FAULTS) cells.push({ name: `${stage}${variant ? `/${variant}` : ''}/${fault}`, stage, fault, listener, ...(variant ? { variant } : {}) });
    }
  }
  return cells;
}

/**
 * What the relay must say about a worker that broke off at `stage`: a line that names the
 * stage. A worker that goes quiet after its login is no fault of the relay's to report (its
 * idle timeout is long), so that cell asks only that the relay keeps serving.
 */
function listenerEvidence(c: WorkerCell): ((l: TestRelay['lines'][number]) => boolean) | undefined {
  if (c.stage === 'first-command' && c.fault === 'stall') return undefined;
  if (c.stage === 'tls-before' || c.stage === 'tls-after' && c.fault !== 'stall' && c.fault !== 'garbage') {
    return (l) => l.msg === 'TLS handshake with a client failed' || l.msg === 'connection closed';
  }
  if (c.stage === 'websocket') return (l) => l.msg === 'WebSocket upgrade request from a client failed';
  const states: Record<WorkerStage, string> = {
    tcp: 'handshake',
    'tls-before': 'handshake',
    'tls-after': 'handshake',
    websocket: 'handshake',
    'pb-offer': 'handshake',
    'pb-version': 'handshake',
    'login-challenge': 'handshake',
    'login-verdict': 'login',
    'first-command': 'relaying',
  };
  return (l) => l.msg === 'connection closed' && l.fields.state === states[c.stage];
}

cellsOf('relay listener', (cell) => {
  for (const c of workerCells()) {
    cell(c.name, async () => {
      const master = await startHostileMaster({});
      const listen = {
        tcp: 'tcp:0:interface=127.0.0.1',
        tls: `tls:0:interface=127.0.0.1:certKey=${pki.server.certFile}:privateKey=${pki.server.keyFile}:extraCertChain=${pki.intermediate.certFile}`,
        ws: 'ws://127.0.0.1:0/pb',
      }[c.listener];
      const relay = await startRelay({ listen: [listen], upstream: `tcp:127.0.0.1:${master.port}`, allow: ['w'], handshakeTimeout: TIMEOUT, loginTimeout: TIMEOUT });
      const script: WorkerScript = {
        stage: c.stage,
        fault: c.fault,
        name: 'w',
        ...(c.listener === 'tls' ? { tls: { ca: pki.root.cert, ...versions(c.variant ?? 'tls13') } } : {}),
        ...(c.listener === 'ws' ? { websocketPath: '/pb' } : {}),
      };
      const hostile = playHostileWorker(relay.port(), script);
      try {
        await hostile.done.catch(() => undefined);
        const evidence = listenerEvidence(c);
        const said = evidence ? await relay.waitForLog(evidence, KILL_AFTER_MS) : undefined;
        if (said) {
          const reason = String(said.fields.reason ?? said.fields.err);
          assertCause(c, reason);
          // The master here is a good one: a worker's fault must not be put down to it.
          assert.ok(!/the master/.test(reason) || /the worker/.test(reason), `the worker is named as the cause, not the master: ${reason}`);
        }
        const connection = {
          tcp: `tcp:127.0.0.1:${relay.port()}:timeout=${TIMEOUT}`,
          tls: `tls:127.0.0.1:${relay.port()}:trustRoots=${trust}:timeout=${TIMEOUT}`,
          ws: `ws://127.0.0.1:${relay.port()}/pb#timeout=${TIMEOUT}`,
        }[c.listener];
        const good = await probeInProcess(connection);
        assert.ok(good.ok, `a good worker through the relay afterwards: ${JSON.stringify(good)}\n${relayEvidence(relay)}`);
        return said ? `${said.msg}: ${String(said.fields.state ?? '')} ${String(said.fields.reason ?? said.fields.err ?? '')}` : 'quiet worker; relay still serving';
      } finally {
        hostile.destroy();
        await relay.stop();
        await master.close();
      }
    });
  }
});

// Round robin over the targets: cells that mostly wait (stalls) mix with cells that start processes.
describe('the fault matrix', { concurrency: CONCURRENCY }, () => {
  const queues = [...new Set(registered.map((r) => r.target))].map((t) => registered.filter((r) => r.target === t));
  while (queues.some((q) => q.length)) {
    for (const q of queues) {
      const r = q.shift();
      if (!r) continue;
      it(`${r.target}: ${r.name}`, async () => {
        try {
          const detail = await r.body();
          outcomes.push({ target: r.target, cell: r.name, ok: true, detail });
        } catch (err) {
          outcomes.push({ target: r.target, cell: r.name, ok: false, detail: (err as Error).message.split('\n')[0]! });
          throw err;
        }
      });
    }
  }
});
