import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { BbgateError } from '../errors.js';
import { dial } from '../route/dial.js';
import type { RouteOptions } from '../route/route.js';
import { hostPort } from '../address/host-port.js';
import type { Slot, WorkerAdmission } from './admission.js';
import { certificateNames } from './certificate-names.js';
import type { ListenerSpec, RelayConfig } from './config.js';
import type { AcceptedStream } from './listeners.js';
import { LoginGuard, type LoginVerdict, type MasterRefusal } from './login-guard.js';
import { greetMaster } from './master-greeting.js';
import type { RelayMetrics } from './metrics.js';
import { proxyV2Header } from './proxy-protocol.js';
import { refusal, type RefusalCode } from './refusals.js';
import type { RelayLogger } from './relay-logger.js';
import { HandshakeError, readWorkerHello, refuseLogin, type WorkerHello } from './worker-hello.js';

export type ConnectionState = 'handshake' | 'dialing' | 'login' | 'relaying';

/** What every connection of one relay shares. */
export interface RelayContext {
  config: RelayConfig;
  admission: WorkerAdmission;
  metrics: RelayMetrics;
  logger: RelayLogger;
  route: RouteOptions;
  closed(connection: RelayedConnection): void;
}

/** How each refusal by the master is counted and logged. */
const MASTER_REFUSALS: Record<MasterRefusal['cause'], { reason: string; message: string }> = {
  password: { reason: 'master_refused', message: 'the master refused the worker\'s password' },
  // Buildbot pings the worker's attached connection first: it answered, so this one is refused.
  duplicate: { reason: 'duplicate_worker', message: 'the master refused the worker as a duplicate: a connection for that name is attached and answering' },
  other: { reason: 'master_error', message: 'the master refused the login' },
};

/** How long a refused worker has to read its refusal before the relay hangs up anyway. */
const LINGER_MS = 2000;
/** How long a leg whose peer has gone may take to deliver what is still buffered for it. */
const FLUSH_MS = 30_000;

/**
 * One worker's connection through the relay: the PB handshake up to the
 * login, the admission decision, the dial to the master and its greeting,
 * then two pipes, with the worker's calls watched by a LoginGuard.
 */
