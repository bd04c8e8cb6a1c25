/**
 * Node ends a process whose event loop has nothing left to do, even while a promise it
 * awaits is pending: if whatever should settle that promise was lost (an event that fired
 * before anyone listened, a timer that was unref'd), the process exits 0 without a word.
 * For a worker that is the worst failure there is: the farm shrinks and nobody knows why.
 *
 * `watchLiveness` turns that exit into a call: when the loop drains while `waitingFor()`
 * names a wait, `onStall(thatWait)` runs. It must either schedule more work (a retry), or
 * settle the wait so the program ends the way it chooses (an error, a non-zero status).
 * A `lastResort` watcher (a command's whole run) is called only when no other watcher had
 * a wait to report, so the step that stalled is the one named. Node emits 'beforeExit'
 * only on a drained loop, never on process.exit() or a signal.
 * A leaf: imports nothing of bbgate's.
 */

interface Watcher {
  waitingFor(): string | undefined;
  onStall(wait: string): void;
  lastResort: boolean;
}

const watchers = new Set<Watcher>();

function onBeforeExit(): void {
  const stalled = (lastResort: boolean) => {
    let any = false;
    for (const w of [...watchers]) {
      if (w.lastResort !== lastResort) continue;
      const wait = w.waitingFor();
      if (wait === undefined) continue;
      any = true;
      w.onStall(wait);
    }
    return any;
  };
  if (!stalled(false)) stalled(true);
}

export function watchLiveness(waitingFor: () => string | undefined, onStall: (wait: string) => void, options: { lastResort?: boolean } = {}): () => void {
  const watcher: Watcher = { waitingFor, onStall, lastResort: options.lastResort ?? false };
  if (watchers.size === 0) process.on('beforeExit', onBeforeExit);
  watchers.add(watcher);
  return () => {
    if (watchers.delete(watcher) && watchers.size === 0) process.off('beforeExit', onBeforeExit);
  };
}

/** The message every stall is logged or reported with: what was pending, and that it is our bug. */
export function stallMessage(wait: string): string {
  return `internal error: nothing was left that could end the wait for ${wait} (an event was lost); please report this with the log`;
}
