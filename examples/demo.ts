// The main job: a bbgate worker connecting to a real Buildbot 3.7 master through the whole
// transport stack (an authenticating squid proxy, then TLS verified against a trustRoots
// directory) and running a real build. Everything runs on 127.0.0.1. Run with `npm run demo`.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMaster } from '../test/helpers/buildbot-master.js';
import { testPki } from '../test/helpers/pki.js';
import { startSquid } from '../test/helpers/squid.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function bbgate(...args: string[]): number {
  console.log(`$ bbgate ${args.join(' ')}`);
  try {
    process.stdout.write(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    return 0;
  } catch (err) {
    const e = err as { stdout?: string; status?: number };
    process.stdout.write(e.stdout ?? '');
    return e.status ?? 1;
  } finally {
    console.log('');
  }
}

const pki = await testPki();
const trustRoots = await pki.trustDir(pki.root);
const work = await mkdtemp(join(tmpdir(), 'bbgate-demo-'));
const master = await startMaster({
  workers: [{ name: 'demo-worker', password: 'demo-pass' }],
  builders: [{
    name: 'demo-build',
    workernames: ['demo-worker'],
    steps: [`steps.ShellCommand(name='build', command=['sh', '-c', 'echo "compiling on $(uname -sm)"; seq 1 3 | sed "s/^/step /"'])`],
  }],
  // The master's own TLS port, as an admin would configure it.
  extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=${pki.server.keyFile}:certKey=${pki.server.certFile}:extraCertChain=${pki.intermediate.certFile}' % fx['pbPort']}}`,
});
const squid = await startSquid({ auth: { users: { demo: 'proxy-pass' } }, allowPorts: [master.pbPort] });
const basedir = join(work, 'worker');
try {
  const connection = `tls:127.0.0.1:${master.pbPort}:trustRoots=${trustRoots}`;
  const proxy = `http://demo:proxy-pass@127.0.0.1:${squid.port}`;
  console.log(`A Buildbot 3.7 master listens for workers with TLS on 127.0.0.1:${master.pbPort};`);
  console.log(`squid on 127.0.0.1:${squid.port} demands Basic authentication.\n`);
  bbgate('probe', connection, '--proxy-connection-string', proxy, '--name', 'demo-worker', '--password', 'demo-pass');
  bbgate('create-worker', '--quiet', '--keepalive', '60', '--connection-string', connection, '--proxy-connection-string', proxy, basedir, 'demo-worker', 'demo-pass');
  if (bbgate('start', basedir) !== 0) throw new Error('the worker did not start');
  const build = await master.runBuild('demo-build');
  console.log(`The master ran build #${build.number} on the bbgate worker: ${build.resultName}`);
  for (const step of build.steps) console.log(`  step ${step.name}: ${step.resultName}`);
  const log = build.steps.find((s) => s.name === 'build')?.logs[0];
  console.log(`  its output, as the master stored it:\n${(log?.stdout ?? '').replace(/^/gm, '    ')}`);
  process.exitCode = build.results === 0 ? 0 : 1;
} finally {
  bbgate('stop', basedir);
  await squid.stop();
  await master.stop();
  await rm(work, { recursive: true, force: true });
}
