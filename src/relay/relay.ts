import type { AddressInfo, Socket } from 'node:net';
import { loadClientCertificate } from '../tls/client-certificate.js';
import { loadTrustRoots } from '../tls/index.js';
import { routeTo } from '../route/route.js';
import { hostPort } from '../address/host-port.js';
import { configError, type ListenerSpec, type RelayConfig } from './config.js';
import { openListener, type AcceptedStream, type Listener } from './listeners.js';
import { RelayMetrics, startMetricsServer } from './metrics.js';
import { WorkerAdmission } from './admission.js';
import { reportAdmission } from './admission-report.js';
import { AllowList, plainAddress } from './policy.js';
import { connectionAddresses } from './proxy-protocol.js';
import type { RelayLogger } from './relay-logger.js';
import { RelayedConnection, type RelayContext } from './relayed-connection.js';
import { SocketLimits } from './socket-limits.js';

/** At most one line per this many ms for events a flood repeats: a flood must not flood the log too. */
const LOG_INTERVAL_MS = 10_000;

/** Lets one log line through per interval, telling it how many occurrences it stands for. */
class LogThrottle {
  private last = -Infinity;
  private count = 0;
  constructor(private readonly intervalMs: number) {}
  note(log: (occurrences: number) => void): void {
    this.count++;
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    log(this.count);
    this.count = 0;
  }
}

/**
 * The relay: listeners in front, one RelayedConnection per worker, the
 * master behind. It keeps no state worth sharing between relays (the
 * per-worker count is per relay), so several can run side by side.
 */
export class Relay {
  readonly metrics: RelayMetrics;
  private readonly listeners: Listener[] = [];
  private readonly connections = new Set<RelayedConnection>();
  private readonly context: RelayContext;
  private metricsServer: { address: AddressInfo; close(): Promise<void> } | undefined;
  private draining = false;
  private finishedBytes = { toMaster: 0, toWorker: 0 };
  /** Raw connections open, in all (--max-connections) and per source address (--max-per-source). */
  private readonly limits: SocketLimits;
  private readonly refusals = new LogThrottle(LOG_INTERVAL_MS);
  private readonly sourceRefusals = new LogThrottle(LOG_INTERVAL_MS);
  private readonly clientErrors = new LogThrottle(LOG_INTERVAL_MS);
  private readonly upgradeErrors = new LogThrottle(LOG_INTERVAL_MS);
  private readonly proxyHeaderErrors = new LogThrottle(LOG_INTERVAL_MS);
  private drained: (() => void) | undefined;

  constructor(
    readonly config: RelayConfig,
    private readonly logger: RelayLogger,
  ) {
    this.metrics = new RelayMetrics(() => this.bytes());
    this.limits = new SocketLimits(config.maxConnections, config.maxPerSource);
    const route = routeTo({
      endpoint: config.upstream,
      ...(config.upstreamProxy ? { proxy: config.upstreamProxy } : {}),
      ...(config.upstreamProxyCredentials ? { proxyCredentials: config.upstreamProxyCredentials } : {}),
    }, {
      environmentProxy: config.environmentProxy,
      tcpKeepalive: config.keepalive,
      logger,
    });
    this.context = {
      config,
      admission: new WorkerAdmission(new AllowList(config.allow), config.maxPerWorker, reportAdmission(this.metrics, logger)),
      metrics: this.metrics,
      logger,
      route,
      closed: (c) => this.connectionClosed(c),
    };
  }

  /** Listens everywhere it was told to, or nowhere: a listener that fails closes those already open. */
  async start(): Promise<void> {
    const { upstream } = this.config;
    // What the dial to the master would trip on every time is a configuration error now.
    try {
      if (upstream.type !== 'tcp' && upstream.trustRoots !== undefined) await loadTrustRoots(upstream.trustRoots, this.logger);
      if (upstream.type !== 'tcp' && upstream.certificate !== undefined) await loadClientCertificate(upstream.certificate, upstream.privateKey, this.logger);
    } catch (err) {
      throw configError(`upstream ${this.config.upstreamText}: ${(err as Error).message}`);
    }
    try {
      for (const spec of this.config.listen) {
        // Listed at 0 from the start, so a dashboard sees every listener before its first worker.
        this.metrics.accepted.inc({ listener: spec.name }, 0);
        this.listeners.push(await openListener(spec, {
          onSocket: (socket) => this.admitSocket(socket),
          onSource: (socket) => this.admitSource(socket),
          onStream: (accepted, s) => this.accept(accepted, s),
          onClientError: (s, peer, err, stage) => {
            this.metrics.handshakeFailures.inc({ reason: stage });
            if (stage === 'tls') {
              this.clientErrors.note((failures) => this.logger.info({ listener: s.name, peer, failures, err: err.message }, 'TLS handshake with a client failed'));
            } else if (stage === 'websocket') {
              this.upgradeErrors.note((failures) => this.logger.info({ listener: s.name, peer, failures, err: err.message }, 'WebSocket upgrade request from a client failed'));
            } else {
              // A trusted load balancer that sends no header is misconfigured, not merely a bad client.
              this.proxyHeaderErrors.note((failures) => this.logger.warn({ listener: s.name, peer, failures, err: err.message }, 'no valid PROXY header from a trusted load balancer'));
            }
          },
        }, this.config.handshakeTimeout * 1000));
      }
      if (this.config.metrics) {
        const { host, port } = this.config.metrics;
        this.metricsServer = await startMetricsServer(host, port, this.metrics, () => ({
          ok: !this.draining && this.listeners.length > 0,
          draining: this.draining,
          listeners: this.listeners.map((l) => l.spec.name),
          connections: this.connections.size,
        }));
      }
    } catch (err) {
      await this.closeListeners();
      throw err;
    }
    this.logger.info({
      listeners: this.listeners.map((l) => `${l.spec.name} on ${hostPort(l.address.address, l.address.port)}`),
      upstream: this.config.upstreamText,
      metrics: this.metricsServer ? hostPort(this.metricsServer.address.address, this.metricsServer.address.port) : undefined,
    }, 'relay listening');
  }

