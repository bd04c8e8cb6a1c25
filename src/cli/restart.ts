// `bbgate restart`: stop (a worker that is not running is fine), then start.
import { basedirArgument, checkWorkerDir, parseCommand, report } from './common.js';
import { START_OPTIONS, startWorker } from './start.js';
import { stopWorker } from './stop.js';

export const RESTART_USAGE = `Usage: bbgate restart [--quiet] [--nodaemon] [BASEDIR]

Stops the worker in BASEDIR (default: the current directory) if it is running,
then starts it as bbgate start does.

Options:
  -q, --quiet     print nothing but errors
      --nodaemon  start it in the foreground (see bbgate start --help)
  -h, --help      this text
`;

export async function runRestart(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommand('restart', argv, START_OPTIONS);
    if (values.help) {
      process.stdout.write(RESTART_USAGE);
      return 0;
    }
    const basedir = basedirArgument(positionals);
    checkWorkerDir(basedir);
    const quiet = Boolean(values.quiet);
    const say = (line: string) => {
      if (!quiet) process.stdout.write(`${line}\n`);
    };
    const stopped = await stopWorker(basedir, say);
    if (stopped === 'not-running') say('no old worker process found to stop');
    // buildbot-worker starts anyway, and the new worker then refuses the live pid; saying so here is clearer.
    if (stopped === 'timeout') return 1;
    say('now restarting worker process..');
    return await startWorker(basedir, { quiet, nodaemon: Boolean(values.nodaemon) });
  } catch (err) {
    return report(err, 'restart');
  }
}
