// A step that prints megabytes of unicode, run by the bbgate worker and by the real Python
// buildbot-worker 3.7 on one real 3.7 master: the stdio logs the master stores must be the same,
// whatever the characters (astral ones, a character cut between two pipe reads, invalid bytes),
// the line ends (CRLF, lone CR, cursor escapes, backspaces) or the way the output arrives.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, startPythonWorker, type BuildResult, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';
import { int, pick, rng, type Rng } from '../helpers/random-values.js';

const WORDS = ['build', 'ok', 'é', '‘x’', '日本語', '😀', 'Ωmega', 'tab\there', '\ufeff', '#'.repeat(200)];
const ENDS = ['\n', '\n', '\n', '\r\n', '\r', '\x1b[2J', '\x08\x08', '\x1b[3;14H'];

/**
 * Lines of unicode up to 4000 characters (a longer one, buildbot-worker 3.7 loses most of), with
 * every kind of line end and a few invalid bytes.
 */
function output(r: Rng, bytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < bytes) {
    let line = '';
    for (let n = int(r, r() < 0.01 ? 400 : 30); n > 0; n--) line += `${pick(r, WORDS)} `;
    const part = Buffer.concat([Buffer.from(line.slice(0, 4000)), r() < 0.02 ? Buffer.from([pick(r, [0xff, 0xc3, 0xe2, 0x80])]) : Buffer.alloc(0), Buffer.from(pick(r, ENDS))]);
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts);
}

/** The step's stdio log, its header lines (paths, times) left out. */
function stdio(build: BuildResult): { results: number | null; stdout: string; stderr: string } {
  const step = build.steps.find((s) => s.name !== 'worker_preparation');
  assert.ok(step, JSON.stringify(build.steps.map((s) => s.name)));
  const log = step.logs.find((l) => l.name === 'stdio');
  assert.ok(log, `no stdio log in ${step.name}`);
  return { results: step.results, stdout: log.stdout, stderr: log.stderr };
}

describe('megabytes of unicode output on a real 3.7 master: bbgate and buildbot-worker side by side', () => {
  let dir: string;
  let master: RunningMaster;
  let bbgate: TestWorker;
  let python: RunningPythonWorker;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bbgate-large-output-'));
    const r = rng(20261203);
    await writeFile(join(dir, 'big.txt'), output(r, 6e6));
    // A 4-byte character cut between two writes, with a pause between them: two pipe reads.
    const emoji = Buffer.from('😀');
    await writeFile(join(dir, 'head.txt'), Buffer.concat([Buffer.from('before the cut '), emoji.subarray(0, 2)]));
    await writeFile(join(dir, 'tail.txt'), Buffer.concat([emoji.subarray(2), Buffer.from(' after the cut\nno newline at the end')]));
    const script = `cat big.txt; cat head.txt; sleep 0.5; cat tail.txt; cat big.txt >&2`;
    const steps = [`steps.ShellCommand(name='print', command=['sh', '-c', ${JSON.stringify(script)}], workdir=${JSON.stringify(dir)}, logEnviron=False)`];
    master = await startMaster({
      workers: [{ name: 'bb', password: 'pw' }, { name: 'py', password: 'pw' }],
      builders: [
        { name: 'print-bb', workernames: ['bb'], steps },
        { name: 'print-py', workernames: ['py'], steps },
      ],
    });
    bbgate = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'bb', password: 'pw' });
    await bbgate.waitForLog(/Connected to buildmaster/);
    python = await startPythonWorker({ masterPort: master.pbPort, name: 'py', password: 'pw' });
  });
  after(async () => {
    await bbgate?.stop();
    await python?.stop();
    await master?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores the same stdout and stderr for both workers', { timeout: 300_000 }, async () => {
    const [ours, theirs] = await Promise.all([
      master.runBuild('print-bb', { timeoutMs: 240_000 }).then(stdio),
      master.runBuild('print-py', { timeoutMs: 240_000 }).then(stdio),
    ]);
    assert.equal(ours.results, Results.SUCCESS);
    assert.equal(theirs.results, Results.SUCCESS);
    assert.ok(ours.stdout.length > 5e6, `only ${ours.stdout.length} characters of stdout`);
    assert.match(ours.stdout, /before the cut 😀 after the cut\nno newline at the end\n$/);
    assert.ok(ours.stdout.includes('\ufffd'), 'the invalid bytes are in the log as U+FFFD');
    // Compared line by line first, so that a difference shows where it is.
    const a = ours.stdout.split('\n');
    const b = theirs.stdout.split('\n');
    const first = a.findIndex((line, i) => line !== b[i]);
    assert.equal(first, -1, `line ${first} differs:\nbbgate: ${JSON.stringify(a[first])}\npython: ${JSON.stringify(b[first])}`);
    assert.equal(ours.stdout, theirs.stdout);
    assert.equal(ours.stderr, theirs.stderr);
  });
});
