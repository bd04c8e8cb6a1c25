// bbgate start, stop and restart: the pid file's life, stale and foreign pid
// files, the umask, the foreground mode, and start's wait for the master's
// "attached", against the real worker and a real Buildbot master.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, bbgateEnv, CLI } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from './support.js';

const started = new Set<number>();
after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A worker directory for a master that is not there (connections are refused and retried). */
async function workerDir(options: string[] = [], master = '127.0.0.1:1', password = 'pw'): Promise<string> {
  const dir = join(tempDir(), 'w');
  const r = await bbgate(['create-worker', '-q', ...options, dir, master, 'w1', password]);
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

function pidIn(dir: string): number {
  const text = readFileSync(join(dir, 'twistd.pid'), 'utf8');
  assert.match(text, /^\d+$/, 'twistd.pid is the decimal pid without a newline');
  const pid = Number(text);
  started.add(pid);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process's umask, from Linux's /proc. */
function umaskOf(pid: number): string {
  return /^Umask:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('start and stop: the pid file', () => {
  it('start writes twistd.pid, refuses a second start, stop removes it; stop again says not running', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    const first = await bbgate(['start', '--quiet', dir]);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout, '');
    const pid = pidIn(dir);
    assert.ok(alive(pid));
    assert.equal(statSync(join(dir, 'twistd.pid')).mode & 0o777, 0o600);
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /daemon-main\.js\0/);
    assert.equal(umaskOf(pid), '0077', "twistd's umask for daemons");
    await waitFor(() => existsSync(join(dir, 'twistd.log')) && readFileSync(join(dir, 'twistd.log'), 'utf8').includes('starting worker w1'), 'the log');
    assert.equal(readFileSync(join(dir, 'twistd.hostname'), 'utf8'), `${hostname()}\n`);

    const second = await bbgate(['start', dir]);
    assert.equal(second.status, 1);
    assert.equal(second.stderr, `bbgate: a worker is already running in ${dir} (PID ${pid}, from twistd.pid); stop it first with: bbgate stop ${dir}\n`);
    assert.equal(pidIn(dir), pid);

    const stop = await bbgate(['stop', dir]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(stop.stdout, `worker process ${pid} is dead\n`);
    assert.ok(!alive(pid));
    assert.ok(!existsSync(join(dir, 'twistd.pid')));

    const again = await bbgate(['stop', dir]);
    assert.equal(again.status, 0);
    assert.equal(again.stdout, 'worker not running\n');
    assert.match(readFileSync(join(dir, 'twistd.log'), 'utf8'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} \[-\] worker stopped/m);
  });

  it('a stale twistd.pid is removed; a pid file that is not a pid is refused', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    const stale = await deadPid();
    writeFileSync(join(dir, 'twistd.pid'), String(stale));
    const r = await bbgate(['start', '-q', dir]);
    assert.equal(r.status, 0, r.stderr);
    const pid = pidIn(dir);
    assert.notEqual(pid, stale);
    assert.equal((await bbgate(['stop', '-q', dir])).status, 0);

    writeFileSync(join(dir, 'twistd.pid'), 'twelve\n');
    for (const command of ['start', 'stop']) {
      const bad = await bbgate([command, dir]);
      assert.equal(bad.status, 1, command);
      assert.equal(bad.stderr, `bbgate: ${join(dir, 'twistd.pid')} does not hold a process id; remove it if no worker is running in ${dir}\n`);
    }
  });

  it('stop: "never saw process go away" for a process that ignores SIGTERM', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    const stubborn = spawn('sh', ['-c', "trap '' TERM; echo ignoring TERM; while :; do sleep 1; done"], { stdio: ['ignore', 'pipe', 'ignore'] });
    started.add(stubborn.pid!);
    await once(stubborn.stdout, 'data');
    writeFileSync(join(dir, 'twistd.pid'), String(stubborn.pid));
    const r = await bbgate(['stop', dir]);
    assert.equal(r.status, 1);
    // What stop says once its 10 s wait is over (buildbot-worker's words).
    assert.equal(r.stdout, 'never saw process go away\n');
    assert.ok(alive(stubborn.pid!));
    stubborn.kill('SIGKILL');
  });

  it('a worker killed with SIGKILL leaves its pid file; stop then reports it dead and removes it', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    assert.equal((await bbgate(['start', '-q', dir])).status, 0);
    const pid = pidIn(dir);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 'the kill');
    const r = await bbgate(['stop', dir]);
    assert.equal(r.stdout, `worker process ${pid} is dead\n`);
    assert.ok(!existsSync(join(dir, 'twistd.pid')));
  });
});

