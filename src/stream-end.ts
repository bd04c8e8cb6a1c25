import { finished, type Readable } from 'node:stream';

/**
 * The end of a stream, whenever it happened. A listener added with `once('end')` or
 * `once('close')` after the event fired waits forever; every wait on a stream in bbgate
 * (the TLS handshake, the WebSocket upgrade, the PB greeting, login and answers) goes
 * through these two, so a peer that hung up before the wait began still ends the wait.
 * A leaf: imports nothing of bbgate's, so every layer can use it.
 */

/**
 * Whether the stream will deliver nothing more: destroyed, or its readable side ended
 * with nothing left to read. The last case matters: a TLS socket that received the
 * peer's close_notify while paused has ended, but emits 'end' only once someone reads.
 */
export function hasEnded(stream: Readable): boolean {
  if (stream.destroyed || stream.readableEnded) return true;
  // Node keeps "the peer has ended" in _readableState.ended; no public getter says it
  // before 'end' is emitted. Read defensively: a stream without it has not ended.
  const state = (stream as { _readableState?: { ended?: unknown } })._readableState;
  return state?.ended === true && stream.readableLength === 0;
}

/**
 * Calls `onEnd` once, at the first of the stream's end, close or error, with the error
 * if there was one; on the next tick if the stream had already ended or closed before
 * this call. Returns a function that stops watching.
 */
export function whenEnded(stream: Readable, onEnd: (err: Error | undefined) => void): () => void {
  let done = false;
  const stop = finished(stream, { writable: false }, (err) => {
    if (done) return;
    done = true;
    stop();
    // A premature close is "closed without an end": the caller names that, not Node.
    onEnd(err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE' ? err : undefined);
  });
  return () => {
    done = true;
    stop();
  };
}
