import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { ReadStream } from 'node:tty';

/** The terminal's other side, held open by the reader; undefined if it cannot be opened. */
function holdSlave(path: string): number | undefined {
  try {
    return openSync(path, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    return undefined;
  }
}

/**
 * A PTY's master side, read into `out` with out's backpressure (a paused reader leaves the
 * process blocked on a full terminal). It is read through libuv, which takes a hang-up (POLLHUP,
 * once no process holds the terminal) with a short read for the end of file although the kernel
 * still holds output (up to some 64 KiB, given to the reader 4 KiB at a time): the tail of a
 * command's output would be lost. So the reader holds the terminal's other side open itself (no
 * hang-up can reach it), and when the process exits (the kernel has then hung the terminal up
 * for everyone else: nothing more can be written), `finish` reads what is left until the kernel
 * has nothing more, then lets the terminal go. If `out` closes first (its reader gone), the
 * terminal is let go at once.
 */
export class TerminalReader {
  private readonly terminal: ReadStream;
  private slave: number | undefined;

  constructor(
    private readonly fd: number,
    slavePath: string,
    private readonly out: Writable,
    onError: (err: Error) => void,
  ) {
    this.slave = holdSlave(slavePath);
    this.terminal = new ReadStream(fd);
    this.terminal.on('error', (err: NodeJS.ErrnoException) => {
      // EIO is Linux's end of file on a terminal nobody holds (only when the other side could not be held).
      if (err.code !== 'EIO') onError(err);
    });
    this.terminal.pipe(out, { end: false });
    out.once('close', () => this.release());
  }

  /** The process has exited: moves what is left into `out`, lets the terminal go, and ends `out`. */
  finish(): void {
    if (!this.out.destroyed && !this.terminal.destroyed) this.drain();
    this.release();
    this.out.end();
  }

  /** Moves what the reader holds, then what the kernel holds, into `out`, whatever its backpressure. */
  private drain(): void {
    this.terminal.unpipe(this.out);
    for (let chunk; (chunk = this.terminal.read() as Buffer | null) !== null; ) this.out.write(chunk);
    const buffer = Buffer.alloc(65536);
    for (;;) {
      let got: number;
      try {
        got = readSync(this.fd, buffer);
      } catch {
        break; // EAGAIN: nothing left
      }
      if (got === 0) break;
      this.out.write(Buffer.from(buffer.subarray(0, got)));
    }
  }

  private release(): void {
    if (this.slave !== undefined) closeSync(this.slave);
    this.slave = undefined;
    this.terminal.destroy();
  }
}
