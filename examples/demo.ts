// The main job: a bbgate worker connecting to a real Buildbot 3.7 master through the whole
// transport stack (an authenticating squid proxy, then TLS verified against a trustRoots
// directory) and running a real build; then a second worker reaching the same master as a
// firewalled one would: through squid to a `bbgate relay`'s wss:// listener, which admits it by
// name and forwards it to the master over TLS. Everything runs on 127.0.0.1. Run with
// `npm run demo`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMaster } from '../test/helpers/buildbot-master.js';
import { testPki } from '../test/helpers/pki.js';
import { freePort } from '../test/helpers/ports.js';
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

/** `bbgate relay` in the foreground, as systemd would run it; resolves once it listens. */
async function startRelay(...args: string[]): Promise<ChildProcess> {
  console.log(`$ bbgate ${args.join(' ')} &`);
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let seen = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const found = seen.split('\n').find((l) => l.includes('"relay listening"'));
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`bbgate relay exited with status ${code}`)));
  });
  console.log(`relay listening: ${(JSON.parse(line) as { listeners: string[] }).listeners.join(', ')}\n`);
  return child;
}

const pki = await testPki();
const trustRoots = await pki.trustDir(pki.root);
const work = await mkdtemp(join(tmpdir(), 'bbgate-demo-'));
const compile = `steps.ShellCommand(name='build', command=['sh', '-c', 'echo "compiling on $(uname -sm)"; seq 1 3 | sed "s/^/step /"'])`;
const master = await startMaster({
  workers: [{ name: 'demo-worker', password: 'demo-pass' }, { name: 'demo-dmz', password: 'dmz-pass' }],
  builders: [
    { name: 'demo-build', workernames: ['demo-worker'], steps: [compile] },
    { name: 'dmz-build', workernames: ['demo-dmz'], steps: [compile] },
  ],
  // The master's own TLS port, as an admin would configure it.
  extraConfig: `c['protocols'] = {'pb': {'port': 'ssl:%d:interface=127.0.0.1:privateKey=${pki.server.keyFile}:certKey=${pki.server.certFile}:extraCertChain=${pki.intermediate.certFile}' % fx['pbPort']}}`,
});
const relayPort = await freePort();
const squid = await startSquid({ auth: { users: { demo: 'proxy-pass' } }, allowPorts: [master.pbPort, relayPort] });
const basedir = join(work, 'worker');
const dmzBasedir = join(work, 'dmz-worker');
let relay: ChildProcess | undefined;

async function runBuild(builder: string): Promise<boolean> {
  const build = await master.runBuild(builder);
  console.log(`The master ran build #${build.number} of ${builder}: ${build.resultName}`);
  for (const step of build.steps) console.log(`  step ${step.name}: ${step.resultName}`);
  const log = build.steps.find((s) => s.name === 'build')?.logs[0];
  console.log(`  its output, as the master stored it:\n${(log?.stdout ?? '').replace(/^/gm, '    ')}`);
  return build.results === 0;
}

try {
  const connection = `tls:127.0.0.1:${master.pbPort}:trustRoots=${trustRoots}`;
  const proxy = `http://demo:proxy-pass@127.0.0.1:${squid.port}`;
  console.log(`A Buildbot 3.7 master listens for workers with TLS on 127.0.0.1:${master.pbPort};`);
  console.log(`squid on 127.0.0.1:${squid.port} demands Basic authentication.\n`);
  bbgate('probe', connection, '--proxy-connection-string', proxy, '--name', 'demo-worker', '--password', 'demo-pass');
  bbgate('create-worker', '--quiet', '--keepalive', '60', '--connection-string', connection, '--proxy-connection-string', proxy, basedir, 'demo-worker', 'demo-pass');
  if (bbgate('start', basedir) !== 0) throw new Error('the worker did not start');
  let ok = await runBuild('demo-build');

  console.log('\nNow a worker that may only leave through the proxy reaches the master through a relay in the DMZ.\n');
  const certificate = `certKey=${pki.server.certFile}&privateKey=${pki.server.keyFile}&extraCertChain=${pki.intermediate.certFile}`;
  relay = await startRelay('relay', '--listen', `wss://127.0.0.1:${relayPort}/pb#${certificate}`, '--upstream', connection, '--allow', 'demo-dmz', '--no-env-proxy');
  const viaRelay = `wss://localhost:${relayPort}/pb#trustRoots=${trustRoots}`;
  bbgate('probe', viaRelay, '--proxy-connection-string', proxy, '--name', 'demo-dmz', '--password', 'dmz-pass');
  console.log('A worker the relay does not admit is turned away before the master hears of it:');
  bbgate('probe', viaRelay, '--proxy-connection-string', proxy, '--name', 'demo-worker', '--password', 'demo-pass');
  bbgate('create-worker', '--quiet', '--keepalive', '60', '--connection-string', viaRelay, '--proxy-connection-string', proxy, dmzBasedir, 'demo-dmz', 'dmz-pass');
  if (bbgate('start', dmzBasedir) !== 0) throw new Error('the worker behind the relay did not start');
  ok = (await runBuild('dmz-build')) && ok;
  process.exitCode = ok ? 0 : 1;
} finally {
  bbgate('stop', basedir);
  bbgate('stop', dmzBasedir);
  relay?.kill('SIGTERM');
  await squid.stop();
  await master.stop();
  await rm(work, { recursive: true, force: true });
}
