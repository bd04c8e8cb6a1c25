import type { Duplex } from 'node:stream';
import { hostPort } from '../address/host-port.js';
import type { Endpoint } from '../address/endpoint.js';
import { basicAuthorization, upgradeToMsgpack } from '../msgpack/connect.js';
import { MsgpackSession, type MsgpackLogger } from '../msgpack/session.js';
import type { MsgpackBot } from './msgpack-bot.js';

export interface MsgpackLoginOptions {
  endpoint: Endpoint;
  /** Encoded with the tac's unicode_encoding, as buildbot-worker sends them. */
  username: Uint8Array;
  password: Uint8Array;
  bot: MsgpackBot;
  logger: MsgpackLogger;
}

/**
 * The WebSocket upgrade to the master's msgpack port over the dialled stream,
 * with the worker's name and password, then the session serving the bot. Like
 * buildbot-worker, the request is for ws://HOST:PORT/ whatever carries it (a
 * proxy tunnel, TLS); a ws:// or wss:// connection string names its own path.
 */
export async function openMsgpackSession(stream: Duplex, options: MsgpackLoginOptions): Promise<MsgpackSession> {
  const { endpoint } = options;
  const path = endpoint.type === 'ws' ? endpoint.path : '/';
  const { ws } = await upgradeToMsgpack(
    stream,
    { url: `ws://${hostPort(endpoint.host, endpoint.port)}${path}`, path, timeout: endpoint.timeout },
    basicAuthorization(options.username, options.password),
  );
  const session: MsgpackSession = new MsgpackSession(ws, (op, message) => options.bot.serve(session, op, message), options.logger);
  return session;
}
