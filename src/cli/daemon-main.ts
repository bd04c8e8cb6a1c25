// The detached worker process `bbgate start` spawns: node daemon-main.js BASEDIR.
// Its stdout and stderr are twistd.log, so whatever escapes the logger lands there too.
import { EXIT_INTERNAL_ERROR } from '../errors.js';
import { runWorkerProcess, type DaemonMessage } from './daemon.js';

const notify = (message: DaemonMessage) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    // Disconnecting lets the parent exit while this process goes on.
    process.send(message, () => {
      process.disconnect();
      resolve();
    });
  });

runWorkerProcess({ startDir: process.argv[2]!, daemon: true, notify }).then(
  (status) => process.exit(status),
  (err: unknown) => {
    process.stderr.write(`bbgate: internal error: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT_INTERNAL_ERROR);
  },
);
