import type { Duplex } from 'node:stream';
import { whenEnded } from '../stream-end.js';
import { BananaParser, type Sexp } from '../pb/index.js';

export interface SniffOptions {
  /** Most bytes the peer may send before the sniff is done: a handshake is small, a flood is not. */
  maxBytes: number;
  timeoutMs: number;
  /** Sees each expression; returns true at the last one the relay needs to read. */
  step(expr: Sexp, parser: BananaParser): boolean;
  closed(): Error;
  timedOut(): Error;
  /** The peer broke Banana framing, or `step` threw: the error to reject with. */
  invalid(err: unknown): Error;
  tooLarge(): Error;
}

export interface Sniffed {
  /** Every byte the peer sent so far, unchanged. */
  raw: Buffer;
  /** Where in `raw` the last expression `step` needed ends: what follows is the peer's, to forward untouched. */
  end: number;
}

/**
 * Reads a peer's first Banana expressions without taking the stream over:
 * it keeps the raw bytes, so the relay can replay them and forward whatever
 * came after byte for byte. The stream is paused when the sniff ends, so
 * nothing is lost before it is piped.
 */
export function sniff(stream: Duplex, options: SniffOptions): Promise<Sniffed> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let end = -1;
    const parser = new BananaParser((expr) => {
      if (end < 0 && options.step(expr, parser)) end = parser.position;
    }, { maxDepth: 16, maxExpressionBytes: options.maxBytes });
    const finish = (err?: Error) => {
      clearTimeout(timer);
      stopWatching();
      stream.off('data', onData);
      stream.pause();
      if (err) reject(err);
      else resolve({ raw: Buffer.concat(chunks, total), end });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      try {
        parser.feed(chunk);
      } catch (err) {
        // Bytes after the last expression we need are not ours to judge.
        if (end < 0) return finish(options.invalid(err));
      }
      if (end >= 0) finish();
      else if (total > options.maxBytes) finish(options.tooLarge());
    };
    const timer = setTimeout(() => finish(options.timedOut()), options.timeoutMs);
    stream.on('data', onData);
    // Also a peer that hung up before the sniff began (a master behind a TLS terminator
    // with no backend): its end came and went while the dial finished.
    const stopWatching = whenEnded(stream, () => finish(options.closed()));
  });
}
