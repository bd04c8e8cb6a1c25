import { performance } from 'node:perf_hooks';
import { BbgateError, PbError, type ErrorCode } from '../errors.js';
import { Broker, PbFailure, PY, login, type RemoteReference } from '../pb/index.js';
import { formatEndpoint, parseEndpoint } from '../address/connection-string.js';
import { readProxyCredentials } from '../address/proxy-credentials.js';
import { describeProxySetting, parseProxySetting, withSettingCredentials } from '../address/proxy-setting.js';
import { join } from 'node:path';
import { withDeadline } from '../deadline.js';
import { dial, type DialStep, type StepOutcome } from '../route/dial.js';
import { routeTo, type Destination } from '../route/route.js';
import { readTac } from '../worker/tac/read.js';
import { readRefusal } from '../relay/refusals.js';
import { RELAY_MARK } from '../relay/worker-hello.js';
import { stallMessage, watchLiveness } from '../liveness.js';
import { describePeerBytes } from '../peer-bytes.js';
import { FirstBytesTap } from '../tls/first-bytes.js';
import { hintFor } from './diagnosis.js';
import { ProbeMind } from './mind.js';
import { probeMsgpack } from './msgpack.js';
import type { MsgpackSession } from '../msgpack/session.js';
import { msgpackOverWsUrl, type WorkerProtocol } from '../worker/config.js';

export type StepName = 'parse' | DialStep | 'pb' | 'msgpack' | 'login' | 'keepalive';

export interface ProbeStep {
  step: StepName;
  /** False only for the step that failed; true too for one not tried. */
  ok: boolean;
  /** Not tried (the login, without a worker name): `message` says why and how to try it. */
  skipped?: true;
  ms: number;
  code?: ErrorCode;
  message: string;
  hint?: string;
  /** Things that work but should not be left that way (the ssl: traps). */
  warnings?: string[];
  /** Particulars (the TLS chain, every address) shown with --verbose. */
  details?: string[];
}

export interface ProbeReport {
  ok: boolean;
  steps: ProbeStep[];
}

export interface ProbeOptions {
  /** A connection string; or give `basedir` to probe what that worker's buildbot.tac says. */
  connection?: string;
  basedir?: string;
  /** A --proxy-connection-string; wins over the environment. */
  proxy?: string;
  /** Read HTTPS_PROXY/ALL_PROXY/NO_PROXY (default true). */
  environmentProxy?: boolean;
  env?: NodeJS.ProcessEnv;
  name?: string;
  password?: string;
  /** Seconds to wait for each of the PB greeting, the login and the keepalive. */
  timeout?: number;
  /** Called as each step begins: a live display shows it waiting. */
  onStepStart?: (step: StepName) => void;
  /** Called as each step ends, with what the report will hold for it. */
  onStep?: (step: ProbeStep) => void;
  /** The master's port's protocol (default: the tac's, else pb). */
  protocol?: WorkerProtocol;
}

/** A step failed: the walk stops there. */
class StepFailed extends Error {}

/**
 * Walks parse → proxy → DNS → TCP (or the proxy's CONNECT) → TLS → PB → login
 * → keepalive (for msgpack_experimental_v7: … → TLS → websocket → msgpack →
 * login → keepalive, see ./msgpack.ts), one layer at a time, with the same dialer the worker uses,
 * timing each step and stopping at the first that fails, so the report names
 * the layer at fault rather than a symptom further up.
 */
