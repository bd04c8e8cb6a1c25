import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../address/endpoint.js';
import { withDeadline } from '../deadline.js';
import { BbgateError } from '../errors.js';
import type { WireMessage } from '../msgpack/codec.js';
import { basicAuthorization, msgpackTarget, upgradeToMsgpack, type MsgpackTarget } from '../msgpack/connect.js';
import { MsgpackSession } from '../msgpack/session.js';
import { messageText, toText, type PbValue } from '../pb/index.js';
import { openWebSocket, UpgradeRefusedError } from '../transport/websocket.js';
import type { StepOutcome } from '../route/dial.js';
import { ProbeMind } from './mind.js';

export type MsgpackStep = 'websocket' | 'msgpack' | 'login' | 'keepalive';
type Step = <T>(name: MsgpackStep, run: () => Promise<T>, describe: (value: T) => StepOutcome) => Promise<T>;

/**
 * What the probe does after the dial for msgpack_experimental_v7: the
 * WebSocket upgrade with the worker's name and password (a 401 is a login
 * failure, MSGPACK_UNAUTHORIZED), the master's first request (its msgpack
 * greeting), the worker info exchange and the attach (answered like a worker
 * with nothing on disk), then a WebSocket ping. Without a name it stops after
 * the upgrade, which the master answers with 401. Returns the session to close.
 */
export async function probeMsgpack(stream: Duplex, endpoint: Endpoint, path: string | undefined, login: { name: string; password: string } | undefined, timeout: number, step: Step): Promise<MsgpackSession | undefined> {
  const target = msgpackTarget(endpoint, timeout / 1000, path);
  if (!login) {
    await step('websocket', () => anonymousUpgrade(stream, target), (said) => said);
    return undefined;
  }
  const { ws } = await step(
    'websocket',
    () => upgradeToMsgpack(stream, target, basicAuthorization(Buffer.from(login.name), Buffer.from(login.password))),
    (u) => `GET ${target.path} upgraded to WebSocket (HTTP ${u.statusCode}): the master took the worker name and password`,
  );
  const mind = new MsgpackProbeMind();
  const session: MsgpackSession = new MsgpackSession(ws, (op, message) => mind.serve(session, op, message), { warn: () => undefined });
  const ended = session.closed.then((reason) => Promise.reject(reason));
  ended.catch(() => undefined);
  const within = <T>(promise: Promise<T>, what: string) => withDeadline(Promise.race([promise, ended]), timeout, () => new BbgateError('NET_TIMEOUT', `no answer: waited ${timeout / 1000} s for ${what}`));
  await step('msgpack', () => within(mind.first, "the master's first msgpack request"), (op) => `the master speaks msgpack_experimental_v7: its first request was "${op}"`);
  await step('login', () => within(mind.attached, 'the worker info exchange and the attach'), (dirs) =>
    `the master took the worker info and attached the worker` + (dirs.length ? ` (builder directories: ${dirs.join(', ')})` : ''));
  await step('keepalive', async () => {
    const start = performance.now();
    await within(session.ping(), 'the answer to a WebSocket ping');
    return Math.round((performance.now() - start) * 10) / 10;
  }, (ms) => `the master answered a WebSocket ping in ${ms} ms`);
  return session;
}

/** Without credentials the master answers 401: that proves its msgpack port. */
async function anonymousUpgrade(stream: Duplex, target: MsgpackTarget): Promise<string> {
  try {
    const { ws } = await openWebSocket(stream, target);
    ws.terminate();
    return `GET ${target.path} upgraded to WebSocket without credentials (a Buildbot master would have answered 401); give --name and --password to log in`;
  } catch (err) {
    if (err instanceof UpgradeRefusedError && err.status === 401) return 'the server answers the WebSocket upgrade with 401, as a msgpack master does without credentials; give --name and --password to log in';
    throw err;
  }
}

/**
 * Answers the master's attach like a worker with an empty basedir: the probe's
 * worker info (as over PB), rc 0 and no files for the master's own listdir,
 * rc 0 for its mkdir (nothing is made). Settles `attached` with the builder
 * directories the master asked for once that mkdir has been answered.
 */
class MsgpackProbeMind {
  readonly first: Promise<string>;
  readonly attached: Promise<string[]>;
  private seen!: (op: string) => void;
  private done!: (dirs: string[]) => void;
  private readonly info = new ProbeMind();

  constructor() {
    this.first = new Promise((resolve) => (this.seen = resolve));
    this.attached = new Promise((resolve) => (this.done = resolve));
  }

  async serve(session: MsgpackSession, op: string, message: WireMessage): Promise<PbValue> {
    this.seen(op);
    if (op === 'get_worker_info') return this.info.remote_getWorkerInfo() as Map<PbValue, PbValue>;
    if (op !== 'start_command') return null;
    const id = message.get('command_id') ?? null;
    const name = toText(message.get('command_name'));
    const args = message.get('args');
    const paths = args instanceof Map && Array.isArray(args.get('paths')) ? (args.get('paths') as PbValue[]).map(messageText) : [];
    // After the answer to start_command, as a worker sends them.
    setImmediate(() => {
      void (async () => {
        await session.request('update', { command_id: id, args: [...(name === 'listdir' ? [['files', []]] : []), ['rc', 0]] });
        await session.request('complete', { command_id: id, args: null });
        if (name === 'mkdir') this.done(paths.filter((p) => p !== 'info').sort());
      })().catch(() => undefined);
    });
    return null;
  }
}
