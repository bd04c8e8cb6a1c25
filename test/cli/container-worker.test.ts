// bbgate's container image, run on the host as far as this machine allows (no
// container runtime runs here; see README): docker/entrypoint.sh with the
// image's environment-configured docker/buildbot.tac, attached to a real
// Buildbot 3.7 master, building. The build step prints its environment: the
// password, bbgate's proxy settings (the tac reaches the master through a real
// squid with them) and the blacklisted variables are not in it, even with a
// blacklist that names none of the first two. The log goes to stdout; as a
// daemon (`bbgate start`), to twistd.log.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, bbgateEnv, CLI } from '../helpers/cli.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from './support.js';

const DOCKER = fileURLToPath(new URL('../../../docker/', import.meta.url));
const PASSWORD = 'c0ntainer-Secret';
const TOKEN = 'tok-9d2f1e';
const PROXY_PASSWORD = 'squid-Pa55-4u';

describe('the container entrypoint and its tac, against a real Buildbot 3.7 master', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  before(async () => {
    master = await startMaster({
      workers: [{ name: 'cw', password: PASSWORD }, { name: 'latin', password: 'pw' }],
      builders: [
        { name: 'env', workernames: ['cw'], steps: ["steps.ShellCommand(command=['env'])"] },
        { name: 'latin', workernames: ['latin'], steps: ["steps.ShellCommand(command=['printf', 'caf\\\\351 \\\\200\\\\n'])"] },
      ],
    });
    squid = await startSquid({ auth: { users: { pw: PROXY_PASSWORD } }, allowPorts: [master.pbPort] });
  });
  after(async () => {
    await squid.stop();
    await master.stop();
  });

  /** The image's environment, pointed at the master and at this checkout instead of the image's paths. */
  function imageEnv(tacDir: string): NodeJS.ProcessEnv {
    return bbgateEnv({
      BUILDMASTER: '127.0.0.1',
      BUILDMASTER_PORT: String(master.pbPort),
      WORKERNAME: 'cw',
      WORKERPASS: PASSWORD,
      // Names neither WORKERPASS nor BBGATE_PROXY*: the image's tac removes those anyway.
      WORKER_ENVIRONMENT_BLACKLIST: 'SECRET_*',
      // A user without a password: bbgate takes BBGATE_PROXY_PASSWORD for it.
      BBGATE_PROXY: `http://pw@127.0.0.1:${squid.port}`,
      BBGATE_PROXY_PASSWORD: PROXY_PASSWORD,
      SECRET_TOKEN: TOKEN,
      KEEP_ME: 'visible',
      BBGATE_TAC_DIR: tacDir,
      BBGATE_TAC_TEMPLATE: join(DOCKER, 'buildbot.tac'),
    });
  }

  it('the entrypoint: attaches and builds; the step sees no blacklisted variable; the log is on stdout, no twistd.log', { timeout: 120_000 }, async () => {
    const root = tempDir();
    const tacDir = join(root, 'buildbot');
    // The image has bbgate on its PATH; here a wrapper runs this checkout's.
    const bin = join(root, 'bbgate');
    writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(bin, 0o755);
    const child = spawn('/bin/sh', [join(DOCKER, 'entrypoint.sh')], { env: { ...imageEnv(tacDir), BBGATE_BIN: bin }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => out.includes('message from master: attached') || child.exitCode !== null, 'the attached line on stdout', 30_000);
      assert.ok(out.includes('message from master: attached'), `the worker exited (${child.exitCode}):\n${out}\n${err}`);
      assert.equal(readFileSync(join(tacDir, 'buildbot.tac'), 'utf8'), readFileSync(join(DOCKER, 'buildbot.tac'), 'utf8'), 'the entrypoint put the image tac in place');

      const build = await master.runBuild('env');
      assert.equal(build.resultName, 'SUCCESS');
      const stdio = build.steps.flatMap((s) => s.logs).find((l) => l.name === 'stdio')!;
      assert.match(stdio.stdout, /^KEEP_ME=visible$/m, 'the step sees the environment');
      assert.match(stdio.stdout, /^WORKERNAME=cw$/m);
      // In the step's output and in the environment header the worker sends before it.
      assert.doesNotMatch(stdio.text, /^\s*(WORKERPASS|SECRET_TOKEN|BBGATE_PROXY|BBGATE_PROXY_PASSWORD)=/m);
      for (const hidden of [PASSWORD, TOKEN, PROXY_PASSWORD]) assert.ok(!stdio.text.includes(hidden), 'the step sees a secret');

      // twistd.log's text lines, as buildbot-worker's image prints them.
      const lines = out.trimEnd().split('\n');
      assert.match(lines[0]!, /^\S+ \S+ \[-\] bbgate \S+ starting worker cw in /);
      const removed = / unset=(\[.*\])$/.exec(lines.find((l) => l.includes('[-] removed from the environment')) ?? '');
      assert.deepEqual((JSON.parse(removed?.[1] ?? '[]') as string[]).sort(), ['BBGATE_PROXY', 'BBGATE_PROXY_PASSWORD', 'SECRET_TOKEN', 'WORKERPASS']);
      assert.ok(!out.includes(PASSWORD) && !out.includes(TOKEN) && !out.includes(PROXY_PASSWORD), 'a secret in the log');
      assert.equal(err, '');
      assert.ok(!existsSync(join(tacDir, 'twistd.log')), 'a tac that logs to stdout writes no twistd.log in the foreground');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    await waitFor(() => squid.accessLog().includes(`CONNECT 127.0.0.1:${master.pbPort}`), 'the tunnel in squid\'s access.log', 10_000);
    assert.match(squid.accessLog(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${master.pbPort} pw `), 'the worker reached the master through the proxy, with its credentials');
  });

  it('bbgate start (a daemon) of the same tac: attaches; the log is in twistd.log, which says why', { timeout: 120_000 }, async () => {
    const tacDir = join(tempDir(), 'buildbot');
    mkdirSync(tacDir);
    copyFileSync(join(DOCKER, 'buildbot.tac'), join(tacDir, 'buildbot.tac'));
    const r = await bbgate(['start', tacDir], imageEnv(tacDir));
    try {
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /The buildbot-worker appears to have \(re\)started correctly\.\n$/);
      const log = readFileSync(join(tacDir, 'twistd.log'), 'utf8');
      assert.match(log, /buildbot\.tac logs to stdout; a daemon's stdout is .*twistd\.log, so the log is there \(bbgate start --nodaemon logs to stdout\)/);
      assert.ok(!log.includes(PASSWORD));
    } finally {
      assert.equal((await bbgate(['stop', tacDir])).status, 0);
    }
  });

  it("a tac's unicode_encoding decodes the step's output: latin-1 bytes reach the master as their characters", { timeout: 120_000 }, async () => {
    const dir = join(tempDir(), 'w');
    const created = await bbgate(['create-worker', '-q', dir, `127.0.0.1:${master.pbPort}`, 'latin', 'pw']);
    assert.equal(created.status, 0, created.stderr);
    const tac = join(dir, 'buildbot.tac');
    const text = readFileSync(tac, 'utf8');
    assert.ok(text.includes('proxy_connection_string=proxy_connection_string)'));
    writeFileSync(tac, text.replace('proxy_connection_string=proxy_connection_string)', "proxy_connection_string=proxy_connection_string, unicode_encoding='iso-8859-1')"));
    const r = await bbgate(['start', dir]);
    try {
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const build = await master.runBuild('latin');
      assert.equal(build.resultName, 'SUCCESS');
      const stdio = build.steps.flatMap((s) => s.logs).find((l) => l.name === 'stdio')!;
      assert.equal(stdio.stdout, 'caf\u00e9 \u0080\n', 'UTF-8 would have made U+FFFD of both bytes');
    } finally {
      assert.equal((await bbgate(['stop', dir])).status, 0);
    }
  });
});
