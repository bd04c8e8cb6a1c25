// What the helpers that run a real daemon for a test (squid, haproxy) share: waiting until it
// listens, and making sure it dies with the test process even when that is SIGKILLed.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { LineProcess } from './processes.js';

/** Resolves once every port accepts a connection; throws with `output()` if the daemon exits or takes too long. */
export async function waitListening(name: string, daemon: LineProcess, ports: number[], output: () => string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await accepts(port))) {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
        throw new Error(`${name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}) before listening on ${port}:\n${output()}`);
      }
      if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within ${timeoutMs} ms:\n${output()}`);
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

export interface DaemonGuard {
  /** Kills the daemon (SIGKILL: what it writes as it goes is on disk already), the watchdog, and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Starts a detached shell that outlives a SIGKILLed test process and then kills the daemon
 * and removes its files; the returned stop() does the same at once.
 */
export function guardDaemon(daemon: LineProcess, comm: string, dir: string): DaemonGuard {
  const pid = daemon.child.pid!;
  // The comm check keeps it from killing an unrelated process that reused the daemon's pid.
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; [ "$(cat /proc/${pid}/comm 2>/dev/null)" = ${comm} ] && kill -9 ${pid}; rm -rf '${dir}'`;
  const watchdog = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop: () => (stopped ??= (async () => {
      daemon.kill();
      await daemon.exited;
      try {
        process.kill(-watchdog.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    })()),
  };
}
