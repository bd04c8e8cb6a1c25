import { MAX_TEXT_UNITS, PyText, tuple } from '../pb/index.js';

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

/** Text with NEWLINES made "\n"; one search for each character a match starts with skips the regex (5× slower) where there is none. */
function normalise(text: string): string {
  if (text.indexOf('\r') < 0 && text.indexOf('\x1b') < 0 && text.indexOf('\x08') < 0) return text;
  return text.replace(NEWLINES, '\n');
}

/** The text item still open to more text of its kind: the last one held. */
interface OpenText {
  key: string;
  logname: string | undefined;
  text: PyText;
}

/**
 * Turns a command's output into update batches the way buildbot-worker does:
 * text is passed on in whole lines (a partial line waits for its end, and is
 * ended with "\n" when the command finishes), consecutive items of one kind are
 * merged, and a batch goes out at 64 KiB or 5 s. A line longer than 4096
 * characters is passed on in 4095-character pieces, each ended with "\n", as
 * buildbot-worker means to (its slicing loses most of such a line) and as the
 * master would cut it anyway. Unlike buildbot-worker, a batch carries every
 * item at once.
 *
 * An item's text is a PyText of the slices of output it was made of, never one
 * joined string, and never more than one string element can carry (a longer
 * text goes on in a new item).
 */
export class UpdateBuffer {
  private readonly bufferSize: number;
  private readonly bufferTimeout: number;
  private readonly maxLineLength: number;
  private readonly partial = new Map<string, string>();
  private items: Update[] = [];
  private open: OpenText | undefined;
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
    this.open = undefined;
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
    this.open = undefined;
    this.partial.clear();
    this.held = 0;
  }

  /** The complete lines of `text` after what was held for this stream, long ones cut; the rest is held. */
  private lines(stream: string, text: string): string {
    // A CR at the very end may be the first half of a CRLF: it stays in the held partial line.
    const held = this.partial.get(stream);
    const normal = normalise(held === undefined ? text : held + text);
    const piece = this.maxLineLength - 1;
    let start = fitsLines(normal, piece);
    let out: string;
    if (start >= 0) {
      // No line to cut (nearly always): the complete lines are one slice.
      out = normal.slice(0, start);
    } else {
      out = '';
      start = 0;
      for (;;) {
        const newline = normal.indexOf('\n', start);
        const end = newline < 0 ? normal.length : newline;
        for (; end - start > piece; start += piece) out += `${normal.slice(start, start + piece)}\n`;
        if (newline < 0) break;
        out += normal.slice(start, newline + 1);
        start = newline + 1;
      }
    }
    if (start < normal.length) this.partial.set(stream, normal.slice(start));
    else this.partial.delete(stream);
    return out;
  }

  private add(key: string, text: string, logname?: string): void {
    for (let start = 0; start < text.length; ) {
      const end = cutAt(text, start, MAX_TEXT_UNITS);
      this.append(key, start === 0 && end === text.length ? text : text.slice(start, end), logname);
      start = end;
    }
    this.held += text.length + 16;
    if (this.held >= this.bufferSize) this.sendNow();
    else this.schedule();
  }

  /** Adds text to the open item of its kind while that stays small enough to send, else to a new item. */
  private append(key: string, text: string, logname: string | undefined): void {
    const open = this.open;
    if (open && open.key === key && open.logname === logname && open.text.length + text.length <= MAX_TEXT_UNITS) {
      open.text.append(text);
      return;
    }
    const pieces = new PyText(text);
    this.items.push([key, logname === undefined ? pieces : tuple(logname, pieces)]);
    this.open = { key, logname, text: pieces };
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
    this.open = undefined;
    this.held = 0;
    this.send(items);
  }
}

/**
 * Where the complete lines of `text` end when none of them, nor the partial line after them, is
 * longer than `longest` code units (without its "\n"); -1 if one is. Looks back from `longest`
 * past each line start: a newline there ends every line from that start on within the limit,
 * so a 64 KiB chunk takes a few dozen searches, not one a line.
 */
function fitsLines(text: string, longest: number): number {
  const last = text.lastIndexOf('\n');
  let start = 0;
  while (start <= last) {
    const newline = text.lastIndexOf('\n', start + longest);
    if (newline < start) return -1;
    start = newline + 1;
  }
  return text.length - start <= longest ? start : -1;
}

/** The end of a slice from `start` of at most `units` code units that does not split a surrogate pair. */
function cutAt(text: string, start: number, units: number): number {
  const end = start + units;
  if (end >= text.length) return text.length;
  const unit = text.charCodeAt(end - 1);
  return unit >= 0xd800 && unit <= 0xdbff ? end - 1 : end;
}
