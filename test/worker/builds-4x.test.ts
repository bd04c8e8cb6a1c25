// Real builds on a real Buildbot 4.2.1 master (Debian trixie's, in the root that
// scripts/buildbot4-root.sh makes; see test/helpers/buildbot-runtime.ts): the same steps run on the
// bbgate worker over tcp, through squid's CONNECT and over tls, and on Buildbot 4.2.1's own
// worker; the results and state strings the master records must be the expected ones, and the
// same for both workers. The 4.x additions: max_lines ends a step FAILURE with " (max lines)",
// both timeouts with " (timed out)" (the failure_reason update), command version 3.3.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { startMaster, startPythonWorker, type BuildResult, type RunningMaster, type RunningPythonWorker } from '../helpers/buildbot-master.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// What the master downloads to the workers (from its basedir).
const TO_WORKER = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));

type Expect = 'SUCCESS' | 'FAILURE' | 'FAILURE (max lines)' | 'FAILURE (timed out)';

/** One build of all these steps per worker; a failing step does not stop the later ones. */
const STEPS: [name: string, expect: Expect, step: string][] = [
  // The command versions the master took from the worker (the REST API does not show them).
  [
    'versions',
    'SUCCESS',
    `type('CommandVersions', (__import__('buildbot.process.buildstep', fromlist=['BuildStep']).BuildStep,), {'run': lambda self: (setattr(self, 'descriptionDone', ['versions'] + sorted(set(self.build.workerforbuilder.worker.worker_commands.values()))), 0)[1]})(name='versions')`,
  ],
  ['echo', 'SUCCESS', `steps.ShellCommand(name='echo', command=['sh', '-c', 'echo hello; echo oops >&2'])`],
  ['fails', 'FAILURE', `steps.ShellCommand(name='fails', command='exit 3')`],
  ['pty', 'SUCCESS', `steps.ShellCommand(name='pty', command=['sh', '-c', 'test -t 0 && test -t 1 && test -t 2 && echo on a terminal'], usePTY=True)`],
  ['pty-max-lines', 'FAILURE (max lines)', `steps.ShellCommand(name='pty-max-lines', command=['seq', '1', '100000'], max_lines=10, usePTY=True)`],
  ['many-lines', 'FAILURE (max lines)', `steps.ShellCommand(name='many-lines', command=['seq', '1', '100000'], max_lines=10)`],
  ['few-lines', 'SUCCESS', `steps.ShellCommand(name='few-lines', command=['seq', '1', '10'], max_lines=10)`],
  ['silent', 'FAILURE (timed out)', `steps.ShellCommand(name='silent', command=['sleep', '60'], timeout=1)`],
  ['too-long', 'FAILURE (timed out)', `steps.ShellCommand(name='too-long', command=['sh', '-c', 'while :; do echo tick; sleep 0.2; done'], maxTime=1.5, timeout=30)`],
  [
    'make',
    'SUCCESS',
    `steps.ShellCommand(name='make', command=['sh', '-c', 'head -c 300000 /dev/urandom > up.bin && mkdir -p tree/sub && echo a > tree/a.txt && echo b > tree/sub/b.txt'])`,
  ],
  ['upload', 'SUCCESS', `steps.FileUpload(name='upload', workersrc='up.bin', masterdest=util.Interpolate('exchange/%(prop:workername)s/up.bin'))`],
  ['upload-dir', 'SUCCESS', `steps.DirectoryUpload(name='upload-dir', workersrc='tree', masterdest=util.Interpolate('exchange/%(prop:workername)s/tree'))`],
  ['download', 'SUCCESS', `steps.FileDownload(name='download', mastersrc='to-worker.bin', workerdest='got.bin', mode=0o640)`],
  ['check-download', 'SUCCESS', `steps.ShellCommand(name='check-download', command=['sh', '-c', 'test "$(sha256sum < got.bin | cut -c1-64)" = ${sha256(TO_WORKER)}'])`],
  ['mkdir', 'SUCCESS', `steps.MakeDirectory(name='mkdir', dir='build/made')`],
  ['fill', 'SUCCESS', `steps.ShellCommand(name='fill', command=['sh', '-c', 'echo x > made/f'])`],
  ['cpdir', 'SUCCESS', `steps.CopyDirectory(name='cpdir', src='build/made', dest='build/copied')`],
  ['stat', 'SUCCESS', `steps.FileExists(name='stat', file='build/copied/f')`],
  ['rmdir', 'SUCCESS', `steps.RemoveDirectory(name='rmdir', dir='build/made')`],
  ['check-fs', 'SUCCESS', `steps.ShellCommand(name='check-fs', command=['sh', '-c', 'test ! -e made && test -f copied/f'])`],
  // Last: FileExists halts the build when it fails.
  ['stat-missing', 'FAILURE', `steps.FileExists(name='stat-missing', file='build/nope')`],
];

