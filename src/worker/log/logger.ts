import { pino, type Logger } from 'pino';
import { CENSOR, secretScrubber } from '../../redact.js';
import { formatLogLine } from './pretty.js';
import { RotatingFile, type Rotation } from './rotating-file.js';

export type { Logger };

export interface WorkerLogOptions {
  /**
   * Usually BASEDIR/twistd.log (the name tooling written for buildbot-worker looks
   * for), rotated as given; absent when the tac logs to a stream instead.
   */
  file?: { path: string; rotation: Rotation };
  /** Also write each line to a stream (a foreground worker): 'pretty' for a terminal, 'json' for a pipe. */
  stdout?: 'pretty' | 'json';
  /** The stream `stdout` names: the process's stdout unless the tac logs to sys.stderr. */
  stream?: NodeJS.WritableStream;
  /** Strings no line may contain (the password, proxy credentials): replaced wherever they appear. */
  secrets?: string[];
}

export interface WorkerLog {
  logger: Logger;
  /** Rotate now (SIGUSR1), whatever the size. */
  rotate(): void;
  close(): void;
}

/** Field names that carry credentials wherever they appear in a logged object. */
const REDACT_PATHS = [
  'password',
  'passwd',
  '*.password',
  '*.passwd',
  '*.*.password',
  'authorization',
  '*.authorization',
  'headers["proxy-authorization"]',
  '*.headers["proxy-authorization"]',
];

/**
 * A pino logger writing JSON lines to `write`, for the worker and the relay.
 * Secrets are kept out twice: fields named like credentials are censored by
 * pino, and the literal secret strings are scrubbed from every line (also
 * from messages that quote a URL or an error text; see ../../redact.ts).
 */
export function jsonLogger(write: (line: string) => void, secrets: Iterable<string | undefined> = []): Logger {
  const scrub = secretScrubber(secrets);
  return pino(
    {
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    { write: (line: string) => write(scrub(line)) },
  );
}

/** The worker's logger: JSON lines in the log file, rotated as the tac says, and/or on stdout. */
export function createWorkerLog(options: WorkerLogOptions): WorkerLog {
  const file = options.file && new RotatingFile(options.file.path, options.file.rotation);
  const stream = options.stream ?? process.stdout;
  const logger = jsonLogger((line) => {
    file?.write(line);
    if (options.stdout === 'pretty') stream.write(formatLogLine(line));
    else if (options.stdout === 'json') stream.write(line);
  }, options.secrets);
  return { logger, rotate: () => file?.rotate(), close: () => file?.close() };
}
