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
import { stallMessage, watchLiveness } from '../liveness.js';
import { hintFor } from './diagnosis.js';
import { ProbeMind } from './mind.js';
import { probeMsgpack } from './msgpack.js';
import type { MsgpackSession } from '../msgpack/session.js';
import { msgpackOverWsUrl, type WorkerProtocol } from '../worker/config.js';

export type StepName = 'parse' | DialStep | 'pb' | 'msgpack' | 'login' | 'keepalive';

export interface ProbeStep {
  step: StepName;
  ok: boolean;
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

  const step = async <T>(name: StepName, run: () => Promise<T>, describe: (value: T) => StepOutcome): Promise<T> => {
    const start = performance.now();
    const ms = () => Math.round((performance.now() - start) * 10) / 10;
    running = name;
    try {
      const value = await Promise.race([run(), stalled]);
      const outcome = describe(value);
      steps.push(typeof outcome === 'string'
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
      steps.push({ step: name, ok: false, ms: ms(), code: failure.code, message: failure.message, ...(hint ? { hint } : {}) });
      throw new StepFailed();
    } finally {
      running = undefined;
    }
  };

  try {
    const target = await step('parse', async () => resolveTarget(options), (t) =>
      (t.tac ? `${t.tac}: worker "${t.name}" at ` : '') + formatEndpoint(t.endpoint) + (t.proxy ? ` via ${describeProxySetting(t.proxy)}` : '') +
      (t.protocol === 'pb' ? '' : `, protocol ${t.protocol}`));
    // No step may outlast --timeout, the connect included (a connection string's timeout= may be longer).
    const endpoint = { ...target.endpoint, timeout: Math.min(target.endpoint.timeout, timeout / 1000) };
    const warnings = target.endpoint.type === 'tls' ? target.endpoint.warnings : [];
    if (warnings.length) steps[steps.length - 1]!.warnings = [...warnings];
    const route = routeTo({ ...target, endpoint }, {
      ...(options.environmentProxy !== undefined ? { environmentProxy: options.environmentProxy } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    const stream = await dial(route, step);
    if (target.protocol === 'msgpack_experimental_v7') {
      const login = target.name === undefined ? undefined : { name: target.name, password: target.password ?? '' };
      msgpack = await probeMsgpack(stream, endpoint, login, timeout, step);
      return { ok: true, steps };
    }
    broker = new Broker(stream, { role: 'client' });
    const ready = broker;
    const overTls = target.endpoint.type === 'tls';
    await step('pb', () => greeting(ready, timeout, overTls), (v) =>
      `the server speaks PB: it offers ${ready.offered.map((d) => `"${d}"`).join(', ')}, bbgate chose "${ready.dialect}"; PB version ${v}`);
    if (target.name === undefined) return { ok: true, steps };
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

/** The dialect offer, then the server's version announcement. */
async function greeting(broker: Broker, timeout: number, overTls: boolean): Promise<number> {
  try {
    await withTimeout(broker.ready, timeout, 'the PB greeting');
    return await withTimeout(broker.peerVersion, timeout, "the server's PB version");
  } catch (err) {
    if (err instanceof BbgateError && err.code === 'PB_CONNECTION_LOST') {
      throw new PbError('PB_NOT_PB', 'the server closed the connection without a PB greeting' + (overTls
        ? ', right after the TLS handshake: a TLS-terminating load balancer or proxy with no healthy backend does this'
        : ''));
    }
    if (err instanceof BbgateError && err.code === 'NET_TIMEOUT') {
      throw new PbError('PB_NOT_PB', `connected, but no PB greeting arrived within ${timeout / 1000} s (a Buildbot master greets at once; an HTTP server waits for a request)`);
    }
    throw err;
  }
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
  name?: string;
  password?: string;
  /** The buildbot.tac it came from, when probing a basedir. */
  tac?: string;
}

/** What to probe: the flags, or what a basedir's buildbot.tac says (flags still win). */
function resolveTarget(options: ProbeOptions): Target {
  const tac = options.basedir === undefined ? undefined : join(options.basedir, 'buildbot.tac');
  const config = tac === undefined ? undefined : readTac(tac);
  const endpoint = options.connection !== undefined ? parseEndpoint(options.connection) : config?.endpoint;
  if (endpoint === undefined) throw new BbgateError('USAGE', 'give a connection string or --basedir');
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
