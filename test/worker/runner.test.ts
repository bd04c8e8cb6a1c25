// The command runner: complete() after every update, elapsed unless interrupted, references
// released, and a command held back while the master is slow to answer its updates.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RemoteReference } from '../../src/pb/values/references.js';
import { PyFloat, type PbValue } from '../../src/pb/values/values.js';
import { shell } from '../../src/worker/commands/shell.js';
import { CommandRunner, MAX_UPDATES_IN_FLIGHT, pbChannel } from '../../src/worker/runner.js';

/** A stand-in for the master's RemoteCommand that answers each update after `delayMs`. */
function slowCommandRef(delayMs: number) {
  const calls: { method: string; args: readonly unknown[] }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let released = 0;
  const ref = {
    callRemote(method: string, args: readonly unknown[] = []) {
      calls.push({ method, args });
      if (method !== 'update') return Promise.resolve(null);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve) => setTimeout(() => {
        inFlight--;
        resolve(0);
      }, delayMs));
    },
    notifyOnDisconnect: () => () => undefined,
    release: () => void released++,
  };
  return { ref: ref as unknown as RemoteReference, calls, maxInFlight: () => maxInFlight, released: () => released };
}

const stdoutOf = (calls: { method: string; args: readonly unknown[] }[]) =>
  calls.filter((c) => c.method === 'update')
    .flatMap((c) => (c.args[0] as [Map<string, unknown>, number][]).map(([m]) => m.get('stdout') ?? ''))
    .join('');

describe('CommandRunner', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bbgate-runner-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const run = (ref: RemoteReference, command: string, more: [string, PbValue][] = []) => {
    const args = new Map<string, PbValue>([['workdir', 'w'], ['command', command], ['logEnviron', false], ...more]);
    return new CommandRunner({
      name: 'shell',
      spec: shell,
      args,
      channel: pbChannel(ref, args),
      builderDir: dir,
      basedir: dir,
      environ: process.env,
      logger: { info: () => undefined, warn: () => undefined },
    });
  };

  it('holds a fast command back while the master answers slowly, and loses nothing', async () => {
    const master = slowCommandRef(20);
    const runner = run(master.ref, 'head -c 3000000 /dev/zero | tr "\\0" "x" | fold -w 99');
    await runner.done;
    // One pipe read (at most 64 KiB) can complete one more batch after the limit is reached.
    assert.ok(master.maxInFlight() <= MAX_UPDATES_IN_FLIGHT + 1, `max in flight ${master.maxInFlight()}`);
    assert.equal(stdoutOf(master.calls).replace(/\n/g, '').length, 3_000_000);
    const last = master.calls.at(-1)!;
    assert.equal(last.method, 'complete');
    assert.deepEqual(last.args, [null]);
    assert.equal(master.released(), 1);
  });

  it('sends rc, the elapsedTime header and elapsed, then complete', async () => {
    const master = slowCommandRef(0);
    await run(master.ref, 'exit 4').done;
    const keys = master.calls.filter((c) => c.method === 'update').flatMap((c) => (c.args[0] as [Map<string, unknown>, number][]).map(([m]) => [...m.keys()][0]));
    // As 3.7: rc, then the elapsedTime header, then elapsed, all before complete.
    assert.deepEqual(keys.slice(-3), ['rc', 'header', 'elapsed']);
    const elapsed = master.calls.flatMap((c) => (c.method === 'update' ? (c.args[0] as [Map<string, unknown>, number][]) : [])).find(([m]) => m.has('elapsed'))![0].get('elapsed');
    assert.ok(typeof elapsed === 'number' || elapsed instanceof PyFloat);
  });

  it("sends failure_reason as its own item, [{'failure_reason': reason}, 0], after the output and just before the kill header", async () => {
    const master = slowCommandRef(0);
    await run(master.ref, 'echo before; sleep 30', [['timeout', 1]]).done;
    const items = master.calls.flatMap((c) => (c.method === 'update' ? (c.args[0] as [Map<string, unknown>, number][]) : []));
    const at = items.findIndex(([m]) => m.has('failure_reason'));
    assert.ok(at > 0, JSON.stringify(items.map(([m]) => [...m])));
    assert.deepEqual([...items[at]![0]], [['failure_reason', 'timeout_without_output']]);
    assert.equal(items[at]![1], 0);
    // Text goes out as PyText pieces: compared as the str the master receives.
    assert.match(String(items[at + 1]![0].get('header')), /^\ncommand timed out: 1 seconds without output running b'echo before; sleep 30', attempting to kill\n/);
    assert.ok(items.slice(0, at).some(([m]) => String(m.get('stdout')) === 'before\n'));
  });
});
