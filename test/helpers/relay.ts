// A bbgate relay running in the test process, with its log lines kept and its metrics readable.
import type { AddressInfo } from 'node:net';
import { resolveRelayConfig, type RelaySettings } from '../../src/relay/config.js';
import { Relay } from '../../src/relay/relay.js';

export interface TestRelay {
  relay: Relay;
  lines: { level: string; msg: string; fields: Record<string, unknown> }[];
  /** The port listener `i` (in the order given) ended up on. */
  port(i?: number): number;
  /** One sample of /metrics, e.g. metric('bbgate_relay_logins_total', { result: 'denied' }); 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  healthz(): Promise<{ status: number; body: any }>;
  waitForLog(match: (line: TestRelay['lines'][number]) => boolean, timeoutMs?: number): Promise<TestRelay['lines'][number]>;
  stop(): Promise<void>;
}

/** Listeners default to port 0 on 127.0.0.1; metrics are always on. */
export async function startRelay(settings: RelaySettings): Promise<TestRelay> {
  const lines: TestRelay['lines'] = [];
  const log = (level: string) => (fields: object, msg: string) => void lines.push({ level, msg, fields: fields as Record<string, unknown> });
  const relay = new Relay(resolveRelayConfig({ metrics: '127.0.0.1:0', ...settings }), { info: log('info'), warn: log('warn'), error: log('error') });
  await relay.start();
  const base = () => {
    const a = relay.metricsAddress as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  };
  return {
    relay,
    lines,
    port: (i = 0) => relay.addresses()[i]!.address.port,
    async metric(name, labels = {}) {
      const text = await (await fetch(`${base()}/metrics`)).text();
      let total = 0;
      for (const line of text.split('\n')) {
        const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
      }
      return total;
    },
    async healthz() {
      const response = await fetch(`${base()}/healthz`);
      return { status: response.status, body: await response.json() };
    },
    waitForLog(match, timeoutMs = 15000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = () => {
          const hit = lines.find(match);
          if (hit) return resolve(hit);
          if (Date.now() - started > timeoutMs) return reject(new Error(`no matching relay log line within ${timeoutMs} ms:\n${lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n')}`));
          setTimeout(poll, 50);
        };
        poll();
      });
    },
    stop: () => relay.drain(0),
  };
}
