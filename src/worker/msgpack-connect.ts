import type { Duplex } from 'node:stream';
import type { Endpoint } from '../address/endpoint.js';
import { basicAuthorization, msgpackTarget, upgradeToMsgpack } from '../msgpack/connect.js';
import { MsgpackSession, type MsgpackLogger } from '../msgpack/session.js';
import type { MsgpackBot } from './msgpack-bot.js';

export interface MsgpackLoginOptions {
  endpoint: Endpoint;
  /** The tac's `path=` (Buildbot 4.x): the URL path of the master's msgpack endpoint. */
  path?: string;
  /** Encoded with the tac's unicode_encoding, as buildbot-worker sends them. */
  username: Uint8Array;
  password: Uint8Array;
  bot: MsgpackBot;
  logger: MsgpackLogger;
}

/**
 * The WebSocket upgrade to the master's msgpack port over the dialled stream,
 * with the worker's name and password, then the session serving the bot. Like
 * buildbot-worker, the request is for ws://HOST:PORT/ (or the tac's path=) whatever carries it
 * (a proxy tunnel, TLS).
 */
export async function openMsgpackSession(stream: Duplex, options: MsgpackLoginOptions): Promise<MsgpackSession> {
  const { endpoint } = options;
  const { ws } = await upgradeToMsgpack(stream, msgpackTarget(endpoint, endpoint.timeout, options.path), basicAuthorization(options.username, options.password));
  const session: MsgpackSession = new MsgpackSession(ws, (op, message) => options.bot.serve(session, op, message), options.logger);
  return session;
}