describe('start: checks before daemonising', () => {
  it('not a worker directory: the messages buildbot-worker prints', async () => {
    const dir = tempDir();
    for (const command of ['start', 'stop', 'restart']) {
      const r = await bbgate([command, dir]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `bbgate: error reading '${join(dir, 'buildbot.tac')}': No such file or directory\ninvalid worker directory '${dir}'\n`);
    }
    writeFileSync(join(dir, 'buildbot.tac'), "application = service.Application('buildbot')\n");
    const r = await bbgate(['start', dir]);
    assert.equal(r.stderr, `bbgate: unexpected content in '${join(dir, 'buildbot.tac')}'\ninvalid worker directory '${dir}'\n`);
  });

  it('a tac bbgate cannot run is reported with its line, and nothing is started', async () => {
    const dir = await workerDir();
    const tac = join(dir, 'buildbot.tac');
    writeFileSync(tac, readFileSync(tac, 'utf8').replace('umask = None', 'umask = 022'));
    const r = await bbgate(['start', dir]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^bbgate: ${tac}:32: 022: leading zeros in decimal integer literals are not permitted`));
    assert.ok(!existsSync(join(dir, 'twistd.pid')));
    assert.ok(!existsSync(join(dir, 'twistd.log')));
  });

  it('arguments', async () => {
    const r = await bbgate(['start', 'a', 'b']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "bbgate: expected at most one BASEDIR, got 2 arguments\nTry 'bbgate start --help' for more information.\n");
    for (const command of ['start', 'stop', 'restart']) {
      const help = await bbgate([command, '--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, new RegExp(`^Usage: bbgate ${command} `));
    }
  });
});

describe('start: the umask and the foreground', () => {
  it("the tac's umask replaces the daemon's 0077", { timeout: 60_000 }, async () => {
    const dir = await workerDir(['--umask=022']);
    assert.equal((await bbgate(['start', '-q', dir])).status, 0);
    const pid = pidIn(dir);
    assert.equal(umaskOf(pid), '0022');
    assert.equal((await bbgate(['stop', '-q', dir])).status, 0);
  });

  it('--nodaemon: no pid file, the inherited umask, twistd.log\'s text lines on stdout too, SIGTERM stops it with status 0', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    const child = spawn('sh', ['-c', `umask 027 && exec "${process.execPath}" "${CLI}" start --nodaemon "${dir}"`], { stdio: ['ignore', 'pipe', 'pipe'], env: bbgateEnv() });
    started.add(child.pid!);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('connection failed'), 'a retry line on stdout');
    assert.ok(!existsSync(join(dir, 'twistd.pid')));
    assert.equal(umaskOf(child.pid!), '0027');
    // buildbot-worker's shape: local time with its offset, [-], the message, then bbgate's fields.
    const first = out.split('\n')[0]!;
    assert.match(first, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d[+-]\\d{4} \\[-\\] bbgate \\S+ starting worker w1 in ${dir} version=\\S+ config=\\{`));
    assert.ok(!first.includes('"password"'));
    assert.match(out, /^\S+ \S+ \[-\] connection failed: 127\.0\.0\.1:1: connection refused; retrying in .* code=NET_REFUSED attempt=\d+ delay=/m);
    assert.ok(readFileSync(join(dir, 'twistd.log'), 'utf8').startsWith(first));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('BBGATE_LOG_FORMAT=json: pino\'s JSON lines in twistd.log and on stdout, for log shippers; another value is refused', { timeout: 60_000 }, async () => {
    const dir = await workerDir();
    const child = spawn(process.execPath, [CLI, 'start', '--nodaemon', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: bbgateEnv({ BBGATE_LOG_FORMAT: 'json' }) });
    started.add(child.pid!);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('connection failed'), 'a retry line on stdout');
    const first = JSON.parse(out.split('\n')[0]!) as { msg: string; level: string; config: Record<string, unknown> };
    assert.equal(first.msg.replace(/^bbgate \S+ /, ''), `starting worker w1 in ${dir}`);
    assert.equal(first.level, 'info');
    assert.ok(!('password' in first.config));
    assert.ok(readFileSync(join(dir, 'twistd.log'), 'utf8').startsWith(out.split('\n')[0]!));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);

    const wrong = await bbgate(['start', '--nodaemon', dir], { BBGATE_LOG_FORMAT: 'xml' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^bbgate: BBGATE_LOG_FORMAT must be text or json, not "xml"\n/);
  });
});

