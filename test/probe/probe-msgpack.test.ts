// The probe against a real 3.7 master's msgpack_experimental_v7 port: parse → … → tcp → websocket
// (the upgrade with the name and password) → msgpack (the master's first request) → login (worker
// info and the attach) → keepalive; a wrong password is the master's 401, a login failure (exit 5);
// --protocol comes from a tac that bbgate create-worker wrote.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';

describe('bbgate probe --protocol msgpack_experimental_v7 against a real 3.7 master', () => {
  let master: RunningMaster;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bbgate-probe-msgpack-'));
    master = await startMaster({ msgpack: true, workers: [{ name: 'pm', password: 'pm-s3cret' }], builders: [{ name: 'alpha', workernames: ['pm'] }] });
  });
  after(async () => {
    await master?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function probe(args: string[]): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args, '--json']);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }
  const msgpack = () => [`tcp:127.0.0.1:${master.msgpackPort}`, '--protocol', 'msgpack_experimental_v7'];

  it('walks websocket → msgpack → login → keepalive and exits 0; the password appears nowhere', async () => {
    const { status, report, text } = await probe([...msgpack(), '--name', 'pm', '--password', 'pm-s3cret']);
    assert.equal(status, 0, text);
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'websocket', 'msgpack', 'login', 'keepalive']);
    assert.match(report.steps[5]!.message, /the master speaks msgpack_experimental_v7: its first request was "\w+"/);
    assert.match(report.steps[6]!.message, /attached the worker \(builder directories: alpha\)/);
    assert.doesNotMatch(text, /s3cret/);
  });

  it("a wrong password is the master's 401: MSGPACK_UNAUTHORIZED at the websocket step, exit 5", async () => {
    const { status, report, text } = await probe([...msgpack(), '--name', 'pm', '--password', 'wrong-s3cret']);
    assert.equal(status, 5, text);
    const last = report.steps.at(-1)!;
    assert.equal(last.step, 'websocket');
    assert.equal(last.code, 'MSGPACK_UNAUTHORIZED');
    assert.match(last.message, /rejected the worker name or password.*401/);
    assert.doesNotMatch(text, /s3cret/);
  });

  it('without a name the 401 proves the port, and the probe stops there (exit 0)', async () => {
    const { status, report, text } = await probe(msgpack());
    assert.equal(status, 0, text);
    assert.equal(report.steps.at(-1)!.step, 'websocket');
    assert.match(report.steps.at(-1)!.message, /401, as a msgpack master does without credentials/);
  });

  it("the PB port probed as msgpack is WS_PROTOCOL (exit 6)", async () => {
    const { status, report, text } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--protocol', 'msgpack_experimental_v7', '--name', 'pm', '--password', 'pm-s3cret']);
    assert.equal(status, 6, text);
    assert.equal(report.steps.at(-1)!.code, 'WS_PROTOCOL');
  });

  it('--basedir: the protocol, name and password come from a tac bbgate create-worker wrote', async () => {
    const basedir = join(dir, 'w');
    const made = await bbgate(['create-worker', '-q', '--protocol=msgpack_experimental_v7', basedir, `127.0.0.1:${master.msgpackPort}`, 'pm', 'pm-s3cret']);
    assert.equal(made.status, 0, made.stderr);
    const { status, report, text } = await probe(['--basedir', basedir]);
    assert.equal(status, 0, text);
    assert.match(report.steps[0]!.message, /protocol msgpack_experimental_v7/);
    assert.equal(report.steps.at(-1)!.step, 'keepalive');
  });
});
