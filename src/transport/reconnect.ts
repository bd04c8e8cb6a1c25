import { EventEmitter } from 'node:events';
import { BbgateError } from '../errors.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { abandonable, withDeadline } from '../deadline.js';

/** A live connection the reconnector watches: `closed` settles with the reason it ended. */
export interface Session {
  readonly closed: Promise<Error>;
  close(reason?: Error): void;
}

export interface ReconnectLogger {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface ReconnectOptions<S extends Session> {
  /**
   * Dials, handshakes and logs in; resolves only once the session is fully usable.
   * `signal` aborts when stop() is called: give up the attempt and free what it holds.
   */
  connect(attempt: number, signal: AbortSignal): Promise<S>;
  policy?: BackoffPolicy;
  /** Failed attempts in a row after which to give up; 0 or undefined retries forever. */
  maxRetries?: number;
  /** Errors no retry can fix (a malformed connection string, an unreadable key). */
  isFatal?(err: Error): boolean;
  random?: () => number;
  /** Every retry is logged with its reason and delay; giving up is logged as an error. */
  logger?: ReconnectLogger;
}

/** How long stop() waits for a closed session to finish closing (a broker's close takes at most 2 s). */
const STOP_CLOSE_WAIT_MS = 3000;

export interface RetryEvent {
  attempt: number;
  delay: number;
  error: Error;
}

/**
 * Keeps one session alive: connect, and when that fails or the session ends,
 * wait a jittered, capped, exponentially growing delay and connect again. The
 * failure count resets only when `connect` succeeds, i.e. after a login, not
 * after a bare TCP connect: a proxy or TLS failure right after connecting is
 * what sends buildbot-worker into its tight 1.5-second loop.
 *
 * Events: 'session' (S), 'retry' (RetryEvent), 'give-up' (BbgateError), 'stopped'.
 */
export class Reconnector<S extends Session> extends EventEmitter {
  private readonly policy: BackoffPolicy;
  private running = false;
  private failures = 0;
  private current: S | undefined;
  private wake: (() => void) | undefined;
  private attempt: AbortController | undefined;
  /** Ends the wait on the live session's `closed` (see interrupt()). */
  private cut: ((reason?: Error) => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: ReconnectOptions<S>) {
    super();
    this.policy = options.policy ?? DEFAULT_BACKOFF;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops reconnecting and closes the live session, if any. */
  async stop(): Promise<void> {
    this.running = false;
    const session = this.current;
    // Through cut(): even a session whose `closed` never settles no longer holds the loop.
    this.cut?.();
    this.attempt?.abort(new BbgateError('NET_TIMEOUT', 'stopped while connecting'));
    this.wake?.();
    await this.loop;
    // Then the session's own end (its close reaching the peer) before "stopped", within a bound.
    if (session) await withDeadline(session.closed, STOP_CLOSE_WAIT_MS, () => new Error('the session did not close')).catch(() => undefined);
  }

  /** True while a session is live (its `closed` is what the loop waits for). */
  get connected(): boolean {
    return this.current !== undefined;
  }

  /**
   * Ends the current wait as a failure with `reason`: the connection attempt in
   * progress is abandoned, or the live session closed, and the loop retries
   * with backoff. For a wait that nothing else can end any more (src/liveness.ts).
   * Returns false when there is no such wait (sleeping before a retry, or stopped).
   */
  interrupt(reason: Error): boolean {
    if (this.attempt) {
      this.attempt.abort(reason);
      return true;
    }
    if (this.cut) {
      this.cut(reason);
      return true;
    }
    return false;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let error: Error;
      try {
        this.attempt = new AbortController();
        // Raced with the signal: an attempt that cannot end by itself still ends when aborted.
        const session = await abandonable(this.options.connect(this.failures, this.attempt.signal), this.attempt.signal, (s) => s.close());
        this.attempt = undefined;
        this.failures = 0;
        this.current = session;
        let cut!: (reason?: Error) => void;
        const ended = new Promise<Error>((resolve) => {
          cut = (reason) => {
            session.close(reason);
            resolve(reason ?? new BbgateError('PB_CONNECTION_LOST', 'the session was closed'));
          };
          void session.closed.then(resolve);
        });
        // Ready before anyone hears of the session: a listener may call stop() at once.
        this.cut = cut;
        if (!this.running) cut();
        this.emit('session', session);
        error = await ended;
        this.cut = undefined;
        this.current = undefined;
      } catch (err) {
        this.attempt = undefined;
        error = err instanceof Error ? err : new Error(String(err));
        this.failures++;
        if (this.options.isFatal?.(error)) {
          this.giveUp(new BbgateError(codeOf(error), `not retrying: ${error.message}`, { cause: error }));
          break;
        }
        const max = this.options.maxRetries ?? 0;
        if (max > 0 && this.failures >= max) {
          this.giveUp(new BbgateError(codeOf(error), `gave up after ${this.failures} failed attempt${this.failures === 1 ? '' : 's'} (maxretries ${max}): ${error.message}`, { cause: error }));
          break;
        }
      }
      if (!this.running) break;
      const delay = backoffDelay(this.failures, this.policy, this.options.random);
      this.options.logger?.info(
        { code: codeOf(error), attempt: this.failures + 1, delay: Math.round(delay * 1000) / 1000 },
        `${this.failures === 0 ? 'connection ended' : 'connection failed'}: ${error.message}; retrying in ${delay < 1 ? `${Math.round(delay * 1000)} ms` : `${delay.toFixed(1)} s`}`,
      );
      this.emit('retry', { attempt: this.failures + 1, delay, error } satisfies RetryEvent);
      await this.sleep(delay);
    }
    this.emit('stopped');
  }

  private giveUp(err: BbgateError): void {
    this.running = false;
    this.options.logger?.error({ code: err.code }, err.message);
    this.emit('give-up', err);
  }

  private sleep(seconds: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function codeOf(err: Error): BbgateError['code'] {
  return err instanceof BbgateError ? err.code : 'NET_UNREACHABLE';
}
