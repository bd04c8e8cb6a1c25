import { pyRepr, type PyNumber } from '../python/repr.js';

/** The line ends buildbot-worker 4.x counts for max_lines. */
const LINE_ENDS = /\r\n|\r|\n/g;

/**
 * A shell command's `max_lines`, counted as buildbot-worker 4.2.1 counts it: the line ends in
 * each piece of output as it is read and sent (stdout and stderr together, each piece on its own,
 * so a CRLF split across two reads counts twice; a stream the master did not ask for is not
 * counted), tripping once when the count exceeds the limit. Unlike a timeout, 0 is a limit.
 */
export class LineLimit {
  private count = 0;
  private tripped = false;

  constructor(private readonly max: PyNumber) {}

  /** Counts `text`'s line ends; true only the first time the count goes over the limit. */
  add(text: string): boolean {
    this.count += text.match(LINE_ENDS)?.length ?? 0;
    if (this.tripped || !(this.count > Number(this.max))) return false;
    this.tripped = true;
    return true;
  }

  /** The kill header's reason, in 4.2.1's words. */
  reason(fakeRepr: string): string {
    return `command exceeds max lines: ${this.count}/${pyRepr(this.max)} written/allowed running ${fakeRepr}`;
  }
}
