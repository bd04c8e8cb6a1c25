// bbgate and buildbot-worker on the same worker directories, against a real
// master: the real `buildbot-worker start` runs tacs bbgate wrote (including the
// cases buildbot-worker itself writes as broken Python), bbgate starts tacs
// buildbot-worker wrote, and each one's `stop` stops the other's daemon.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILDBOT_WORKER, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import type { Run } from '../helpers/cli.js';
import { bbgate } from '../helpers/cli.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { pythonCreateWorker, tempDir } from './support.js';

const daemons = new Set<string>();
after(() => {
  for (const dir of daemons) {
    try {
      process.kill(Number(readFileSync(join(dir, 'twistd.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // not running
    }
  }
});

/** The real buildbot-worker, with the Debian Python's environment. */
function buildbotWorker(args: string[]): Promise<Run> {
  const env = { ...process.env };
  for (const key of ['PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV']) delete env[key];
  return new Promise((resolve) => {
    execFile(BUILDBOT_WORKER, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

function pidIn(dir: string): number {
  daemons.add(dir);
  return Number(readFileSync(join(dir, 'twistd.pid'), 'utf8'));
}

function umaskOf(pid: number): string {
  return /^Umask:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

const STARTED = 'The buildbot-worker appears to have (re)started correctly.';

describe('bbgate and buildbot-worker share worker directories', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  before(async () => {
    master = await startMaster({ workers: ['w1', 'w2', 'w3'].map((name) => ({ name, password: `${name}-pw` })) });
    squid = await startSquid({ allowPorts: [master.pbPort] });
  });
  after(async () => {
    await squid.stop();
    await master.stop();
  });

  it("buildbot-worker start runs bbgate's tac with --umask=022 and a connection string; bbgate stop stops it", { timeout: 120_000 }, async () => {
    const dir = join(tempDir(), 'w1');
    const created = await bbgate(['create-worker', '-q', '--umask=022', '--connection-string', `tcp:host=127.0.0.1:port=${master.pbPort}`, dir, 'w1', 'w1-pw']);
    assert.equal(created.status, 0, created.stderr);
    const start = await buildbotWorker(['start', dir]);
    assert.equal(start.status, 0, start.stdout + start.stderr);
    assert.match(start.stdout, new RegExp(`${STARTED.replace(/[().]/g, '\\$&')}\n$`));
    const pid = pidIn(dir);
    assert.equal(umaskOf(pid), '0022', "buildbot-worker reads bbgate's 0o22 as the user meant --umask=022");
    await master.waitForWorker('w1');
    const stop = await bbgate(['stop', dir]);
    assert.equal(stop.status, 0);
    assert.equal(stop.stdout, `worker process ${pid} is dead\n`);
    await master.waitForWorker('w1', { connected: false });
  });

  it('bbgate start runs the tac buildbot-worker wrote; buildbot-worker stop stops it', { timeout: 120_000 }, async () => {
    const dir = join(tempDir(), 'w2');
    const created = await pythonCreateWorker(['-q', '-r', dir, `127.0.0.1:${master.pbPort}`, 'w2', 'w2-pw']);
    assert.equal(created.status, 0, created.stdout);
    const start = await bbgate(['start', dir]);
    assert.equal(start.status, 0, start.stdout + start.stderr);
    assert.ok(start.stdout.endsWith(`${STARTED}\n`), start.stdout);
    const pid = pidIn(dir);
    await master.waitForWorker('w2');
    const stop = await buildbotWorker(['stop', dir]);
    assert.equal(stop.status, 0, stop.stdout + stop.stderr);
    assert.equal(stop.stdout, `worker process ${pid} is dead\n`);
    await master.waitForWorker('w2', { connected: false });
  });

  it("a proxy string through real squid: buildbot-worker runs bbgate's quoted proxy_connection_string, then bbgate runs the same directory", { timeout: 120_000 }, async () => {
    const dir = join(tempDir(), 'w3');
    const created = await bbgate(['create-worker', '-q', '--proxy-connection-string', `tcp:127.0.0.1:${squid.port}`, dir, `127.0.0.1:${master.pbPort}`, 'w3', 'w3-pw']);
    assert.equal(created.status, 0, created.stderr);
    assert.match(readFileSync(join(dir, 'buildbot.tac'), 'utf8'), new RegExp(`proxy_connection_string = 'tcp:127\\.0\\.0\\.1:${squid.port}'\n`));
    const python = await buildbotWorker(['start', dir]);
    assert.equal(python.status, 0, python.stdout + python.stderr);
    await master.waitForWorker('w3');
    assert.equal((await bbgate(['stop', dir])).status, 0);
    await master.waitForWorker('w3', { connected: false });

    const ours = await bbgate(['start', dir]);
    assert.equal(ours.status, 0, ours.stdout + ours.stderr);
    pidIn(dir);
    await master.waitForWorker('w3');
    assert.equal((await bbgate(['stop', dir])).status, 0);
    await master.waitForWorker('w3', { connected: false });
    assert.match(squid.accessLog(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${master.pbPort}`));
  });
});
