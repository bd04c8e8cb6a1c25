// The probe without a worker name, straight to a real Buildbot 3.7 master and through a real
// `bbgate relay` in front of it: it says that the login was not tried and how to try it, and,
// behind the relay, that the greeting came from the relay and not the master.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMaster, startPythonWorker, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';

type Step = ProbeJson['steps'][number] & { skipped?: boolean };

async function probe(args: string[]): Promise<{ status: number; steps: Step[]; text: string; plain: string }> {
  const json = await bbgate(['probe', ...args, '--json']);
  const plain = await bbgate(['probe', ...args]);
  return { status: json.status, steps: (JSON.parse(json.stdout) as ProbeJson).steps, text: json.stdout + json.stderr, plain: plain.stdout };
}

describe('bbgate probe without --name, direct and behind a bbgate relay', () => {
  let master: RunningMaster;
  let relay: TestRelay;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'rw', password: 'rw-pass' }] });
    relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${master.pbPort}`, allow: ['rw'] });
  });
  after(async () => {
    await relay?.stop();
    await master?.stop();
  });

  it('straight to the master: the greeting is the master\'s, and the login is named as not tried (exit 0)', async () => {
    const { status, steps, text, plain } = await probe([`tcp:127.0.0.1:${master.pbPort}`]);
    assert.equal(status, 0, text);
    assert.deepEqual(steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'pb', 'login']);
    assert.match(steps[4]!.message, /^the server speaks PB: it offers "pb", "none", bbgate chose "pb"; PB version 6$/);
    assert.deepEqual({ ...steps[5], ms: 0 }, {
      step: 'login', ok: true, skipped: true, ms: 0,
      message: 'not tried: no worker name; give --name NAME and --password PASSWORD (or BBGATE_PASSWORD), or --basedir DIR to probe as that worker',
    });
    assert.match(plain, /^– login {16}not tried: no worker name; give --name NAME/m);
  });

  it('through the relay: says the relay answered, not the master, which was not reached (exit 0)', async () => {
    const since = await master.logSize();
    const { status, steps, text, plain } = await probe([`tcp:127.0.0.1:${relay.port()}`]);
    assert.equal(status, 0, text);
    assert.match(steps[4]!.message, /^a bbgate relay answered, not the master: it offers "pb", "none", "bbgate-relay", bbgate chose "pb"; PB version 6 \(the relay dials the master only when a worker logs in\)$/);
    assert.equal(steps[5]!.skipped, true);
    assert.match(steps[5]!.message, /not tried: no worker name.*The greeting came from the relay, not the master: without a login the master was not reached$/);
    assert.match(plain, /^– login .*came from the relay, not the master/m);
    // Indeed: the master heard of no connection.
    assert.doesNotMatch((await master.log()).slice(since), /attaching from/);
  });

  it('through the relay with --name: the login reaches the master and the real worker still attaches beside it', async () => {
    const { status, steps, text } = await probe([`tcp:127.0.0.1:${relay.port()}`, '--name', 'rw', '--password', 'rw-pass']);
    assert.equal(status, 0, text);
    assert.deepEqual(steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'pb', 'login', 'keepalive']);
    assert.match(steps[4]!.message, /^a bbgate relay answered/);
    assert.match(steps[5]!.message, /logged in as "rw"; the master attached the worker/);
    // buildbot-worker (Twisted) picks "pb" from the relay's marked offer, as from a master's.
    const worker = await startPythonWorker({ masterPort: relay.port(), name: 'rw', password: 'rw-pass' });
    try {
      await master.waitForWorker('rw');
    } finally {
      await worker.stop();
    }
  });
});
