import type { Duplex } from 'node:stream';
import { BbgateError } from '../errors.js';
import { Broker, type BrokerLogger } from './broker.js';
import { login } from './login.js';
import type { Referenceable, RemoteReference } from './values/references.js';

/** A logged-in PB connection: the broker, the perspective, and how it ends. */
export interface PbSession {
  readonly broker: Broker;
  readonly perspective: RemoteReference;
  /** Settles with the reason once the connection has ended. */
  readonly closed: Promise<Error>;
  close(reason?: Error): void;
}

export interface PbLoginOptions {
  username: string | Uint8Array;
  password: string | Uint8Array;
  mind: Referenceable | null;
  logger?: BrokerLogger;
  /** Milliseconds for the PB greeting and the login together; the connection is closed after that. */
  timeout?: number;
}

/** Runs PB over an already-open byte stream and logs in; rejects (and closes the stream) if that fails. */
export async function openPbSession(stream: Duplex, options: PbLoginOptions): Promise<PbSession> {
  const broker = new Broker(stream, { role: 'client', ...(options.logger ? { logger: options.logger } : {}) });
  const closed = new Promise<Error>((resolve) => {
    if (!broker.connected) resolve(broker.closeReason!);
    else broker.onDisconnect(resolve);
  });
  // A peer that accepts the connection and then says nothing must not hold the worker forever.
  const timer = options.timeout === undefined ? undefined : setTimeout(() => {
    void broker.close(new BbgateError('NET_TIMEOUT', `no PB greeting and login answer within ${options.timeout! / 1000} s: the peer accepted the connection, then went silent`));
  }, options.timeout);
  try {
    const perspective = await login(broker, options.username, options.password, options.mind);
    return { broker, perspective, closed, close: (reason) => void broker.close(reason) };
  } catch (err) {
    await broker.close(err instanceof Error ? err : undefined);
    const reason = broker.closeReason;
    throw reason instanceof BbgateError && reason.code === 'NET_TIMEOUT' ? reason : err;
  } finally {
    clearTimeout(timer);
  }
}
