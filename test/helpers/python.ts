// Real Twisted as an oracle: Debian's interpreter (the one with python3-twisted) running the
// scripts in test/python.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The Debian interpreter that has Twisted and Buildbot (the `python3` on PATH may not). */
export const PYTHON = process.env.BBGATE_PYTHON ?? '/usr/bin/python3';
export const PY_DIR = fileURLToPath(new URL('../../../test/python/', import.meta.url));

/** The long-running codec of test/python/twisted_codec.py, with requests matched by id. */
export class TwistedCodec {
  private readonly child: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  private stderr = '';

  constructor() {
    this.child = spawn(PYTHON, [PY_DIR + 'twisted_codec.py'], { stdio: 'pipe' });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as Record<string, unknown>;
      const resolve = this.waiting.get(reply.id as number);
      this.waiting.delete(reply.id as number);
      resolve?.(reply);
    });
    this.child.on('exit', (code) => {
      for (const resolve of this.waiting.values()) resolve({ ok: false, error: `codec exited ${code}: ${this.stderr}` });
      this.waiting.clear();
    });
  }

  request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}
