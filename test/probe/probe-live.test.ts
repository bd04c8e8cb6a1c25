// The probe's text output as it happens: each step's line when it finishes, and on a terminal a
// line for the running step saying how long it has waited, against a silent peer (a TCP listener
// that accepts and never speaks, where a PB master would greet at once).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bbgateEnv, CLI } from '../helpers/cli.js';

interface Chunk {
  at: number;
  text: string;
}

/** Runs `bbgate ARGS`, under `script` (a pseudo-terminal) or piped; every output chunk with its arrival time, and the exit status. */
function runCollecting(args: string[], terminal: boolean): Promise<{ chunks: Chunk[]; status: number | null; exitedAt: number }> {
  const command = [process.execPath, CLI, ...args];
  const child = terminal
    ? spawn('script', ['-q', '-e', '-c', command.map((a) => `'${a}'`).join(' '), '/dev/null'], { env: bbgateEnv(), stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(command[0]!, command.slice(1), { env: bbgateEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Chunk[] = [];
  child.stdout!.on('data', (data: Buffer) => chunks.push({ at: Date.now(), text: data.toString('utf8') }));
  return new Promise((resolve) => child.on('close', (status) => resolve({ chunks, status, exitedAt: Date.now() })));
}

const textOf = (chunks: Chunk[]) => chunks.map((c) => c.text).join('');

/** When the output first held `pattern`. */
function firstSeen(chunks: Chunk[], pattern: RegExp): number | undefined {
  let text = '';
  for (const c of chunks) {
    text += c.text;
    if (pattern.test(text)) return c.at;
  }
  return undefined;
}

describe('bbgate probe prints each step as it finishes', () => {
  let silent: Server;
  const held: Socket[] = [];
  let target: string;
  before(async () => {
    silent = createServer((s) => void held.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    target = `tcp:127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });

  it('on a terminal, shows the pb step waiting, in place, before it fails', async () => {
    const { chunks, status } = await runCollecting(['probe', target, '--timeout', '2'], true);
    const text = textOf(chunks);
    assert.equal(status, 6, text);
    const waiting = firstSeen(chunks, /\r\x1b\[K. pb +waiting \d+\.\d s/);
    const failed = firstSeen(chunks, /✘ pb /);
    assert.ok(waiting !== undefined, `no waiting line for the pb step in ${JSON.stringify(text)}`);
    assert.ok(failed !== undefined, text);
    assert.ok(waiting < failed, 'the waiting line came before the failure');
    // The counter advances while the step waits: a later rewrite shows at least a second.
    assert.match(text, /pb +waiting 1\.\d s/);
    // The waiting line is cleared before the result is written over it.
    assert.match(text, /\r\x1b\[K✘ pb .*PB_NOT_PB/);
    assert.match(text, /✔ tcp .*connected to 127\.0\.0\.1/);
  });

  it('piped, writes plain lines only, each as its step finishes', async () => {
    const { chunks, status, exitedAt } = await runCollecting(['probe', target, '--timeout', '2'], false);
    const text = textOf(chunks);
    assert.equal(status, 6, text);
    assert.doesNotMatch(text, /\r|\x1b|waiting/);
    assert.deepEqual(text.split('\n').filter((l) => /^[✔✘]/.test(l)).map((l) => l.split(/ +/)[1]), ['parse', 'proxy', 'dns', 'tcp', 'pb']);
    // The tcp line came out while the pb step still waited its 2 s, not with the rest at the end.
    const tcp = firstSeen(chunks, /✔ tcp /)!;
    assert.ok(exitedAt - tcp > 1000, `the tcp line came ${exitedAt - tcp} ms before the exit`);
  });

  it('--json writes the report once, at the end, with no waiting line even on a terminal', async () => {
    const { chunks, status } = await runCollecting(['probe', target, '--timeout', '1', '--json'], true);
    const text = textOf(chunks);
    assert.equal(status, 6, text);
    assert.doesNotMatch(text, /waiting|\x1b/);
    const report = JSON.parse(text) as { steps: { step: string; code?: string }[] };
    assert.equal(report.steps.at(-1)!.code, 'PB_NOT_PB');
  });

  it('the parse line shows the timeout in force, not the connection string\'s', async () => {
    const { chunks } = await runCollecting(['probe', `${target}:timeout=30`, '--timeout', '1'], false);
    assert.match(textOf(chunks), /✔ parse .*tcp:host=127\.0\.0\.1:port=\d+:timeout=1\n/);
  });
});
