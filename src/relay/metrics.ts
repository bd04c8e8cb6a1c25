/**
 * The relay's Prometheus metrics and the small HTTP server that exposes them with a health check.
 * The registry is the relay's own, not prom-client's global one, so that a process (or a test)
 * can run more than one relay without their series colliding.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { listenOrFail } from './front-door.js';

export class RelayMetrics {
  readonly registry = new Registry();
  readonly accepted: Counter<'listener'>;
  readonly refused: Counter<'reason'>;
  readonly connections: Gauge<'state'>;
  readonly sockets: Gauge;
  readonly logins: Counter<'result' | 'reason'>;
  readonly handshakeFailures: Counter<'reason'>;
  readonly upstreamFailures: Counter<'code'>;

  /** `bytes` is read at scrape time, so the data path only adds to plain numbers. */
  constructor(bytes: () => { toMaster: number; toWorker: number }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.accepted = new Counter({
      name: 'bbgate_relay_connections_accepted_total',
      help: 'Worker connections accepted, by listener',
      labelNames: ['listener'],
      registers,
    });
    this.refused = new Counter({
      name: 'bbgate_relay_connections_refused_total',
      help: 'Worker connections closed at once, before any PB byte, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.connections = new Gauge({
      name: 'bbgate_relay_connections',
      help: 'Open worker connections, by state',
      labelNames: ['state'],
      registers,
    });
    this.sockets = new Gauge({
      name: 'bbgate_relay_sockets',
      help: 'Open connections in any stage (TCP, TLS or WebSocket handshake, PB): what --max-connections bounds',
      registers,
    });
    this.logins = new Counter({
      name: 'bbgate_relay_logins_total',
      help: 'Worker logins seen by the relay, by result and reason',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'bbgate_relay_handshake_failures_total',
      help: 'Worker connections that ended before a login the relay could judge, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'bbgate_relay_upstream_failures_total',
      help: 'Failures to reach the master for an admitted worker, by error code',
      labelNames: ['code'],
      registers,
    });
    new Counter({
      name: 'bbgate_relay_bytes_total',
      help: 'Bytes relayed, by direction',
      labelNames: ['direction'],
      registers,
      collect() {
        const { toMaster, toWorker } = bytes();
        this.reset();
        this.inc({ direction: 'to_master' }, toMaster);
        this.inc({ direction: 'to_worker' }, toWorker);
      },
    });

    // Series a dashboard or alert expects from the start, at 0. Listener names and error codes
    // are open-ended, so those appear with their first event.
    for (const reason of ['max_connections', 'max_per_source', 'draining']) this.refused.inc({ reason }, 0);
    for (const state of ['handshake', 'dialing', 'login', 'relaying']) this.connections.set({ state }, 0);
    this.logins.inc({ result: 'admitted', reason: 'allowed' }, 0);
    this.logins.inc({ result: 'authenticated', reason: 'master_accepted' }, 0);
    for (const reason of ['master_refused', 'duplicate_worker', 'master_error']) this.logins.inc({ result: 'failed', reason }, 0);
    this.logins.inc({ result: 'displaced', reason: 'newer_login' }, 0);
    for (const reason of ['not_listed', 'source_address', 'certificate_name', 'worker_limit', 'policy_violation', 'protocol']) this.logins.inc({ result: 'denied', reason }, 0);
    for (const reason of ['timeout', 'protocol', 'closed', 'proxy_header']) this.handshakeFailures.inc({ reason }, 0);
  }
}

export interface Health {
  ok: boolean;
  draining: boolean;
  listeners: string[];
  connections: number;
}

export interface MetricsServer {
  server: http.Server;
  address: AddressInfo;
  close(): Promise<void>;
}

/** `/metrics` for Prometheus, `/healthz` for load balancers and orchestrators (503 while draining). */
export async function startMetricsServer(host: string, port: number, metrics: RelayMetrics, health: () => Health): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    respond(req, metrics, health).then(
      ({ status, type, body, headers }) => {
        res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': TEXT });
        res.end(`${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await listenOrFail(server, host, port, (where, why) => `cannot listen for metrics on ${where}: ${why}`);
  return {
    server,
    address: server.address() as AddressInfo,
    close: () => new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done()))),
  };
}

const TEXT = 'text/plain; charset=utf-8';

interface Reply {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

async function respond(req: http.IncomingMessage, metrics: RelayMetrics, health: () => Health): Promise<Reply> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') return { status: 404, type: TEXT, body: 'not found: try /metrics or /healthz\n' };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return { status: 405, type: TEXT, body: `${req.method} not allowed: use GET or HEAD\n`, headers: { Allow: 'GET, HEAD' } };
  }
  if (path === '/metrics') return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
  const state = health();
  return { status: state.ok && !state.draining ? 200 : 503, type: 'application/json', body: `${JSON.stringify(state)}\n` };
}