describe('start waits for the master to attach the worker', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'w1', password: 'pw' }, { name: 'w2', password: 'pw2' }] });
  });
  after(() => master.stop());

  it('prints the log while it follows, then the success line; restart stops and starts it', { timeout: 120_000 }, async () => {
    const dir = await workerDir([], `127.0.0.1:${master.pbPort}`);
    writeFileSync(join(dir, 'twistd.pid'), String(await deadPid()));
    const r = await bbgate(['start', dir]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^Removing stale twistd\.pid \(process \d+ is gone\)$/);
    assert.equal(lines[1], 'Following twistd.log until startup finished..');
    assert.match(lines[2]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} \[-\] bbgate \S+ starting worker w1 in /);
    assert.match(lines[lines.length - 2]!, / \[-\] message from master: attached$/);
    assert.equal(lines[lines.length - 1], 'The buildbot-worker appears to have (re)started correctly.');
    const pid = pidIn(dir);
    await master.waitForWorker('w1');

    const re = await bbgate(['restart', dir]);
    assert.equal(re.status, 0, re.stdout + re.stderr);
    assert.match(re.stdout, new RegExp(`^worker process ${pid} is dead\nnow restarting worker process..\nFollowing twistd.log until startup finished..\n`));
    assert.match(re.stdout, /The buildbot-worker appears to have \(re\)started correctly.\n$/);
    const pid2 = pidIn(dir);
    assert.notEqual(pid2, pid);
    assert.equal((await bbgate(['stop', dir])).status, 0);
    await master.waitForWorker('w1', { connected: false });
  });

  it('a master that never attaches: after 10 s start says so without claiming success, and gives the probe command', { timeout: 60_000 }, async () => {
    // Port 1, where nothing listens: the worker keeps retrying, as it should.
    const dir = await workerDir();
    const r = await bbgate(['start', dir]);
    try {
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.ok(!r.stdout.includes('appears to have'), r.stdout);
      assert.match(r.stdout, /The master has not attached the worker within 10 seconds, so bbgate cannot confirm\nthat it connected\. The worker process \(PID \d+\) keeps running/);
      assert.ok(r.stdout.endsWith(`To find the layer that fails (DNS, TCP, proxy, TLS, PB, the name or the password), run:\n  bbgate probe --basedir ${dir}\n`), r.stdout);
    } finally {
      await bbgate(['stop', dir]);
    }
  });

  it('restart of a worker that is not running just starts it', { timeout: 60_000 }, async () => {
    const dir = await workerDir([], `127.0.0.1:${master.pbPort}`);
    const r = await bbgate(['restart', dir]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^no old worker process found to stop\nnow restarting worker process..\n/);
    pidIn(dir);
    assert.equal((await bbgate(['stop', dir])).status, 0);
  });

  it('a worker that gives up before the master attaches it: start says so at once, exit 1', { timeout: 60_000 }, async () => {
    const dir = await workerDir(['--maxretries=1']);
    const r = await bbgate(['start', dir]);
    assert.equal(r.status, 1);
    // Said when the worker exits, not at the end of start's 10 s wait (which prints the timeout's help text).
    assert.match(r.stdout, /The worker process exited \(status 1\) before the master attached it; see .*twistd\.log\.\n$/);
    assert.ok(!existsSync(join(dir, 'twistd.pid')), 'the worker removed its pid file');
  });

  it('a wrong password: the 10 s wait ends with the help text, exit 1, and the worker keeps trying', { timeout: 60_000 }, async () => {
    const dir = await workerDir([], `127.0.0.1:${master.pbPort}`, 'wrong-password');
    const r = await bbgate(['start', dir]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /The master has not attached the worker within 10 seconds/);
    assert.match(r.stdout, /PB_UNAUTHORIZED/, 'the followed log shows why');
    assert.ok(r.stdout.endsWith(`  bbgate probe --basedir ${dir}\n`), r.stdout);
    const pid = pidIn(dir);
    assert.ok(alive(pid));
    assert.ok(!readFileSync(join(dir, 'twistd.log'), 'utf8').includes('wrong-password'));
    assert.equal((await bbgate(['stop', dir])).status, 0);
  });
});

