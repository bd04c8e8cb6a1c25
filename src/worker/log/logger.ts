import { pino, type Logger } from 'pino';
import { BbgateError } from '../../errors.js';
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
  /** Also write each line to a stream (a foreground worker). */
  stdout?: boolean;
  /** The stream `stdout` names: the process's stdout unless the tac logs to sys.stderr. */
  stream?: NodeJS.WritableStream;
  /** Text lines in twistd.log's shape (the default), or pino's JSON lines for log shippers. */
  format?: LogFormat;
  /** Strings no line may contain (the password, proxy credentials): replaced wherever they appear. */
  secrets?: string[];
}

export type LogFormat = 'text' | 'json';

/** The variable that picks the log format; read once at start-up. */
export const LOG_FORMAT_VARIABLE = 'BBGATE_LOG_FORMAT';

/** BBGATE_LOG_FORMAT: `text` (or unset) or `json`; anything else is refused rather than guessed. */
export function logFormatFrom(env: NodeJS.ProcessEnv): LogFormat {
  const value = env[LOG_FORMAT_VARIABLE];
  if (value === undefined || value === '' || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new BbgateError('USAGE', `${LOG_FORMAT_VARIABLE} must be text or json, not "${value}"`);
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

/** The worker's logger: lines in the log file, rotated as the tac says, and/or on stdout, in one format. */
export function createWorkerLog(options: WorkerLogOptions): WorkerLog {
  const file = options.file && new RotatingFile(options.file.path, options.file.rotation);
  const stream = options.stream ?? process.stdout;
  const json = options.format === 'json';
  const logger = jsonLogger((line) => {
    // Formatted after the scrubber has run on the JSON line, so text lines are as clean.
    const out = json ? line : formatLogLine(line);
    file?.write(out);
    if (options.stdout) stream.write(out);
  }, options.secrets);
  return { logger, rotate: () => file?.rotate(), close: () => file?.close() };
}
