import type { Duplex } from 'node:stream';
import { Broker, type BrokerLogger } from './broker.js';
import { login } from './login.js';
import type { Referenceable, RemoteReference } from './references.js';

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
}

/** Runs PB over an already-open byte stream and logs in; rejects (and closes the stream) if that fails. */
export async function openPbSession(stream: Duplex, options: PbLoginOptions): Promise<PbSession> {
  const broker = new Broker(stream, { role: 'client', ...(options.logger ? { logger: options.logger } : {}) });
  const closed = new Promise<Error>((resolve) => {
    if (!broker.connected) resolve(broker.closeReason!);
    else broker.onDisconnect(resolve);
  });
  try {
    const perspective = await login(broker, options.username, options.password, options.mind);
    return { broker, perspective, closed, close: (reason) => void broker.close(reason) };
  } catch (err) {
    await broker.close(err instanceof Error ? err : undefined);
    throw err;
  }
}