const builder = (worker: string) => ({ name: `suite-${worker}`, workernames: [worker], steps: STEPS.map(([, , step]) => step) });

/** name, result and the master's state string of every step but the worker_preparation one. */
function outcome(build: BuildResult): [string, string, string][] {
  return build.steps.filter((s) => s.name !== 'worker_preparation').map((s) => [s.name, s.resultName, s.stateString]);
}

function assertExpected(build: BuildResult, who: string): void {
  assert.equal(build.resultName, 'FAILURE', `${who}: ${build.stateString}`);
  const got = outcome(build);
  assert.deepEqual(
    got.map(([name]) => name),
    STEPS.map(([name]) => name),
    who,
  );
  for (const [name, expect] of STEPS) {
    const [, result, state] = got.find(([n]) => n === name)!;
    const [wanted, suffix] = expect.split(' ', 2) as [string, string | undefined];
    assert.equal(result, wanted, `${who}: step ${name}: ${state}`);
    if (wanted === 'FAILURE') assert.match(state, /\(failure\)/, `${who}: step ${name}`);
    if (suffix) assert.ok(state.endsWith(` ${expect.slice(wanted.length + 1)}`), `${who}: step ${name}: ${JSON.stringify(state)} should end with ${suffix}`);
    else assert.doesNotMatch(state, /\((timed out|max lines)\)/, `${who}: step ${name}`);
  }
}

function stepLog(build: BuildResult, name: string) {
  const log = build.steps.find((s) => s.name === name)?.logs.find((l) => l.name === 'stdio');
  assert.ok(log, `no stdio log for ${name}`);
  return log;
}

