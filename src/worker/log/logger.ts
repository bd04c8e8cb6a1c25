import { pino, type Logger } from 'pino';
import { formatLogLine } from './pretty.js';
import { RotatingFile, type Rotation } from './rotating-file.js';

export type { Logger };

export interface WorkerLogOptions {
  /** Usually BASEDIR/twistd.log: the name tooling written for buildbot-worker looks for. */
  file: string;
  rotation: Rotation;
  /** Also write each line to stdout (a foreground worker): 'pretty' for a terminal, 'json' for a pipe. */
  stdout?: 'pretty' | 'json';
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
const CENSOR = '[redacted]';

/**
 * Secrets shorter than this are not scrubbed from the text of lines: a
 * three-letter password would blank out every word containing it. Fields by
 * name are redacted whatever their length.
 */
const MIN_SCRUBBED = 4;

/**
 * The worker's logger: JSON lines in the log file, rotated as the tac says.
 * Secrets are kept out twice: fields named like credentials are redacted by
 * pino, and the literal secret strings are scrubbed from every line (also
 * from messages that quote a URL or an error text).
 */
export function createWorkerLog(options: WorkerLogOptions): WorkerLog {
  const file = new RotatingFile(options.file, options.rotation);
  const secrets = [...new Set(options.secrets ?? [])]
    .filter((s) => s.length >= MIN_SCRUBBED)
    .map((s) => JSON.stringify(s).slice(1, -1))
    .sort((a, b) => b.length - a.length);
  const scrub = (line: string) => secrets.reduce((text, secret) => text.split(secret).join(CENSOR), line);
  const destination = {
    write(line: string) {
      const safe = scrub(line);
      file.write(safe);
      if (options.stdout === 'pretty') process.stdout.write(formatLogLine(safe));
      else if (options.stdout === 'json') process.stdout.write(safe);
    },
  };
  const logger = pino(
    {
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    destination,
  );
  return { logger, rotate: () => file.rotate(), close: () => file.close() };
}
