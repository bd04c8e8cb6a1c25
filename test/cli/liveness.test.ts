// The liveness guard (src/liveness.ts) in a process of its own: Node ends a process whose
// event loop has drained even while a promise it awaits is pending. These scripts await a
// promise nothing can settle, as a lost event would leave one, and show what the guard does.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const LIVENESS = fileURLToPath(new URL('../../src/liveness.js', import.meta.url));

function runScript(body: string): Promise<{ status: number | null; stdout: string }> {
  const script = `import { watchLiveness, stallMessage } from ${JSON.stringify(LIVENESS)};\n${body}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, stdout) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout });
    });
  });
}

describe('watchLiveness', () => {
  it('without a guard, a lost wait ends the process with status 0 and nothing said (the defect it exists for)', async () => {
    // Not a top-level await, which Node reports (status 13): a promise inside the program, as the worker's were.
    const r = await runScript(`void (async () => { await new Promise(() => {}); console.log('never'); })();`);
    assert.deepEqual(r, { status: 0, stdout: '' });
  });

  it('a drained loop with a wait pending calls onStall with that wait, which can end the process with a status', async () => {
    const r = await runScript(`
      let fail;
      const pending = new Promise((_, reject) => (fail = reject));
      watchLiveness(() => 'the PB greeting', (wait) => fail(new Error(stallMessage(wait))));
      try { await pending; } catch (err) { console.log(err.message); process.exitCode = 70; }
    `);
    assert.equal(r.status, 70);
    assert.match(r.stdout, /^internal error: nothing was left that could end the wait for the PB greeting/);
  });

  it('onStall may schedule a retry: the process goes on, and the next drain is reported again', async () => {
    const r = await runScript(`
      let stalls = 0, done;
      const finished = new Promise((resolve) => (done = resolve));
      watchLiveness(() => 'an attempt', () => {
        stalls++;
        console.log('stall ' + stalls + ', retrying');
        if (stalls === 3) done();
        else setTimeout(() => undefined, 10);
      });
      await finished;
      console.log('finished after ' + stalls);
    `);
    assert.equal(r.status, 0);
    assert.deepEqual(r.stdout.trim().split('\n'), ['stall 1, retrying', 'stall 2, retrying', 'stall 3, retrying', 'finished after 3']);
  });

  it('a last-resort watcher is called only when no other watcher has a wait to report', async () => {
    const r = await runScript(`
      let release;
      const pending = new Promise((resolve) => (release = resolve));
      let step = 'the tls step';
      watchLiveness(() => 'the whole command', (wait) => { console.log('last resort: ' + wait); process.exitCode = 70; }, { lastResort: true });
      const stop = watchLiveness(() => step, (wait) => { console.log('step: ' + wait); step = undefined; setTimeout(() => undefined, 1); });
      await pending;
    `);
    assert.equal(r.status, 70);
    assert.deepEqual(r.stdout.trim().split('\n'), ['step: the tls step', 'last resort: the whole command']);
  });

  it('a watcher with no wait pending, or one stopped, lets the process end as it would', async () => {
    const r = await runScript(`
      watchLiveness(() => undefined, () => console.log('called'));
      const stop = watchLiveness(() => 'x', () => console.log('called too'));
      stop();
      console.log('done');
    `);
    assert.deepEqual(r, { status: 0, stdout: 'done\n' });
  });
});
