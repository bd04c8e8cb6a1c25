// A real haproxy (Debian's 2.6) on 127.0.0.1, in TCP mode, in front of servers of ours.
//
//   const lb = await startHaproxy([{ target: relayPort, sendProxy: 'v2' }, { target: relayPort, sendProxy: 'v1' }]);
//   try { ... connect to 127.0.0.1:lb.ports[0] ... } finally { await lb.stop(); }
//
// One haproxy process, one frontend per route, each on a free port of its own and forwarding to
// 127.0.0.1:target, with `send-proxy-v2` (binary) or `send-proxy` (v1 text) or neither. It runs
// in the foreground (-db) from a config in a temp dir, never as the system service. It is killed
// by stop(), on test-process exit, and by a watchdog shell if the test process is SIGKILLed.
// Things that bit:
// - haproxy warns at start-up about each missing timeout, so defaults sets all three;
// - without `-db` it forks into the background, and the child would outlive the test;
// - the readiness checks (a connect to each frontend) reach the targets too, as connections from
//   127.0.0.1 that close at once: a test that reads its target's log should skip those lines.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDaemon, waitListening } from './daemon.js';
import { freePort } from './ports.js';
import { startProcess } from './processes.js';

const HAPROXY = process.env.BBGATE_HAPROXY ?? '/usr/sbin/haproxy';

export interface HaproxyRoute {
  /** The port on 127.0.0.1 that connections to this route's frontend go on to. */
  target: number;
  /** The PROXY header haproxy writes first on each connection to the target; default none. */
  sendProxy?: 'v1' | 'v2' | 'none';
  /**
   * HTTP mode, as a reverse proxy in front of a WebSocket service: only requests whose path
   * starts with this reach the target (WebSocket upgrades included); any other is denied with 403.
   */
  httpPath?: string;
}

export interface RunningHaproxy {
  /** The frontends' ports on 127.0.0.1, one per route, in the order given. */
  ports: number[];
  pid: number;
  /** haproxy's stdout and stderr (warnings and alerts; no traffic log). */
  output(): string;
  /** Kills haproxy and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export async function startHaproxy(routes: HaproxyRoute[]): Promise<RunningHaproxy> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(routes);
    } catch (err) {
      // The free ports we picked can be taken before haproxy binds them.
      if (attempt >= 3 || !/cannot bind|Address already in use/i.test(String(err))) throw err;
    }
  }
}

async function startOnce(routes: HaproxyRoute[]): Promise<RunningHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'bbgate-haproxy-'));
  const ports: number[] = [];
  while (ports.length < routes.length) ports.push(await freePort());
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config(routes, ports));
  const haproxy = startProcess(HAPROXY, ['-f', file, '-db'], { cwd: dir });
  const guard = guardDaemon(haproxy, 'haproxy', dir);
  const output = () => `${haproxy.lines.join('\n')}\n${haproxy.stderr()}`;
  try {
    await waitListening('haproxy', haproxy, ports, () => output().slice(-3000));
  } catch (err) {
    await guard.stop();
    throw err;
  }
  return { ports, pid: haproxy.child.pid!, output, stop: guard.stop };
}

function config(routes: HaproxyRoute[], ports: number[]): string {
  const send = { v1: ' send-proxy', v2: ' send-proxy-v2', none: '' };
  const lines = [
    'global',
    '    maxconn 256',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 120s',
    '    timeout server 120s',
  ];
  routes.forEach((route, i) => {
    const http = route.httpPath === undefined ? [] : ['    mode http', '    timeout tunnel 120s'];
    lines.push(
      `frontend bbgate_front_${i}`,
      `    bind 127.0.0.1:${ports[i]}`,
      ...http,
      ...(route.httpPath === undefined ? [] : [`    acl wanted path_beg ${route.httpPath}`, '    http-request deny deny_status 403 unless wanted']),
      `    default_backend bbgate_back_${i}`,
      `backend bbgate_back_${i}`,
      ...http,
      `    server target 127.0.0.1:${route.target}${send[route.sendProxy ?? 'none']}`,
    );
  });
  return `${lines.join('\n')}\n`;
}

