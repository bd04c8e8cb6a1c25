import { BbgateError } from '../errors.js';

export interface KeepaliveOptions {
  /** Seconds between pings (buildbot-worker's default is 600; behind NAT, stay below the NAT's idle timeout). */
  interval: number;
  /** Seconds to wait for each answer before declaring the connection dead. */
  timeout: number;
  /** Sends one ping; resolves when it is answered. */
  ping(): Promise<unknown>;
  /** Called once when a ping goes unanswered for `timeout` seconds. */
  onDead(err: BbgateError): void;
}

/**
 * Application-level keepalive with a reply timeout. buildbot-worker sends
 * keepalives but never times them out, so a master that vanished behind a NAT
 * or firewall goes unnoticed; here an unanswered ping ends the session.
 * Returns a function that stops it.
 */
export function startKeepalive(options: KeepaliveOptions): () => void {
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const tick = setInterval(() => {
    const deadline = setTimeout(() => {
      timers.delete(deadline);
      if (stopped) return;
      stop();
      options.onDead(new BbgateError('NET_KEEPALIVE_TIMEOUT',
        `no answer to a keepalive within ${options.timeout} s: the connection is dead (a NAT or firewall may have dropped it silently)`));
    }, options.timeout * 1000);
    timers.add(deadline);
    options.ping().then(
      () => {
        clearTimeout(deadline);
        timers.delete(deadline);
      },
      // A lost connection or a refused ping is the session's business, not the keepalive's.
      () => {
        clearTimeout(deadline);
        timers.delete(deadline);
      },
    );
  }, options.interval * 1000);
  const stop = () => {
    stopped = true;
    clearInterval(tick);
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
  return stop;
}

/** The reply timeout used when none is configured: the interval itself, at most a minute. */
export function defaultKeepaliveTimeout(interval: number): number {
  return Math.min(interval, 60);
}
