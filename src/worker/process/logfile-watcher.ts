import { open, stat, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import type { PythonCodec } from '../python/codec.js';
import { OutputStream } from './output-stream.js';

const POLL_MS = 2000;
const READ_SIZE = 10000;

interface Fingerprint {
  readonly ctime: bigint;
  readonly mtime: bigint;
  readonly size: bigint;
}

async function fingerprint(path: string): Promise<Fingerprint | null> {
  let s: BigIntStats;
  try {
    s = await stat(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { ctime: s.ctimeNs, mtime: s.mtimeNs, size: s.size };
}

function same(a: Fingerprint | null, b: Fingerprint | null): boolean {
  return a === b || (a !== null && b !== null && a.ctime === b.ctime && a.mtime === b.mtime && a.size === b.size);
}

export interface LogfileWatcherOptions {
  readonly path: string;
  /** Send only what is written after the command started, instead of the whole file. */
  readonly follow: boolean;
  /** New text, decoded with replacement. */
  readonly onText: (text: string) => void;
  /** The tac's unicode_encoding (default UTF-8). */
  readonly codec?: PythonCodec;
  readonly onError: (err: unknown) => void;
}

/**
 * Streams a file the command writes. A file that exists beforehand counts
 * only once it changes (ctime, mtime or size, at nanosecond precision where
 * 3.7 compares whole seconds), so an untouched old log is never sent.
 *
 * With follow, reading starts where the file ended when the command started
 * (or at 0 if it was new, or shrank); 3.7 starts at the size seen by the
 * first poll that noticed the change, losing what was written before it.
 */
export class LogfileWatcher {
  private baseline: Fingerprint | null = null;
  private handle: FileHandle | undefined;
  private position = 0;
  private readonly text: OutputStream;
  private readonly buffer = Buffer.allocUnsafe(READ_SIZE);
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failed = false;

  private constructor(private readonly options: LogfileWatcherOptions) {
    this.text = new OutputStream(options.onText, options.codec);
  }

  /** Records the file's state before the command starts. */
  static async create(options: LogfileWatcherOptions): Promise<LogfileWatcher> {
    const watcher = new LogfileWatcher(options);
    try {
      watcher.baseline = await fingerprint(options.path);
    } catch (err) {
      watcher.fail(err);
    }
    return watcher;
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  /** Polls a last time, then lets go of the file. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.poll();
    this.text.end();
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  /** Lets go of the file without reading it again, for a command abandoned while its process lives on. */
  abandon(): void {
    this.failed = true;
    clearInterval(this.timer);
    void Promise.resolve(this.polling)
      .then(() => this.handle?.close())
      .catch(() => undefined);
  }

  private poll(): Promise<void> {
    if (this.failed) return Promise.resolve();
    this.polling ??= this.readNew()
      .catch((err: unknown) => this.fail(err))
      .finally(() => (this.polling = undefined));
    return this.polling;
  }

  private fail(err: unknown): void {
    this.failed = true;
    clearInterval(this.timer);
    this.options.onError(err);
  }

  private async readNew(): Promise<void> {
    if (!this.handle && !(await this.openIfStarted())) return;
    while (!this.failed) {
      const { bytesRead } = await this.handle!.read(this.buffer, 0, READ_SIZE, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      this.text.push(this.buffer.subarray(0, bytesRead));
    }
  }

  private async openIfStarted(): Promise<boolean> {
    const now = await fingerprint(this.options.path);
    if (same(now, this.baseline)) return false;
    if (now === null) {
      // Deleted since the start: the command is about to write a new one.
      this.baseline = null;
      return false;
    }
    this.handle = await open(this.options.path, 'r');
    const before = this.baseline?.size ?? 0n;
    this.position = this.options.follow && now.size >= before ? Number(before) : 0;
    return true;
  }
}