export class RelayedConnection {
  state: ConnectionState = 'handshake';
  worker: string | undefined;
  private readonly started = Date.now();
  private master: Duplex | undefined;
  /** Its worker name's slot: from admission until it closes or is refused. */
  private slot: Slot | undefined;
  private guard: LoginGuard | undefined;
  private ended = false;
  private reason: string | undefined;
  private loginTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly accepted: AcceptedStream,
    private readonly spec: ListenerSpec,
    private readonly ctx: RelayContext,
  ) {
    ctx.metrics.connections.inc({ state: 'handshake' });
  }

  /** Bytes exchanged with the worker, counted by its socket: what the relay carried. */
  get bytesToMaster(): number {
    return this.accepted.socket.bytesRead;
  }

  private get listener(): string {
    return this.spec.name;
  }

  /**
   * Holds a slot for its worker name but has not shown that it knows the password: admitted,
   * and the master's challenge not yet answered. A newer login for the same name may take its
   * slot (see WorkerAdmission.claim).
   */
  get unproven(): boolean {
    return this.slot !== undefined && !this.ended && this.state !== 'relaying' && !this.guard?.answeredChallenge;
  }

  get bytesToWorker(): number {
    return this.accepted.socket.bytesWritten;
  }

  private get peer(): string {
    return hostPort(this.accepted.remoteAddress, this.accepted.remotePort);
  }

  async run(): Promise<void> {
    const { stream, socket } = this.accepted;
    const { config } = this.ctx;
    if (config.keepalive > 0) socket.setKeepAlive(true, config.keepalive * 1000);
    stream.on('error', (err) => this.close(`worker connection error: ${err.message}`));
    stream.on('close', () => this.legClosed(this.master, 'the worker closed the connection'));
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
    const greeted = await this.openMaster(hello);
    if (!greeted || this.ended) return;
    this.relay(hello, greeted.master, greeted.early);
  }

  /**
   * Pipes both ways. The guard sees each chunk before the pipe forwards it
   * (its listeners come first), so a call it refuses never reaches the master.
   */
  private relay(hello: WorkerHello, master: Duplex, early: Buffer): void {
    const { stream, socket } = this.accepted;
    const { config } = this.ctx;
    this.setState('login');
    const guard = new LoginGuard(hello.dialect === 'pb', hello.requestId, (verdict) => this.loginDecided(verdict));
    this.guard = guard;
    this.loginTimer = setTimeout(() => this.close(`no login within ${config.loginTimeout} s (--login-timeout): still waiting for ${guard.awaiting}`), config.loginTimeout * 1000);
    this.loginTimer.unref();
    const fromWorker = (chunk: Buffer) => {
      try {
        guard.workerBytes(chunk);
      } catch (err) {
        this.violation(err);
      }
    };
    const fromMaster = (chunk: Buffer) => {
      try {
        guard.masterBytes(chunk);
      } catch (err) {
        this.close(`the master's answer to the login cannot be read: ${(err as Error).message}`);
      }
      if (!guard.watchingMaster) {
        clearTimeout(this.loginTimer);
        master.off('data', fromMaster);
      }
    };
    if (hello.rest.length) {
      fromWorker(hello.rest);
      if (this.ended) return;
      master.write(hello.rest);
    }
    if (early.length) {
      fromMaster(early);
      if (this.ended) return;
      stream.write(early);
    }
    if (config.idleTimeout > 0) socket.setTimeout(config.idleTimeout * 1000, () => this.close(`no traffic either way for ${config.idleTimeout} s (idle timeout)`));
    stream.on('data', fromWorker);
    if (guard.watchingMaster) master.on('data', fromMaster);
    stream.pipe(master);
    master.pipe(stream);
  }

  /** The master accepted or refused the password; its refusal is logged as what it was. */
  private loginDecided(verdict: LoginVerdict): void {
    // A socket can still emit what it had buffered after close(): that verdict counts for nothing.
    if (this.ended) return;
    const { metrics, logger } = this.ctx;
    const fields = { worker: this.worker, peer: this.peer, listener: this.listener };
    if (verdict.outcome === 'refused') {
      const { reason, message } = MASTER_REFUSALS[verdict.cause];
      metrics.logins.inc({ result: 'failed', reason });
      logger.warn({ ...fields, ...(verdict.cause === 'other' ? { failure: verdict.failure } : {}) }, message);
      this.closeSoon(verdict.cause === 'other' ? `${message}: ${verdict.failure}` : message);
      return;
    }
    metrics.logins.inc({ result: 'authenticated', reason: 'master_accepted' });
    this.setState('relaying');
    logger.info(fields, 'worker logged in');
  }

  /** The guard stopped a call: it never reaches the master, and neither does anything after it. */
  private violation(err: unknown): void {
    const message = (err as Error).message;
    const denied = err instanceof BbgateError && err.code === 'RELAY_DENIED';
    this.ctx.metrics.logins.inc({ result: 'denied', reason: denied ? 'policy_violation' : 'protocol' });
    this.ctx.logger.warn({ worker: this.worker, peer: this.peer, listener: this.listener, err: message }, 'worker cut off');
    this.close(denied ? message : `the worker broke PB framing: ${message}`);
  }

  /**
   * One leg ended cleanly: the pipe ends the other one, which gets a moment
   * to deliver what is buffered for it (a half-close must not lose the tail).
   */
  private legClosed(other: Duplex | undefined, reason: string): void {
    if (!other || other.destroyed || this.state !== 'relaying' && this.state !== 'login') {
      this.close(reason);
      return;
    }
    this.reason ??= reason;
    other.end();
    setTimeout(() => this.close(reason), FLUSH_MS).unref();
  }

  /**
   * The certificate's names, the allow-list, then the per-worker limit; a refusal answers the
   * login and the master never hears of it.
   */
  private admit(hello: WorkerHello): boolean {
    const verdict = this.ctx.admission.admit({
      worker: hello.username,
      address: this.accepted.remoteAddress,
      peer: this.peer,
      listener: this.listener,
      certificateNames: this.certificateNamesToCheck(),
    }, this);
    if (!verdict.admitted) {
      const { code, message, detail } = verdict.refusal;
      this.refuse(hello, code, message, detail);
      return false;
    }
    this.slot = verdict.slot;
    return true;
  }

  /** The names in the client's certificate, on a listener with certNames=1; undefined elsewhere. */
  private certificateNamesToCheck(): string[] | undefined {
    const { spec } = this;
    const required = spec.kind === 'tls' ? spec.certNames : spec.kind === 'ws' ? spec.tls?.certNames : undefined;
    if (!required) return undefined;
    return certificateNames((this.accepted.socket as Partial<TLSSocket>).getPeerCertificate?.());
  }

  /** Dials the master through the transport stack and replays the worker's greeting; undefined if that failed. */
  private async openMaster(hello: WorkerHello): Promise<{ master: Duplex; early: Buffer } | undefined> {
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
      master.on('close', () => this.legClosed(this.accepted.stream, 'the master closed the connection'));
      if (config.proxyProtocol) {
        const { remoteAddress, remotePort, localAddress, localPort } = this.accepted;
        master.write(proxyV2Header({ address: remoteAddress, port: remotePort }, { address: localAddress, port: localPort }));
      }
      const early = await greetMaster(master, hello, config.handshakeTimeout * 1000);
      return { master, early };
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

  /** Answers the login with `message`; the log has `detail` instead when the client is told less. */
  private refuse(hello: WorkerHello, code: RefusalCode, message: string, detail = message): void {
    this.ctx.logger.warn({ worker: hello.username, peer: this.peer, listener: this.listener, code, reason: detail }, 'worker refused');
    refuseLogin(this.accepted.stream, hello, refusal(code, message));
    this.closeSoon(`refused (${code}): ${detail}`);
  }

  /**
   * Ends the connection once its last words have had time to arrive, with `reason` as the one
   * logged. Its worker's slot is free at once: a refused login must not hold one while it lingers.
   */
  private closeSoon(reason: string): void {
    this.reason = reason;
    this.releaseSlot();
    setTimeout(() => this.close(reason), LINGER_MS).unref();
  }

  private releaseSlot(): void {
    this.slot?.release();
    this.slot = undefined;
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
    const { metrics, logger, config } = this.ctx;
    metrics.connections.dec({ state: this.state });
    clearTimeout(this.loginTimer);
    this.releaseSlot();
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