  /** Where each listener ended up (port 0 picks one). */
  addresses(): { spec: ListenerSpec; address: AddressInfo }[] {
    return this.listeners.map((l) => ({ spec: l.spec, address: l.address }));
  }

  get metricsAddress(): AddressInfo | undefined {
    return this.metricsServer?.address;
  }

  /**
   * Stops accepting, lets live connections run for up to `drainTimeout`
   * seconds, then cuts the rest. /healthz says 503 meanwhile, so a load
   * balancer stops sending workers here.
   */
  async drain(timeoutS = this.config.drainTimeout): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      await this.closeListeners();
      this.logger.info({ connections: this.connections.size, drainTimeout: timeoutS }, 'draining: no new connections');
    }
    if (this.connections.size > 0) {
      const empty = new Promise<void>((resolve) => (this.drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutS * 1000)));
      await Promise.race([empty, deadline]);
      clearTimeout(timer);
      for (const c of [...this.connections]) c.close(`the relay is stopping (drain timeout of ${timeoutS} s)`);
    }
    await this.metricsServer?.close();
    this.metricsServer = undefined;
  }

  /** Every raw connection counts until it closes, whatever stage it reached. */
  private admitSocket(socket: Socket): boolean {
    const slot = this.draining ? undefined : this.limits.enter();
    if (!slot) {
      const reason = this.draining ? 'draining' : 'max_connections';
      this.metrics.refused.inc({ reason });
      this.refusals.note((refused) => this.logger.warn({
        reason,
        refused,
        peer: socket.remoteAddress,
        connections: this.limits.open,
        maxConnections: this.config.maxConnections,
      }, reason === 'draining' ? 'connection refused: the relay is draining' : 'connection refused: too many connections (--max-connections)'));
      return false;
    }
    this.metrics.sockets.inc();
    socket.once('close', () => {
      slot.release();
      this.metrics.sockets.dec();
    });
    return true;
  }

  /**
   * One address may hold at most --max-per-source connections, so that a stranger's idle sockets
   * cannot fill --max-connections and lock out workers elsewhere. Counted from the raw socket,
   * once a trusted load balancer's PROXY header has named the source, until it closes.
   */
  private admitSource(socket: Socket): boolean {
    const source = plainAddress(connectionAddresses(socket).remote.address);
    const slot = this.limits.enterFrom(source);
    if (!slot) {
      const { maxPerSource } = this.config;
      this.metrics.refused.inc({ reason: 'max_per_source' });
      this.sourceRefusals.note((refused) => this.logger.warn({ reason: 'max_per_source', refused, peer: source, connections: this.limits.openFrom(source), maxPerSource },
        'connection refused: too many connections from one address (--max-per-source)'));
      return false;
    }
    socket.once('close', () => slot.release());
    return true;
  }

  private accept(accepted: AcceptedStream, spec: ListenerSpec): void {
    // A TLS or WebSocket handshake that began before the drain ends here.
    if (this.draining) {
      accepted.stream.destroy();
      this.metrics.refused.inc({ reason: 'draining' });
      return;
    }
    this.metrics.accepted.inc({ listener: spec.name });
    const connection = new RelayedConnection(accepted, spec, this.context);
    this.connections.add(connection);
    connection.run().catch((err: unknown) => connection.close(`internal error: ${(err as Error).message}`));
  }

  private connectionClosed(connection: RelayedConnection): void {
    if (!this.connections.delete(connection)) return;
    this.finishedBytes.toMaster += connection.bytesToMaster;
    this.finishedBytes.toWorker += connection.bytesToWorker;
    if (this.connections.size === 0) this.drained?.();
  }

  private bytes(): { toMaster: number; toWorker: number } {
    let { toMaster, toWorker } = this.finishedBytes;
    for (const c of this.connections) {
      toMaster += c.bytesToMaster;
      toWorker += c.bytesToWorker;
    }
    return { toMaster, toWorker };
  }

  private async closeListeners(): Promise<void> {
    const open = this.listeners.splice(0);
    await Promise.all(open.map((l) => l.close()));
  }
}