describe('real builds on a Buildbot 4.2.1 master: bbgate (tcp, squid, tls) and buildbot-worker 4.2.1', () => {
  let master: RunningMaster;
  let tlsMaster: RunningMaster;
  let pki: TestPki;
  let squid: RunningSquid;
  const bbgate: TestWorker[] = [];
  let python: RunningPythonWorker;
  const builds = new Map<string, BuildResult>();

  before(async () => {
    pki = await testPki();
    const files = { 'to-worker.bin': TO_WORKER };
    [master, tlsMaster] = await Promise.all([
      startMaster({
        version: '4',
        workers: ['b4', 'p4', 's4'].map((name) => ({ name, password: `${name}-pass` })),
        builders: ['b4', 'p4', 's4'].map(builder),
        files,
      }),
      startMaster({
        version: '4',
        workers: [{ name: 't4', password: 't4-pass' }],
        builders: [builder('t4')],
        // The master's own TLS port, its key and chain in its basedir (it runs there).
        files: { ...files, 'tls/key.pem': pki.server.key, 'tls/cert.pem': pki.server.cert, 'tls/chain.pem': pki.intermediate.cert },
        extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=tls/key.pem:certKey=tls/cert.pem:extraCertChain=tls/chain.pem' % fx['pbPort']}}`,
      }),
    ]);
    squid = await startSquid({ allowPorts: [master.pbPort] });
    const trust = await pki.trustDir(pki.root);
    const workers = await Promise.all([
      startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'b4', password: 'b4-pass' }),
      startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, proxyConnectionString: `tcp:127.0.0.1:${squid.port}`, workername: 's4', password: 's4-pass' }),
      startTestWorker({ connection: `tls:127.0.0.1:${tlsMaster.pbPort}:trustRoots=${trust}`, workername: 't4', password: 't4-pass' }),
    ]);
    bbgate.push(...workers);
    [python] = await Promise.all([
      startPythonWorker({ version: '4', masterPort: master.pbPort, name: 'p4', password: 'p4-pass' }),
      ...workers.map((w) => w.waitForLog(/Connected to buildmaster/)),
    ]);
    // All four builds at once: each worker runs its own builder.
    const runs = await Promise.all([
      master.runBuild('suite-b4'),
      master.runBuild('suite-p4'),
      master.runBuild('suite-s4'),
      tlsMaster.runBuild('suite-t4'),
    ]);
    for (const [i, who] of ['b4', 'p4', 's4', 't4'].entries()) builds.set(who, runs[i]!);
  });
  after(async () => {
    await Promise.all(bbgate.map((w) => w.stop()));
    await python?.stop();
    await squid?.stop();
    await master?.stop();
    await tlsMaster?.stop();
  });

  it("the 4.2.1 worker's own build gives the expected results and state strings (the reference is sound)", () => {
    assertExpected(builds.get('p4')!, 'buildbot-worker 4.2.1');
  });

  for (const [who, how] of [
    ['b4', 'over tcp'],
    ['s4', "through squid's CONNECT"],
    ['t4', "over tls (the master's own ssl port)"],
  ] as const) {
    it(`bbgate ${how}: the expected results and state strings, the same as buildbot-worker 4.2.1's`, () => {
      const build = builds.get(who)!;
      assertExpected(build, `bbgate ${how}`);
      assert.deepEqual(outcome(build), outcome(builds.get('p4')!));
    });
  }

  it('max_lines: the 4.2.1 kill header and signal 9 in the log, as from buildbot-worker 4.2.1, and stdout cut', () => {
    for (const who of ['b4', 'p4']) {
      const log = stepLog(builds.get(who)!, 'many-lines');
      assert.match(log.header, /\ncommand exceeds max lines: \d+\/10 written\/allowed running \[b'seq', b'1', b'100000'\], attempting to kill\n/, who);
      assert.match(log.header, /process killed by signal 9\n/, who);
      assert.match(log.header, /program finished with exit code -1\n/, who);
      // One pipe read past the limit may still be sent (both workers do that), never the rest.
      assert.ok(log.stdout.length < 588_895, `${who}: ${log.stdout.length} characters of stdout`);
    }
    assert.match(stepLog(builds.get('b4')!, 'few-lines').stdout, /^1\n[^]*\n10\n$/);
  });

  it('timeouts: the kill headers, as from buildbot-worker 4.2.1', () => {
    for (const who of ['b4', 'p4']) {
      assert.match(stepLog(builds.get(who)!, 'silent').header, /\ncommand timed out: 1 seconds without output running \[b'sleep', b'60'\], attempting to kill\n/, who);
      assert.match(stepLog(builds.get(who)!, 'too-long').header, /\ncommand timed out: 1\.5 seconds elapsed running \[b'sh', b'-c', b'while :; do echo tick; sleep 0\.2; done'\], attempting to kill\n/, who);
    }
  });

  it('stores the logs (the unit-test trap undone) and moves the files byte for byte', async () => {
    for (const [who, m] of [
      ['b4', master],
      ['s4', master],
      ['t4', tlsMaster],
    ] as const) {
      const build = builds.get(who)!;
      assert.equal(stepLog(build, 'echo').stdout, 'hello\n', who);
      assert.equal(stepLog(build, 'echo').stderr, 'oops\n', who);
      const worker = bbgate[['b4', 's4', 't4'].indexOf(who)]!;
      const uploaded = await readFile(join(m.basedir, 'exchange', who, 'up.bin'));
      assert.equal(sha256(uploaded), sha256(await readFile(join(worker.basedir, `suite-${who}`, 'build', 'up.bin'))), who);
      assert.equal(await readFile(join(m.basedir, 'exchange', who, 'tree', 'sub', 'b.txt'), 'utf8'), 'b\n', who);
    }
  });

  it('reports command version 3.3 for every command, as buildbot-worker 4.2.1 does', () => {
    for (const [who, build] of builds) assert.equal(build.steps.find((step) => step.name === 'versions')?.stateString, 'versions 3.3', who);
  });

  it("the squid worker's connection went through squid (its CONNECT in the access log)", async () => {
    await bbgate[1]!.stop();
    await waitFor(() => squid.accessLog().includes(`CONNECT 127.0.0.1:${master.pbPort}`), "the tunnel in squid's access log");
    assert.match(squid.accessLog(), new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT 127\\.0\\.0\\.1:${master.pbPort} `));
  });
});
