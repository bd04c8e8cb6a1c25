/** `promise`, or `expired()`'s error if it has not settled within `ms`; the timer never outlives the race. */
export function withDeadline<T>(promise: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(expired()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `promise`, unless `signal` aborts first (rejecting with its reason); then whatever it still produces is disposed of. */
export function abandonable<T>(promise: Promise<T>, signal: AbortSignal, dispose: (value: T) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    // The one place the promise's outcome is taken: a value that comes after the abort is
    // disposed of, an error after it is no one's to hear (the rejection above came first).
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) dispose(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
