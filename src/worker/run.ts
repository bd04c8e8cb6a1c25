import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BbgateError, EXIT_INTERNAL_ERROR } from '../errors.js';
import { stallMessage, watchLiveness } from '../liveness.js';
import { openPbSession } from '../pb/index.js';
import { abandonable } from '../deadline.js';
import { dial, type StepOutcome, type StepRunner } from '../route/dial.js';
import { routeTo } from '../route/route.js';
import { defaultKeepaliveTimeout, startKeepalive } from '../transport/keepalive.js';
import { Reconnector } from '../transport/reconnect.js';
import { Bot, type BotOptions } from './bot.js';
import { MsgpackBot } from './msgpack-bot.js';
import { openMsgpackSession } from './msgpack-connect.js';
import { signalLiveGroups } from './process/index.js';
import { COMMANDS } from './commands/index.js';
import { msgpackOverWsUrl, type WorkerConfig } from './config.js';
import { lookupCodec, UTF8 } from './python/codec.js';

export interface WorkerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logged-in connection to the master, PB or msgpack, as the worker's loop uses it. */
interface WorkerSession {
  /** Settles with the reason once the connection has ended. */
  readonly closed: Promise<Error>;
  close(reason?: BbgateError): void;
  /** One keepalive; resolves when the master has answered it. */
  ping(): Promise<unknown>;
  /** Asks the master for a graceful shutdown (allow_shutdown). */
  askShutdown(): Promise<unknown>;
}

/** Errors no reconnect can fix: the worker stops at once. */
const FATAL = new Set(['ENDPOINT_SYNTAX', 'PROXY_SYNTAX', 'PROXY_CREDENTIALS', 'TLS_CLIENT_CERT', 'TLS_NO_TRUST_ROOTS']);

/** How long a stopping worker waits for its commands to end: below `bbgate stop`'s 10 s. */
const STOP_WAIT_MS = 8000;

/** How often allow_shutdown='file' looks at shutdown.stamp, as buildbot-worker does. */
const SHUTDOWN_FILE_POLL_MS = 10_000;

/**
 * Runs the worker until it is told to stop: connect through the transport
 * stack, log in, serve the master, keep the connection alive, and reconnect
 * with backoff when it drops. Resolves with the process exit status.
 */
