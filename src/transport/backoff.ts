/** How long to wait before reconnect attempt n (0-based): exponential growth, capped, with full jitter. */
export interface BackoffPolicy {
  /** Seconds for the first retry's upper bound. */
  initial: number;
  /** Growth per failed attempt (Twisted's ClientService uses 1.5). */
  factor: number;
  /** Upper bound in seconds: the tac's maxdelay, which buildbot-worker 3.7 ignores and bbgate honours. */
  max: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initial: 1, factor: 1.5, max: 300 };

/**
 * Full jitter: a uniform draw below the exponential bound, so workers that lost
 * the same master at the same moment do not come back in lockstep.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const bound = Math.min(policy.max, policy.initial * policy.factor ** Math.min(attempt, 100));
  return random() * bound;
}
