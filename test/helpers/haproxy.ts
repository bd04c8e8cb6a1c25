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
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { startProcess, type LineProcess } from './processes.js';

const HAPROXY = process.env.BBGATE_HAPROXY ?? '/usr/sbin/haproxy';

export interface HaproxyRoute {
  /** The port on 127.0.0.1 that connections to this route's frontend go on to. */
  target: number;
  /** The PROXY header haproxy writes first on each connection to the target; default none. */
  sendProxy?: 'v1' | 'v2' | 'none';
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
  const pid = haproxy.child.pid!;
  const watchdog = startWatchdog(pid, dir);
  const output = () => `${haproxy.lines.join('\n')}\n${haproxy.stderr()}`;
  try {
    await waitListening(haproxy, ports, output);
  } catch (err) {
    await kill(haproxy, watchdog, dir);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return { ports, pid, output, stop: () => (stopped ??= kill(haproxy, watchdog, dir)) };
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
    lines.push(
      `frontend bbgate_front_${i}`,
      `    bind 127.0.0.1:${ports[i]}`,
      `    default_backend bbgate_back_${i}`,
      `backend bbgate_back_${i}`,
      `    server target 127.0.0.1:${route.target}${send[route.sendProxy ?? 'none']}`,
    );
  });
  return `${lines.join('\n')}\n`;
}

async function waitListening(haproxy: LineProcess, ports: number[], output: () => string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await accepts(port))) {
      if (haproxy.child.exitCode !== null || haproxy.child.signalCode !== null) {
        throw new Error(`haproxy exited (${haproxy.child.exitCode ?? haproxy.child.signalCode}) before listening on ${port}:\n${output().slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${port} within ${timeoutMs} ms:\n${output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A detached shell that outlives a SIGKILLed test process and then kills haproxy and removes its files. */
function startWatchdog(pid: number, dir: string): number {
  // The comm check keeps it from killing an unrelated process that reused haproxy's pid.
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; [ "$(cat /proc/${pid}/comm 2>/dev/null)" = haproxy ] && kill -9 ${pid}; rm -rf '${dir}'`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

async function kill(haproxy: LineProcess, watchdog: number, dir: string): Promise<void> {
  haproxy.kill();
  await haproxy.exited;
  try {
    process.kill(-watchdog, 'SIGKILL');
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
}