export async function runWorker(config: WorkerConfig, logger: WorkerLogger, signals: NodeJS.EventEmitter = process): Promise<number> {
  if (config.umask !== undefined) process.umask(config.umask);
  const { endpoint } = config;
  if (config.protocol !== 'pb' && endpoint.type === 'ws') throw new BbgateError('ENDPOINT_SYNTAX', msgpackOverWsUrl);
  const codec = config.unicodeEncoding ? lookupCodec(config.unicodeEncoding)! : UTF8;
  const route = routeTo(config, { tcpKeepalive: config.keepalive || 600, logger });
  let finish!: (status: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let current: WorkerSession | undefined;
  /** What the current connection attempt waits for, as a stall is reported. */
  let stage = 'the connection to the master';

  const botOptions: BotOptions = {
    basedir: config.basedir,
    deleteLeftoverDirs: config.deleteLeftoverDirs,
    commands: COMMANDS,
    environ: buildEnvironment(process.env),
    usePTY: config.usePTY ?? false,
    codec,
    logger,
    ...(config.numcpus !== undefined ? { numcpus: config.numcpus } : {}),
    onShutdown: () => finish(0),
  };
  const bot = config.protocol === 'pb' ? new Bot(botOptions) : new MsgpackBot(botOptions);

  const reconnector = new Reconnector<WorkerSession>({
    policy: { initial: 1, factor: 1.5, max: config.maxdelay },
    ...(config.maxretries ? { maxRetries: config.maxretries } : {}),
    isFatal: (err) => err instanceof BbgateError && FATAL.has(err.code),
    logger,
    connect: async (_attempt, signal) => {
      stage = 'the connection to the master';
      const track: StepRunner = async (step, run, describe) => {
        stage = `the ${step} step of the connection to the master`;
        const value = await run();
        if (step === 'pac' || step === 'proxy' || step === 'connect') logRoute(logger, step, describe(value));
        return value;
      };
      const stream = await abandonable(dial(route, track), signal, (s) => s.destroy());
      signal.addEventListener('abort', () => stream.destroy(), { once: true });
      // buildbot-worker sends both encoded with the tac's unicode_encoding (read.ts checked they encode).
      const username = codec.encode(config.workername)!;
      const password = codec.encode(config.password)!;
      let session: WorkerSession;
      if (bot instanceof Bot) {
        stage = "the master's PB greeting and login answer";
        const pb = await openPbSession(stream, { username, password, mind: bot, logger, timeout: endpoint.timeout * 1000 });
        session = {
          closed: pb.closed,
          close: (err) => pb.close(err),
          ping: () => pb.perspective.callRemote('keepalive'),
          askShutdown: () => pb.perspective.callRemote('shutdown'),
        };
      } else {
        stage = "the master's answer to the msgpack WebSocket upgrade";
        const mp = await openMsgpackSession(stream, { endpoint, ...(config.msgpackPath !== undefined ? { path: config.msgpackPath } : {}), username, password, bot, logger });
        session = {
          closed: mp.closed,
          close: (err) => mp.close(err),
          // The master answers WebSocket pings; msgpack has no keepalive op from the worker.
          ping: () => mp.ping(),
          askShutdown: () => Promise.reject(new Error('msgpack_experimental_v7 has no way for a worker to ask for a graceful shutdown')),
        };
      }
      logger.info({ master: endpoint.host, port: endpoint.port }, 'Connected to buildmaster; worker is ready');
      if (config.keepalive > 0) {
        const stop = startKeepalive({
          interval: config.keepalive,
          timeout: defaultKeepaliveTimeout(config.keepalive),
          ping: () => session.ping(),
          onDead: (err) => session.close(err),
        });
        void session.closed.then(stop);
      }
      void session.closed.then((reason) => {
        if (current === session) current = undefined;
        void bot.interruptAll('the connection to the master was lost');
        logger.warn({ code: (reason as BbgateError).code }, `lost the connection to the master: ${reason.message}`);
      });
      current = session;
      return session;
    },
  });
  reconnector.on('give-up', () => finish(1));

  const gracefulShutdown = () => {
    if (!current) {
      logger.info({}, 'shutdown requested while not connected: stopping now');
      finish(0);
      return;
    }
    logger.info({}, 'asking the master for a graceful shutdown');
    current.askShutdown().catch((err: Error) => {
      logger.warn({ err: err.message }, 'the master refused the shutdown request; stopping now');
      finish(0);
    });
  };
  let stopping = false;
  // A second stop request while commands are still dying kills them outright.
  const stopNow = () => {
    if (stopping) signalLiveGroups('SIGKILL');
    stopping = true;
    finish(0);
  };
  signals.on('SIGTERM', stopNow);
  signals.on('SIGINT', stopNow);
  if (config.allowShutdown === 'signal') signals.on('SIGHUP', gracefulShutdown);
  const watcher = config.allowShutdown === 'file' ? await watchShutdownFile(join(config.basedir, 'shutdown.stamp'), gracefulShutdown) : undefined;

  // Never end in silence: a wait that nothing can end any more is a lost connection (and
  // retried), and a stop that cannot finish still ends the process with a non-zero status.
  let shuttingDown = false;
  let shutdownStalled!: () => void;
  const stalledWhileStopping = new Promise<void>((resolve) => (shutdownStalled = resolve));
  const stopGuard = watchLiveness(
    () => (shuttingDown ? 'the worker to stop' : reconnector.connected ? 'the connection to the master to end' : stage),
    (wait) => {
      const err = new BbgateError('INTERNAL_STALL', stallMessage(wait));
      logger.error({ code: err.code }, err.message);
      if (shuttingDown) shutdownStalled();
      else if (!reconnector.interrupt(err)) finish(EXIT_INTERNAL_ERROR);
    },
  );

  reconnector.start();
  let status = await finished;
  shuttingDown = true;
  stopping = true;
  clearInterval(watcher);
  signals.off('SIGHUP', gracefulShutdown);
  const stopped = (async () => {
    // Wait for the commands' process groups to die (TERM, then the interrupt signal), within bbgate stop's patience;
    // whatever still runs then is killed, since detached groups would outlive the worker.
    await bot.interruptAll('the worker is stopping', STOP_WAIT_MS);
    const killed = signalLiveGroups('SIGKILL');
    if (killed) logger.warn({ groups: killed }, 'killed process groups that outlived the stop');
    await reconnector.stop();
    return true;
  })();
  if (!(await Promise.race([stopped, stalledWhileStopping.then(() => false)]))) status = EXIT_INTERNAL_ERROR;
  stopGuard();
  signals.off('SIGTERM', stopNow);
  signals.off('SIGINT', stopNow);
  logger.info({ status }, 'worker stopped');
  return status;
}

/**
 * Where the connection's proxy came from (the flag, which variable, the PAC file's answer and
 * the entry that carried it), as the probe's proxy and pac steps say it: one line per dial
 * step, and a warning for each PAC entry that fell through.
 */
function logRoute(logger: WorkerLogger, step: 'pac' | 'proxy' | 'connect', outcome: StepOutcome): void {
  const { message, warnings = [] } = typeof outcome === 'string' ? { message: outcome } : outcome;
  logger.info({ step }, step === 'proxy' ? `route: ${message}` : message);
  for (const warning of warnings) logger.warn({ step }, warning);
}

/** Calls `onTouched` whenever the file's mtime moves past what it was at start (0 if it did not exist). */
async function watchShutdownFile(path: string, onTouched: () => void): Promise<NodeJS.Timeout> {
  const mtime = async () => (await stat(path).catch(() => undefined))?.mtimeMs ?? 0;
  let seen = await mtime();
  return setInterval(() => {
    void mtime().then((now) => {
      if (now > seen) {
        seen = now;
        onTouched();
      }
    });
  }, SHUTDOWN_FILE_POLL_MS);
}

/**
 * The environment builds run in: the worker's, without the proxy password it was given in
 * BBGATE_PROXY_PASSWORD (read at start-up), which a build step printing its environment would
 * otherwise put in the master's logs.
 */
function buildEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { BBGATE_PROXY_PASSWORD: _password, ...rest } = env;
  return rest;
}
