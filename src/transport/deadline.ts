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
