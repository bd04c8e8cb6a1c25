// `bbgate stop`: buildbot-worker's stop. SIGTERM to the pid in twistd.pid, then
// `kill -0` once a second for up to 10 s.
import { basedirArgument, checkWorkerDir, parseCommand, report } from './common.js';
import { isAlive, readPidFile, removePidFile } from './pidfile.js';

export const STOP_USAGE = `Usage: bbgate stop [--quiet] [BASEDIR]

Stops the worker started in BASEDIR (default: the current directory): sends
SIGTERM to the process in BASEDIR/twistd.pid and waits up to 10 seconds for it
to exit. Exit status 0 when it has exited or was not running, 1 otherwise.

Options:
  -q, --quiet  print nothing but errors
  -h, --help   this text
`;

const OPTIONS = {
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const FIRST_CHECK_MS = 100;
const CHECK_EVERY_MS = 1000;
const CHECKS = 10;

export async function runStop(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommand('stop', argv, OPTIONS);
    if (values.help) {
      process.stdout.write(STOP_USAGE);
      return 0;
    }
    const basedir = basedirArgument(positionals);
    checkWorkerDir(basedir);
    const say = (line: string) => {
      if (!values.quiet) process.stdout.write(`${line}\n`);
    };
    const outcome = await stopWorker(basedir, say);
    if (outcome === 'not-running') say('worker not running');
    return outcome === 'timeout' ? 1 : 0;
  } catch (err) {
    return report(err, 'stop');
  }
}

/** Also restart's first half. */
export async function stopWorker(basedir: string, say: (line: string) => void): Promise<'stopped' | 'not-running' | 'timeout'> {
  const pid = readPidFile(basedir);
  if (pid === undefined) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await sleep(FIRST_CHECK_MS);
  for (let check = 0; check < CHECKS; check++) {
    if (!isAlive(pid)) {
      say(`worker process ${pid} is dead`);
      // The worker removes it on a clean exit; after a crash it is stale, and gone is better.
      removePidFile(basedir, pid);
      return 'stopped';
    }
    await sleep(CHECK_EVERY_MS);
  }
  say('never saw process go away');
  return 'timeout';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