describe('the daemon log', () => {
  it('never holds the password or the proxy credentials', { timeout: 60_000 }, async () => {
    const dir = await workerDir(['--proxy-connection-string', 'http://proxyuser:proxy-s3cret@127.0.0.1:1'], '127.0.0.1:1', 'worker-s3cret');
    assert.equal((await bbgate(['start', '-q', dir])).status, 0);
    await waitFor(() => (readFileSync(join(dir, 'twistd.log'), 'utf8').match(/\n/g) ?? []).length >= 3, 'a few log lines');
    assert.equal((await bbgate(['stop', '-q', dir])).status, 0);
    const log = readFileSync(join(dir, 'twistd.log'), 'utf8');
    assert.ok(!log.includes('worker-s3cret'), log);
    assert.ok(!log.includes('proxy-s3cret'), log);
    assert.match(log, /proxyConnectionString":"http:\/\/\*\*\*@127\.0\.0\.1:1"/);
  });

  it('rotates by size when it starts (as before any write) and on SIGUSR1', { timeout: 60_000 }, async () => {
    // Big enough that the worker's own lines do not rotate it again during the test.
    const dir = await workerDir(['-s', '5000', '-l', '2']);
    const old = `${'x'.repeat(5000)}\n`;
    writeFileSync(join(dir, 'twistd.log'), old);
    writeFileSync(join(dir, 'twistd.log.2'), 'oldest\n');
    assert.equal((await bbgate(['start', '-q', dir])).status, 0);
    const pid = pidIn(dir);
    await waitFor(() => existsSync(join(dir, 'twistd.log.1')) && readFileSync(join(dir, 'twistd.log.1'), 'utf8') === old, 'the rotation at start');
    // As Twisted's LogFile: with a count of 2, an existing .2 is deleted rather than renamed to .3.
    assert.ok(!existsSync(join(dir, 'twistd.log.2')));
    const current = readFileSync(join(dir, 'twistd.log'), 'utf8');
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => existsSync(join(dir, 'twistd.log.2')), 'the SIGUSR1 rotation');
    assert.equal(readFileSync(join(dir, 'twistd.log.2'), 'utf8'), old);
    assert.ok(readFileSync(join(dir, 'twistd.log.1'), 'utf8').startsWith(current));
    await waitFor(() => readFileSync(join(dir, 'twistd.log'), 'utf8').includes('log rotated on SIGUSR1'), 'the line after the rotation');
    assert.ok(!existsSync(join(dir, 'twistd.log.3')));
    assert.equal((await bbgate(['stop', '-q', dir])).status, 0);
  });
});
