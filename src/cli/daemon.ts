// The worker process itself, as twistd runs buildbot.tac: in the foreground
// (`start --nodaemon`) or as the detached child `bbgate start` spawns
// (./daemon-main.ts). It reads the tac, sets the umask, owns twistd.pid when
// daemonised, opens the log, and runs the worker until it stops.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BbgateError, EXIT_INTERNAL_ERROR, isBbgateError } from '../errors.js';
import { VERSION } from '../version.js';
import { configSecrets, LOG_ROTATE_TWISTD, loggableConfig, withEnvironmentCredentials, type WorkerConfig } from '../worker/config.js';
import { createWorkerLog, logFormatFrom, type LogFormat, type Logger, type WorkerLog } from '../worker/log/logger.js';
import { stallMessage, watchLiveness } from '../liveness.js';
import { runWorker } from '../worker/run.js';
import { readTac } from '../worker/tac/read.js';
import { strerror } from './common.js';
import { claimPidFile, removePidFile } from './pidfile.js';

/** What the daemon tells the `bbgate start` that spawned it, over the IPC channel, before it disconnects. */
export type DaemonMessage = { ready: true } | { ready: false; code: string; message: string };

export interface WorkerProcessOptions {
  /** The directory `start` was given: buildbot.tac and twistd.pid are here, and it is the working directory. */
  startDir: string;
  daemon: boolean;
  /** Foreground only: also log to stdout. */
  echo?: boolean;
  /** Daemon only: how to reach `bbgate start`; resolves once the message is sent. */
  notify?: (message: DaemonMessage) => Promise<void>;
}

/** twistd's umask for daemons, unless the tac sets one. */
const DAEMON_UMASK = 0o077;

/** Where the worker logs: twistd.log in the tac's basedir, as the tac's LogFile block puts it. */
export function logPath(config: WorkerConfig): string {
  return join(config.basedir, 'twistd.log');
}

export async function runWorkerProcess(o: WorkerProcessOptions): Promise<number> {
  let config: WorkerConfig;
  let log: WorkerLog;
  let ownsPid = false;
  const releasePid = () => {
    if (ownsPid) removePidFile(o.startDir, process.pid);
  };
  try {
    process.chdir(o.startDir);
    // bbgate's own BBGATE_PROXY_* settings are read before the tac's deletions apply, so a blacklist may name them.
    config = withEnvironmentCredentials(readTac(join(o.startDir, 'buildbot.tac')), process.env);
    applyEnvironmentChanges(config, process.env);
    if (o.daemon) process.umask(config.umask ?? DAEMON_UMASK);
    else if (config.umask !== undefined) process.umask(config.umask);
    if (o.daemon) {
      claimPidFile(o.startDir, process.pid);
      ownsPid = true;
    }
    log = openLog(config, o, logFormatFrom(process.env));
  } catch (err) {
    releasePid();
    if (!isBbgateError(err)) throw err;
    if (o.notify) await o.notify({ ready: false, code: err.code, message: err.message });
    else process.stderr.write(`bbgate: ${err.message}\n`);
    return 1;
  }
  const { logger } = log;
  const crash = (err: unknown) => {
    logger.fatal({ err }, 'the worker crashed');
    releasePid();
    log.close();
    process.exit(EXIT_INTERNAL_ERROR);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  const rotateNow = () => {
    log.rotate();
    logger.info({}, 'log rotated on SIGUSR1');
  };
  process.on('SIGUSR1', rotateNow);

  logger.info({ version: VERSION, config: loggableConfig(config) }, `bbgate ${VERSION} starting worker ${config.workername} in ${config.basedir}`);
  if (config.logTo && o.daemon) {
    logger.info({ logTo: config.logTo }, `buildbot.tac logs to ${config.logTo}; a daemon's ${config.logTo} is ${logPath(config)}, so the log is there (bbgate start --nodaemon logs to ${config.logTo})`);
  }
  if (config.environ?.unset.length) logger.info({ unset: config.environ.unset }, 'removed from the environment by buildbot.tac: build commands do not see these variables');
  if (config.basedir !== o.startDir) {
    logger.warn({ startDir: o.startDir }, `buildbot.tac's basedir is ${config.basedir}, not the directory it is in (${o.startDir}): builds run there`);
  }
  recordHostname(config, logger);
  await o.notify?.({ ready: true });

  // The last resort: should the worker's own guard (src/worker/run.ts) not catch a stall,
  // the process still does not end with status 0 and its twistd.pid behind.
  const stopGuard = watchLiveness(() => 'the worker', (wait) => {
    logger.fatal({ code: 'INTERNAL_STALL' }, stallMessage(wait));
    releasePid();
    process.exitCode = EXIT_INTERNAL_ERROR;
  }, { lastResort: true });
  let status: number;
  try {
    status = await runWorker(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'the worker crashed');
    status = EXIT_INTERNAL_ERROR;
  } finally {
    process.off('uncaughtException', crash);
    process.off('unhandledRejection', crash);
    process.off('SIGUSR1', rotateNow);
    stopGuard();
    releasePid();
  }
  log.close();
  return status;
}

/**
 * The tac's changes to os.environ, made to the worker's own environment as Python's
 * os.environ does (so the commands it starts inherit them): the container tac's
 * deletion of WORKERPASS keeps the password out of every build step.
 */
export function applyEnvironmentChanges(config: WorkerConfig, env: NodeJS.ProcessEnv): void {
  for (const name of config.environ?.unset ?? []) delete env[name];
  Object.assign(env, config.environ?.set ?? {});
}

/**
 * Where the log goes. A tac that logs to sys.stdout (or stderr) gets that in the
 * foreground, as `twistd -ny` gives it, and no twistd.log; --quiet does not silence
 * it, since it is the only log. A daemon's stdout and stderr are twistd.log (twistd's
 * would be /dev/null, losing the log), so a daemon logs there as without the observer.
 */
function openLog(config: WorkerConfig, o: WorkerProcessOptions, format: LogFormat): WorkerLog {
  const file = logPath(config);
  try {
    if (config.logTo && !o.daemon) {
      const stream = config.logTo === 'stderr' ? process.stderr : process.stdout;
      return createWorkerLog({ stdout: true, stream, format, secrets: configSecrets(config) });
    }
    return createWorkerLog({
      file: { path: file, rotation: config.logRotate ?? LOG_ROTATE_TWISTD },
      stdout: o.echo,
      format,
      secrets: configSecrets(config),
    });
  } catch (err) {
    throw new BbgateError('WORKER_START', `cannot open ${file}: ${strerror(err)}`, { cause: err });
  }
}

/** buildbot-worker records the host it runs on in BASEDIR/twistd.hostname at start-up, for people looking at the directory. */
function recordHostname(config: WorkerConfig, logger: Logger): void {
  logger.info({}, 'recording hostname in twistd.hostname');
  try {
    writeFileSync(join(config.basedir, 'twistd.hostname'), `${hostname()}\n`);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'failed - ignoring');
  }
}