export async function probe(options: ProbeOptions): Promise<ProbeReport> {
  const steps: ProbeStep[] = [];
  const timeout = (options.timeout ?? 10) * 1000;
  let broker: Broker | undefined;
  let msgpack: MsgpackSession | undefined;
  // A step whose wait nothing can end any more fails as a bbgate bug, instead of the
  // process ending with no report and status 0.
  let running: StepName | undefined;
  let stall!: (err: Error) => void;
  const stalled = new Promise<never>((_, reject) => (stall = reject));
  stalled.catch(() => undefined);
  const stopGuard = watchLiveness(() => (running === undefined ? undefined : `the probe's ${running} step`), (wait) => stall(new BbgateError('INTERNAL_STALL', stallMessage(wait))));

  const record = (s: ProbeStep) => {
    steps.push(s);
    options.onStep?.(s);
  };
  const step = async <T>(name: StepName, run: () => Promise<T>, describe: (value: T) => StepOutcome): Promise<T> => {
    const start = performance.now();
    const ms = () => Math.round((performance.now() - start) * 10) / 10;
    running = name;
    options.onStepStart?.(name);
    try {
      const value = await Promise.race([run(), stalled]);
      const outcome = describe(value);
      record(typeof outcome === 'string'
        ? { step: name, ok: true, ms: ms(), message: outcome }
        : {
            step: name, ok: true, ms: ms(), message: outcome.message,
            ...(outcome.details.length ? { details: outcome.details } : {}),
            ...(outcome.warnings?.length ? { warnings: outcome.warnings } : {}),
          });
      return value;
    } catch (err) {
      const failure = asBbgateError(err);
      const hint = hintFor(failure.code);
      record({ step: name, ok: false, ms: ms(), code: failure.code, message: failure.message, ...(hint ? { hint } : {}) });
      throw new StepFailed();
    } finally {
      running = undefined;
    }
  };

  try {
    // No step may outlast --timeout, the connect included (a connection string's timeout= may be
    // longer): the parse line shows the endpoint with the timeout in force.
    const target = await step('parse', async () => resolveTarget(options, timeout / 1000), (t) => ({
      message: (t.tac ? `${t.tac}: worker "${t.name}" at ` : '') + formatEndpoint(t.endpoint) + (t.proxy ? ` via ${describeProxySetting(t.proxy)}` : '') +
        (t.protocol === 'pb' ? '' : `, protocol ${t.protocol}`),
      details: [],
      warnings: t.endpoint.type === 'tls' ? t.endpoint.warnings : [],
    }));
    const route = routeTo(target, {
      ...(options.environmentProxy !== undefined ? { environmentProxy: options.environmentProxy } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    const dialed = await dial(route, step);
    if (target.protocol === 'msgpack_experimental_v7') {
      const login = target.name === undefined ? undefined : { name: target.name, password: target.password ?? '' };
      msgpack = await probeMsgpack(dialed, target.endpoint, target.msgpackPath, login, timeout, step);
      return { ok: true, steps };
    }
    // What the server sends first is kept: if it is not PB, it tells the user what listens there.
    const stream = new FirstBytesTap(dialed);
    broker = new Broker(stream, { role: 'client' });
    const ready = broker;
    const overTls = target.endpoint.type === 'tls';
    await step('pb', () => greeting(ready, timeout, overTls, () => stream.firstBytes), (v) => describeGreeting(ready, v));
    if (target.name === undefined) {
      record({ step: 'login', ok: true, skipped: true, ms: 0, message: loginNotTried(ready) });
      return { ok: true, steps };
    }
    const mind = new ProbeMind();
    const perspective = await step('login', () => withTimeout(login(ready, target.name!, target.password ?? '', mind), timeout, 'login'), () =>
      `logged in as "${target.name}"; the master attached the worker` + (mind.builders.length ? ` (builders: ${[...mind.builders].sort().join(', ')})` : ' (no builders)'));
    await step('keepalive', () => roundTrip(perspective, timeout), (ms) => `the master answered a keepalive in ${ms} ms`);
    return { ok: true, steps };
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    return { ok: false, steps };
  } finally {
    stopGuard();
    await broker?.close();
    msgpack?.close();
  }
}

/** The dialect offer, then the server's version announcement; failing before the offer, what the server sent instead (`sent`). */
async function greeting(broker: Broker, timeout: number, overTls: boolean, sent: () => Buffer): Promise<number> {
  try {
    await withTimeout(broker.ready, timeout, 'the PB greeting');
    return await withTimeout(broker.peerVersion, timeout, "the server's PB version");
  } catch (err) {
    if (!(err instanceof BbgateError) || broker.dialect !== undefined) throw err;
    const bytes = sent();
    const what = bytes.length ? `it sent ${describePeerBytes(bytes)}` : 'it sent nothing';
    if (err.code === 'PB_CONNECTION_LOST') {
      throw new PbError('PB_NOT_PB', `the server closed the connection without a PB greeting (${what})` + (overTls && !bytes.length
        ? ', right after the TLS handshake: a TLS-terminating load balancer or proxy with no healthy backend does this'
        : ''));
    }
    if (err.code === 'NET_TIMEOUT') {
      throw new PbError('PB_NOT_PB', `connected, but no PB greeting arrived within ${timeout / 1000} s (${bytes.length
        ? what
        : `${what}: a Buildbot master greets at once; an HTTP server waits for a request`})`);
    }
    if (err.code === 'PB_NOT_PB') throw new PbError('PB_NOT_PB', `${err.message} (${what})`, { cause: err });
    throw err;
  }
}

/** Who greeted: a bbgate relay marks its offer (it answers for the master, which it dials only for a login). */
const byRelay = (broker: Broker) => broker.offered.includes(RELAY_MARK);

function describeGreeting(broker: Broker, version: number): string {
  const offer = `it offers ${broker.offered.map((d) => `"${d}"`).join(', ')}, bbgate chose "${broker.dialect}"; PB version ${version}`;
  return byRelay(broker)
    ? `a bbgate relay answered, not the master: ${offer} (the relay dials the master only when a worker logs in)`
    : `the server speaks PB: ${offer}`;
}

function loginNotTried(broker: Broker): string {
  const how = 'not tried: no worker name; give --name NAME and --password PASSWORD (or BBGATE_PASSWORD), or --basedir DIR to probe as that worker';
  return byRelay(broker) ? `${how}. The greeting came from the relay, not the master: without a login the master was not reached` : how;
}

async function roundTrip(perspective: RemoteReference, timeout: number): Promise<number> {
  const start = performance.now();
  try {
    await withTimeout(perspective.callRemote('keepalive'), timeout, 'the keepalive answer');
  } catch (err) {
    // A Buildbot master's perspective always has keepalive; another PB service's need not.
    if (err instanceof PbFailure && err.check(PY.AttributeError, PY.NoSuchMethod)) {
      throw new PbError('PB_NOT_BUILDBOT', `the login worked, but the server has no keepalive (${err.type}): this PB service is not a Buildbot master`);
    }
    throw err;
  }
  return Math.round((performance.now() - start) * 10) / 10;
}

interface Target extends Destination {
  protocol: WorkerProtocol;
  /** The tac's msgpack `path=` (Buildbot 4.x). */
  msgpackPath?: string;
  name?: string;
  password?: string;
  /** The buildbot.tac it came from, when probing a basedir. */
  tac?: string;
}

/** What to probe: the flags, or what a basedir's buildbot.tac says (flags still win); no connect outlasting `timeout` seconds. */
function resolveTarget(options: ProbeOptions, timeout: number): Target {
  const tac = options.basedir === undefined ? undefined : join(options.basedir, 'buildbot.tac');
  const config = tac === undefined ? undefined : readTac(tac);
  const given = options.connection !== undefined ? parseEndpoint(options.connection) : config?.endpoint;
  if (given === undefined) throw new BbgateError('USAGE', 'give a connection string or --basedir');
  const endpoint = { ...given, timeout: Math.min(given.timeout, timeout) };
  const protocol = options.protocol ?? config?.protocol ?? 'pb';
  if (protocol !== 'pb' && endpoint.type === 'ws') throw new BbgateError('USAGE', msgpackOverWsUrl);
  // BBGATE_PROXY_*, read once: the given proxy takes them now, the environment's or a PAC's per dial.
  const proxyCredentials = readProxyCredentials(options.env ?? process.env);
  const proxy = withSettingCredentials(options.proxy !== undefined ? parseProxySetting(options.proxy) : config?.proxy, proxyCredentials);
  const name = options.name ?? config?.workername;
  const password = options.password ?? config?.password;
  return {
    endpoint,
    protocol,
    ...(config?.msgpackPath !== undefined ? { msgpackPath: config.msgpackPath } : {}),
    ...(proxy !== undefined ? { proxy } : {}),
    ...(proxyCredentials.password !== undefined ? { proxyCredentials } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tac !== undefined ? { tac } : {}),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(promise, ms, () => new BbgateError('NET_TIMEOUT', `no answer: waited ${ms / 1000} s for ${what}`));
}

/** Login failures the master reports as plain exceptions get their own codes. */
function asBbgateError(err: unknown): BbgateError {
  const refused = readRefusal(err);
  if (refused) return refused;
  if (err instanceof PbFailure && err.code === 'PB_REMOTE_ERROR' && /duplicate worker/.test(err.value)) {
    return new PbError('PB_DUPLICATE_WORKER', `the master refused the login: ${err.value} (a worker with this name is already connected)`);
  }
  if (err instanceof PbFailure && err.code === 'PB_UNAUTHORIZED') {
    return new PbError('PB_UNAUTHORIZED', 'the master rejected the worker name or password');
  }
  if (err instanceof BbgateError) return err;
  return new BbgateError('PB_PROTOCOL', err instanceof Error ? err.message : String(err));
}
