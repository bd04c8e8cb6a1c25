import type { Duplex } from 'node:stream';
import { BbgateError } from '../errors.js';
import { dial, type RouteOptions } from '../transport/dial.js';
import type { RelayConfig } from './config.js';
import type { AcceptedStream } from './listeners.js';
import { greetMaster } from './master-greeting.js';
import type { RelayMetrics } from './metrics.js';
import type { AllowList } from './policy.js';
import { proxyV2Header } from './proxy-protocol.js';
import { refusal, type RefusalCode } from './refusals.js';
import { HandshakeError, readWorkerHello, refuseLogin, type WorkerHello } from './worker-hello.js';

export interface RelayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export type ConnectionState = 'handshake' | 'dialing' | 'relaying';

/** What every connection of one relay shares. */
export interface RelayContext {
  config: RelayConfig;
  policy: AllowList;
  metrics: RelayMetrics;
  logger: RelayLogger;
  route: RouteOptions;
  /** Live admitted connections per worker name, for maxPerWorker. */
  perWorker: Map<string, number>;
  closed(connection: RelayedConnection): void;
}

/** How long a refused worker has to read its refusal before the relay hangs up anyway. */
const REFUSAL_LINGER_MS = 2000;

/**
 * One worker's connection through the relay: the PB handshake up to the
 * login, the admission decision, the dial to the master and its greeting,
 * then two pipes and nothing else on the hot path.
 */
export class RelayedConnection {
  state: ConnectionState = 'handshake';
  worker: string | undefined;
  private readonly started = Date.now();
  private master: Duplex | undefined;
  private admitted = false;
  private ended = false;
  private reason: string | undefined;

  constructor(
    private readonly accepted: AcceptedStream,
    private readonly listener: string,
    private readonly ctx: RelayContext,
  ) {
    ctx.metrics.connections.inc({ state: 'handshake' });
  }

  /** Bytes exchanged with the worker, counted by its socket: what the relay carried. */
  get bytesToMaster(): number {
    return this.accepted.socket.bytesRead;
  }

  get bytesToWorker(): number {
    return this.accepted.socket.bytesWritten;
  }

  private get peer(): string {
    const { remoteAddress, remotePort } = this.accepted;
    return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
  }

  async run(): Promise<void> {
    const { stream, socket } = this.accepted;
    const { config } = this.ctx;
    if (config.keepalive > 0) socket.setKeepAlive(true, config.keepalive * 1000);
    stream.on('error', (err) => this.close(`worker connection error: ${err.message}`));
    stream.on('close', () => this.close('the worker closed the connection'));
    let hello: WorkerHello;
    try {
      hello = await readWorkerHello(stream, config.handshakeTimeout * 1000);
    } catch (err) {
      const reason = err instanceof HandshakeError ? err.reason : 'protocol';
      this.ctx.metrics.handshakeFailures.inc({ reason });
      this.close(`handshake failed: ${(err as Error).message}`);
      return;
    }
    if (this.ended) return;
    this.worker = hello.username;
    if (!this.admit(hello)) return;
    const master = await this.openMaster(hello);
    if (!master || this.ended) return;
    this.setState('relaying');
    if (config.idleTimeout > 0) socket.setTimeout(config.idleTimeout * 1000, () => this.close(`no traffic either way for ${config.idleTimeout} s (idle timeout)`));
    stream.pipe(master);
    master.pipe(stream);
  }

  /** The allow-list, then the per-worker limit; a refusal answers the login and the master never hears of it. */
  private admit(hello: WorkerHello): boolean {
    const { policy, perWorker, metrics, config, logger } = this.ctx;
    const name = hello.username;
    const verdict = policy.check(name, this.accepted.remoteAddress);
    if (!verdict.allowed) {
      metrics.logins.inc({ result: 'denied', reason: verdict.reason });
      this.refuse(hello, 'RELAY_DENIED', verdict.message);
      return false;
    }
    const live = perWorker.get(name) ?? 0;
    if (live >= config.maxPerWorker) {
      metrics.logins.inc({ result: 'denied', reason: 'worker_limit' });
      this.refuse(hello, 'RELAY_LIMIT', `worker "${name}" already has ${live} connection${live === 1 ? '' : 's'} through this relay (the limit is ${config.maxPerWorker})`);
      return false;
    }
    perWorker.set(name, live + 1);
    this.admitted = true;
    metrics.logins.inc({ result: 'admitted', reason: 'allowed' });
    logger.info({ worker: name, peer: this.peer, listener: this.listener, rule: verdict.rule }, 'worker admitted');
    return true;
  }

  /** Dials the master through the transport stack and replays the worker's greeting; undefined if that failed. */
  private async openMaster(hello: WorkerHello): Promise<Duplex | undefined> {
    const { config, metrics, logger, route } = this.ctx;
    this.setState('dialing');
    try {
      const master = await dial(route);
      if (this.ended) {
        master.destroy();
        return undefined;
      }
      this.master = master;
      master.on('error', (err) => this.close(`master connection error: ${err.message}`));
      master.on('close', () => this.close('the master closed the connection'));
      if (config.proxyProtocol) {
        const { remoteAddress, remotePort, localAddress, localPort } = this.accepted;
        master.write(proxyV2Header({ address: remoteAddress, port: remotePort }, { address: localAddress, port: localPort }));
      }
      const early = await greetMaster(master, hello, config.handshakeTimeout * 1000);
      if (early.length) this.accepted.stream.write(early);
      return master;
    } catch (err) {
      if (this.ended) return undefined;
      const code = err instanceof BbgateError ? err.code : 'NET_UNREACHABLE';
      metrics.upstreamFailures.inc({ code });
      logger.error({ worker: hello.username, peer: this.peer, upstream: config.upstreamText, code, err: (err as Error).message }, 'cannot reach the master');
      this.master?.destroy();
      // The worker learns that the master is unreachable, not where the master is.
      this.refuse(hello, 'RELAY_UPSTREAM', `the relay could not reach the Buildbot master (${code}); the relay's log says why`);
      return undefined;
    }
  }

  private refuse(hello: WorkerHello, code: RefusalCode, message: string): void {
    this.ctx.logger.warn({ worker: hello.username, peer: this.peer, listener: this.listener, code, reason: message }, 'worker refused');
    this.reason = `refused (${code}): ${message}`;
    refuseLogin(this.accepted.stream, hello, refusal(code, message));
    setTimeout(() => this.close(this.reason!), REFUSAL_LINGER_MS).unref();
  }

  private setState(state: ConnectionState): void {
    const { connections } = this.ctx.metrics;
    connections.dec({ state: this.state });
    connections.inc({ state });
    this.state = state;
  }

  /** Ends both legs once; the first reason given (or a refusal's) is the one logged. */
  close(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    const { metrics, perWorker, logger, config } = this.ctx;
    metrics.connections.dec({ state: this.state });
    if (this.admitted && this.worker !== undefined) {
      const left = (perWorker.get(this.worker) ?? 1) - 1;
      if (left > 0) perWorker.set(this.worker, left);
      else perWorker.delete(this.worker);
    }
    this.accepted.stream.destroy();
    this.master?.destroy();
    logger.info({
      worker: this.worker,
      peer: this.peer,
      listener: this.listener,
      upstream: config.upstreamText,
      state: this.state,
      bytesToMaster: this.bytesToMaster,
      bytesToWorker: this.bytesToWorker,
      ms: Date.now() - this.started,
      reason: this.reason ?? reason,
    }, 'connection closed');
    this.ctx.closed(this);
  }
}
