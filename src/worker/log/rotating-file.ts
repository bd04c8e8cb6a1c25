import { closeSync, fchmodSync, fstatSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface Rotation {
  /** Rotate before a write once the file has this many bytes; 0 never rotates. */
  size: number;
  /** Rotated files to keep (`log.1` newest); null keeps them all. */
  count: number | null;
}

/**
 * A log file rotated by size as Twisted's LogFile does it, so that tools
 * watching a buildbot-worker's twistd.log see the same files: before a write,
 * if the file has reached `size` bytes, `log.N` becomes `log.N+1` (those at or
 * beyond `count` are deleted), `log` becomes `log.1`, and a new `log` is opened.
 *
 * Writes are synchronous and whole: pino hands over one complete line per
 * call, so a rotation always falls between lines and nothing buffered can
 * land in the renamed file.
 */
export class RotatingFile {
  private fd: number;
  private size: number;
  /** The mode of a log that existed when we started, given to each new one after a rotation, as Twisted does. */
  private readonly mode: number | undefined;

  constructor(
    readonly path: string,
    private readonly rotation: Rotation,
  ) {
    this.mode = existingMode(path);
    this.fd = openSync(path, 'a');
    this.size = fstatSync(this.fd).size;
  }

  /** Lines that could not be written (a full disk): dropped, as Twisted drops what a failing log observer gets. */
  dropped = 0;

  /** Never throws: a log that cannot be written must not take the worker, or a build's report, down with it. */
  write(chunk: string | Uint8Array): boolean {
    if (this.rotation.size > 0 && this.size >= this.rotation.size) this.rotate();
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    try {
      let written = 0;
      while (written < data.length) written += writeSync(this.fd, data, written);
      this.size += data.length;
    } catch {
      this.dropped++;
    }
    return true;
  }

  /** Also run on SIGUSR1, as twistd does for its own log. A rotation that fails leaves the current file in use, as Twisted's does. */
  rotate(): void {
    try {
      for (const n of this.rotatedNumbers().sort((a, b) => b - a)) {
        const from = `${this.path}.${n}`;
        if (this.rotation.count !== null && n >= this.rotation.count) unlinkSync(from);
        else renameSync(from, `${this.path}.${n + 1}`);
      }
      renameSync(this.path, `${this.path}.1`);
    } catch {
      return;
    }
    // Open the new file before letting the old one go, so a failed open leaves a working log.
    let fd: number;
    try {
      fd = openSync(this.path, 'a');
      if (this.mode !== undefined) fchmodSync(fd, this.mode);
    } catch {
      return;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The N of every `log.N` beside the log (N > 0), as Twisted's listLogs finds them. */
  private rotatedNumbers(): number[] {
    const prefix = `${basename(this.path)}.`;
    return readdirSync(dirname(this.path))
      .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
      .map((name) => Number(name.slice(prefix.length)))
      .filter((n) => n > 0);
  }
}

function existingMode(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return undefined;
  }
}
