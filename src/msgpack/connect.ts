import type { Duplex } from 'node:stream';
import type { Endpoint } from '../address/endpoint.js';
import { hostPort } from '../address/host-port.js';
import { BbgateError } from '../errors.js';
import { openWebSocket, UpgradeRefusedError, type OpenWebSocket } from '../transport/websocket.js';
import { MAX_MESSAGE_BYTES } from './codec.js';

/** Where the upgrade goes: buildbot-worker asks for ws://HOST:PORT (path "/") whatever carries it, TLS included. */
export interface MsgpackTarget {
  url: string;
  path: string;
  /** Seconds the master has to answer the upgrade. */
  timeout: number;
}

/**
 * The upgrade's target for the master's msgpack port at `endpoint`: ws://HOST:PORT and the path
 * buildbot-worker 4.x appends from the Worker's `path=` (behind a reverse proxy), with a "/" put
 * in front when it has none; "/" without one. A ws:// or wss:// endpoint names its own path.
 */
export function msgpackTarget(endpoint: Endpoint, timeout: number, path?: string): MsgpackTarget {
  const urlPath = endpoint.type === 'ws' ? endpoint.path : path === undefined ? '/' : path.startsWith('/') ? path : `/${path}`;
  return { url: `ws://${hostPort(endpoint.host, endpoint.port)}${urlPath}`, path: urlPath, timeout };
}

/**
 * `Authorization: Basic base64(name:password)`, as buildbot-worker builds it
 * from the name and password encoded with the tac's unicode_encoding. The
 * master splits at the first ":", so a name holding one cannot log in.
 */
export function basicAuthorization(name: Uint8Array, password: Uint8Array): string {
  if (name.includes(0x3a)) throw new BbgateError('MSGPACK_UNAUTHORIZED', 'a worker name holding ":" cannot log in over msgpack_experimental_v7 (HTTP Basic authorization splits at the first ":")');
  return `Basic ${Buffer.concat([name, Buffer.from(':'), password]).toString('base64')}`;
}

/**
 * The upgrade to the master's msgpack port over an established stream (TCP,
 * a proxy tunnel, TLS), with the worker's name and password in it: the
 * master checks them there and answers 401 when they are wrong, which is
 * MSGPACK_UNAUTHORIZED (as PB_UNAUTHORIZED is over PB); 400 means it could
 * not read the authorization. The WebSocket is handed over paused: what the
 * master sent with its 101 waits for the session's listener (it resumes).
 */
export async function upgradeToMsgpack(stream: Duplex, target: MsgpackTarget, authorization: string): Promise<OpenWebSocket> {
  try {
    return await openWebSocket(stream, { ...target, headers: { Authorization: authorization }, maxPayload: MAX_MESSAGE_BYTES, onOpen: (ws) => ws.pause() });
  } catch (err) {
    if (err instanceof UpgradeRefusedError && (err.status === 401 || err.status === 400)) {
      const why = err.status === 401 ? 'the master rejected the worker name or password' : 'the master could not read the worker name and password';
      throw new BbgateError('MSGPACK_UNAUTHORIZED', `${why} (${err.message})`, { cause: err });
    }
    throw err;
  }
}
