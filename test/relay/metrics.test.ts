// The relay's metrics and health endpoint over real HTTP: exposition values, series present at
// 0 from the start, the byte counters read at scrape time, 503 while draining, 404/405, and a
// port that is already taken.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { RelayMetrics, startMetricsServer, type Health } from '../../src/relay/metrics.js';

/** Sample lines of the text exposition format, keyed by `name{labels}` as written. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

async function withServer(
  health: () => Health,
  body: (base: string, metrics: RelayMetrics, bytes: { toMaster: number; toWorker: number }) => Promise<void>,
): Promise<void> {
  const bytes = { toMaster: 0, toWorker: 0 };
  const metrics = new RelayMetrics(() => bytes);
  const started = await startMetricsServer('127.0.0.1', 0, metrics, health);
  try {
    assert.equal(started.address.address, '127.0.0.1');
    await body(`http://127.0.0.1:${started.address.port}`, metrics, bytes);
  } finally {
    await started.close();
  }
}

const HEALTHY: Health = { ok: true, draining: false, listeners: ['tcp:9989'], connections: 3 };

test('/metrics: Prometheus text with the relay series at 0 from the start, then counting', async () => {
  await withServer(() => HEALTHY, async (base, metrics, bytes) => {
    const first = await fetch(`${base}/metrics`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), metrics.registry.contentType);
    const initial = samples(await first.text());
    for (const series of [
      'bbgate_relay_connections_refused_total{reason="max_connections"}',
      'bbgate_relay_connections_refused_total{reason="draining"}',
      'bbgate_relay_connections{state="handshake"}',
      'bbgate_relay_connections{state="dialing"}',
      'bbgate_relay_connections{state="relaying"}',
      'bbgate_relay_logins_total{result="admitted",reason="allowed"}',
      'bbgate_relay_logins_total{result="denied",reason="not_listed"}',
      'bbgate_relay_logins_total{result="denied",reason="source_address"}',
      'bbgate_relay_logins_total{result="denied",reason="worker_limit"}',
      'bbgate_relay_handshake_failures_total{reason="timeout"}',
      'bbgate_relay_handshake_failures_total{reason="protocol"}',
      'bbgate_relay_handshake_failures_total{reason="closed"}',
      'bbgate_relay_bytes_total{direction="to_master"}',
      'bbgate_relay_bytes_total{direction="to_worker"}',
    ]) {
      assert.equal(initial.get(series), 0, series);
    }
    assert.ok((initial.get('process_resident_memory_bytes') ?? 0) > 0, 'default process metrics are registered');
    assert.ok(initial.has('process_open_fds'));
    assert.ok([...initial.keys()].some((k) => k.startsWith('nodejs_eventloop_lag')));

    metrics.accepted.inc({ listener: 'tcp:9989' });
    metrics.accepted.inc({ listener: 'tcp:9989' });
    metrics.refused.inc({ reason: 'draining' });
    metrics.connections.inc({ state: 'relaying' }, 2);
    metrics.logins.inc({ result: 'denied', reason: 'not_listed' });
    metrics.handshakeFailures.inc({ reason: 'timeout' });
    metrics.upstreamFailures.inc({ code: 'NET_REFUSED' });
    bytes.toMaster = 1234;
    bytes.toWorker = 5_000_000_000;

    const after = samples(await (await fetch(`${base}/metrics`)).text());
    assert.equal(after.get('bbgate_relay_connections_accepted_total{listener="tcp:9989"}'), 2);
    assert.equal(after.get('bbgate_relay_connections_refused_total{reason="draining"}'), 1);
    assert.equal(after.get('bbgate_relay_connections_refused_total{reason="max_connections"}'), 0);
    assert.equal(after.get('bbgate_relay_connections{state="relaying"}'), 2);
    assert.equal(after.get('bbgate_relay_logins_total{result="denied",reason="not_listed"}'), 1);
    assert.equal(after.get('bbgate_relay_handshake_failures_total{reason="timeout"}'), 1);
    assert.equal(after.get('bbgate_relay_upstream_failures_total{code="NET_REFUSED"}'), 1);
    assert.equal(after.get('bbgate_relay_bytes_total{direction="to_master"}'), 1234);
    assert.equal(after.get('bbgate_relay_bytes_total{direction="to_worker"}'), 5_000_000_000);

    // Read afresh at each scrape, not accumulated across scrapes.
    bytes.toMaster = 1300;
    const again = samples(await (await fetch(`${base}/metrics`)).text());
    assert.equal(again.get('bbgate_relay_bytes_total{direction="to_master"}'), 1300);
  });
});

test('each RelayMetrics has its own registry', async () => {
  const a = new RelayMetrics(() => ({ toMaster: 0, toWorker: 0 }));
  const b = new RelayMetrics(() => ({ toMaster: 0, toWorker: 0 }));
  a.refused.inc({ reason: 'draining' });
  assert.equal(samples(await b.registry.metrics()).get('bbgate_relay_connections_refused_total{reason="draining"}'), 0);
  assert.equal(samples(await a.registry.metrics()).get('bbgate_relay_connections_refused_total{reason="draining"}'), 1);
});

test('/healthz: 200 with the health as JSON, 503 when draining or not ok', async () => {
  let health: Health = HEALTHY;
  await withServer(() => health, async (base) => {
    const ok = await fetch(`${base}/healthz`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await ok.json(), HEALTHY);

    health = { ...HEALTHY, draining: true, connections: 1 };
    const draining = await fetch(`${base}/healthz`);
    assert.equal(draining.status, 503);
    assert.deepEqual(await draining.json(), health);

    health = { ok: false, draining: false, listeners: [], connections: 0 };
    const down = await fetch(`${base}/healthz?verbose=1`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), health);
  });
});

test('other paths are 404, other methods 405, HEAD has no body', async () => {
  await withServer(() => HEALTHY, async (base) => {
    for (const path of ['/', '/metric', '/metrics/', '/healthz/x', '//x/metrics']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, path);
      await res.text();
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${base}/metrics`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      await res.text();
    }
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });
});

test('a port already in use is a RELAY_CONFIG error naming the address', async () => {
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    await assert.rejects(startMetricsServer('127.0.0.1', port, new RelayMetrics(() => ({ toMaster: 0, toWorker: 0 })), () => HEALTHY), (err: unknown) => {
      assert.ok(err instanceof BbgateError, String(err));
      assert.equal(err.code, 'RELAY_CONFIG');
      assert.equal(err.message, `cannot listen for metrics on 127.0.0.1:${port}: the address is in use`);
      return true;
    });
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});

test('an address this host does not have is a RELAY_CONFIG error too', async () => {
  // 192.0.2.0/24 is TEST-NET-1: documentation only, never assigned to an interface.
  await assert.rejects(startMetricsServer('192.0.2.1', 0, new RelayMetrics(() => ({ toMaster: 0, toWorker: 0 })), () => HEALTHY), {
    code: 'RELAY_CONFIG',
    message: 'cannot listen for metrics on 192.0.2.1:0: no such address on this host',
  });
});
