import { tuple } from '../pb/index.js';

/** One buffered update: a key and its value, as the master's remote_update receives them. */
export type Update = [key: string, value: unknown];

export interface UpdateOptions {
  /** Bytes of text held before a send (buildbot-worker: 64 KiB). */
  bufferSize?: number;
  /** Milliseconds the first held item may wait (buildbot-worker: 5 s). */
  bufferTimeout?: number;
  /** Longest line passed on, its "\n" included (buildbot-worker and the master: 4096). */
  maxLineLength?: number;
}

/** buildbot-worker's newline rule: CRLF, a lone CR before more text, and cursor escapes all end a line. */
const NEWLINES = /\r\n|\r(?=[^\n])|\x1b\[u|\x1b\[[0-9]+;[0-9]+[Hf]|\x1b\[2J|\x08+/g;

/**
 * Turns a command's output into update batches the way buildbot-worker does:
 * text is passed on in whole lines (a partial line waits for its end, and is
 * ended with "\n" when the command finishes), consecutive items of one kind are
 * merged, and a batch goes out at 64 KiB or 5 s. A line longer than 4096
 * characters is passed on in 4095-character pieces, each ended with "\n", as
 * buildbot-worker means to (its slicing loses most of such a line) and as the
 * master would cut it anyway. Unlike buildbot-worker, a batch carries every
 * item at once.
 */
export class UpdateBuffer {
  private readonly bufferSize: number;
  private readonly bufferTimeout: number;
  private readonly maxLineLength: number;
  private readonly partial = new Map<string, string>();
  private items: Update[] = [];
  private held = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly send: (items: Update[]) => void, options: UpdateOptions = {}) {
    this.bufferSize = options.bufferSize ?? 64 * 1024;
    this.bufferTimeout = options.bufferTimeout ?? 5000;
    this.maxLineLength = options.maxLineLength ?? 4096;
  }

  text(key: 'stdout' | 'stderr' | 'header', text: string): void {
    const lines = this.lines(key, text);
    if (lines) this.add(key, lines);
  }

  log(name: string, text: string): void {
    const lines = this.lines(`log:${name}`, text);
    if (lines) this.add('log', lines, name);
  }

  other(key: string, value: unknown): void {
    this.items.push([key, value]);
    this.held += 20;
    this.schedule();
  }

  /** Ends every partial line and sends everything held (before `complete`). */
  flush(): void {
    for (const stream of [...this.partial.keys()].sort()) {
      const rest = this.partial.get(stream)!;
      this.partial.delete(stream);
      if (stream.startsWith('log:')) this.add('log', `${rest}\n`, stream.slice(4));
      else this.add(stream, `${rest}\n`);
    }
    this.sendNow();
  }

  /** Drops everything held without sending it (the connection is gone). */
  discard(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.partial.clear();
    this.held = 0;
  }

  /** The complete lines of `text` after what was held for this stream, long ones cut; the rest is held. */
  private lines(stream: string, text: string): string {
    // A CR at the very end may be the first half of a CRLF: it stays in the held partial line.
    const normal = ((this.partial.get(stream) ?? '') + text).replace(NEWLINES, '\n');
    const piece = this.maxLineLength - 1;
    let out = '';
    let start = 0;
    for (;;) {
      const newline = normal.indexOf('\n', start);
      const end = newline < 0 ? normal.length : newline;
      for (; end - start > piece; start += piece) out += `${normal.slice(start, start + piece)}\n`;
      if (newline < 0) break;
      out += normal.slice(start, newline + 1);
      start = newline + 1;
    }
    if (start < normal.length) this.partial.set(stream, normal.slice(start));
    else this.partial.delete(stream);
    return out;
  }

  private add(key: string, text: string, logname?: string): void {
    const last = this.items[this.items.length - 1];
    if (last && last[0] === key && (logname === undefined || (last[1] as string[])[0] === logname)) {
      if (logname === undefined) last[1] = (last[1] as string) + text;
      else last[1] = tuple(logname, (last[1] as string[])[1] + text);
    } else {
      this.items.push([key, logname === undefined ? text : tuple(logname, text)]);
    }
    this.held += text.length + 16;
    if (this.held >= this.bufferSize) this.sendNow();
    else this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.sendNow(), this.bufferTimeout);
  }

  private sendNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.held = 0;
    this.send(items);
  }
}
