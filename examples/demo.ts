// The main job, as far as bbgate goes today: start a real Buildbot 3.7 master on loopback and
// have `bbgate probe` log in to it as a worker through the PB stack, then show the same probe
// failing with a wrong password. Run with `npm run demo`.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMaster } from '../test/helpers/buildbot-master.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[]): void {
  console.log(`$ bbgate ${args.join(' ')}`);
  try {
    process.stdout.write(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' }));
    console.log('(exit status 0)\n');
  } catch (err) {
    const e = err as { stdout?: string; status?: number };
    process.stdout.write(e.stdout ?? '');
    console.log(`(exit status ${e.status})\n`);
  }
}

const master = await startMaster({
  workers: [{ name: 'demo-worker', password: 'demo-pass' }],
  builders: [{ name: 'demo-build', workernames: ['demo-worker'] }],
});
try {
  console.log(`A Buildbot 3.7 master is listening for workers on 127.0.0.1:${master.pbPort}.\n`);
  run(['probe', `tcp:127.0.0.1:${master.pbPort}`, '--name', 'demo-worker', '--password', 'demo-pass']);
  run(['probe', `tcp:127.0.0.1:${master.pbPort}`, '--name', 'demo-worker', '--password', 'wrong']);
  const attached = await master.waitForLog(/Worker demo-worker attached to demo-build/, 5000).catch(() => undefined);
  console.log(attached ? `The master's log: ${attached.trim()}` : 'The master never logged the attach.');
} finally {
  await master.stop();
}
