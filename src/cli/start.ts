// `bbgate start`: buildbot-worker's start. Checks the directory and the tac,
// spawns the worker detached (./daemon-main.ts), then follows twistd.log for up
// to 10 s until the master has attached the worker.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { BbgateError } from '../errors.js';
import { formatLogLine } from '../worker/log/pretty.js';
import { shellQuote } from '../worker/python/shlex.js';
import { readTac } from '../worker/tac/read.js';
import { basedirArgument, checkWorkerDir, parseCommand, report, strerror } from './common.js';
import { logPath, runWorkerProcess, type DaemonMessage } from './daemon.js';
import { clearStalePidFile, PID_FILE } from './pidfile.js';

export const START_USAGE = `Usage: bbgate start [--quiet] [--nodaemon] [BASEDIR]

Starts the worker in BASEDIR (default: the current directory) in the
background, writing its pid to BASEDIR/twistd.pid, then follows twistd.log for
up to 10 seconds until the master has attached it.

Options:
  -q, --quiet     start, and print nothing but errors
      --nodaemon  run in the foreground, logging to twistd.log and (unless
                  --quiet) to stdout, the same lines; no pid file. A tac that
                  logs to sys.stdout (as container images' do) logs only to stdout
  -h, --help      this text

The log is text lines in buildbot-worker's shape; BBGATE_LOG_FORMAT=json in
the environment makes it JSON lines (one object each) for log shippers.
`;

/** start's options, which restart shares. */
export const START_OPTIONS = {
  quiet: { type: 'boolean', short: 'q' },
  nodaemon: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The line buildbot-worker's start waits for; bbgate's worker logs it when the master's print("attached") arrives. */
export const ATTACHED = 'message from master: attached';
const STARTUP_WAIT_MS = 10_000;
const POLL_MS = 100;
const DAEMON_MAIN = fileURLToPath(new URL('./daemon-main.js', import.meta.url));

/** What start says when it gives up waiting: nothing is confirmed, so nothing is claimed; the probe is one command away. */
function notAttachedHelp(basedir: string, pid: number | undefined): string {
  return `The master has not attached the worker within ${STARTUP_WAIT_MS / 1000} seconds, so bbgate cannot confirm
that it connected. The worker process${pid === undefined ? '' : ` (PID ${pid})`} keeps running and retrying in the background;
its log is ${basedir}/twistd.log (look for '${ATTACHED}', or for why it retries).
To find the layer that fails (DNS, TCP, proxy, TLS, PB, the name or the password), run:
  bbgate probe --basedir ${shellQuote(basedir)}
`;
}

export async function runStart(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommand('start', argv, START_OPTIONS);
    if (values.help) {
      process.stdout.write(START_USAGE);
      return 0;
    }
    return await startWorker(basedirArgument(positionals), { quiet: Boolean(values.quiet), nodaemon: Boolean(values.nodaemon) });
  } catch (err) {
    return report(err, 'start');
  }
}

/** Also restart's second half. Throws BbgateErrors for the caller to report. */
export async function startWorker(basedir: string, o: { quiet: boolean; nodaemon: boolean }): Promise<number> {
  checkWorkerDir(basedir);
  // Read here, where a mistake can be shown, rather than only in a daemon whose output goes to the log.
  const config = readTac(`${basedir}/buildbot.tac`);
  if (o.nodaemon) return runWorkerProcess({ startDir: basedir, daemon: false, echo: !o.quiet });

  const stale = clearStalePidFile(basedir);
  const say = (text: string) => {
    if (!o.quiet) process.stdout.write(text);
  };
  if (stale !== undefined) say(`Removing stale ${PID_FILE} (process ${stale} is gone)\n`);

  const log = logPath(config);
  let logFd: number;
  try {
    logFd = openSync(log, 'a');
  } catch (err) {
    throw new BbgateError('WORKER_START', `cannot open ${log}: ${strerror(err)}`, { cause: err });
  }
  const offset = statSync(log).size;
  const deadline = Date.now() + STARTUP_WAIT_MS;
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [DAEMON_MAIN, basedir], { cwd: basedir, detached: true, stdio: ['ignore', logFd, logFd, 'ipc'] });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `status ${code}`)));
  let timer: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    new Promise<DaemonMessage>((resolve) => child.once('message', (m) => resolve(m as DaemonMessage))),
    exited.then((how) => ({ ready: false as const, code: 'WORKER_START', message: `the worker process exited (${how}) before it started; see ${log}` })),
    new Promise<DaemonMessage>((resolve) => {
      timer = setTimeout(
        () => resolve({ ready: false, code: 'WORKER_START', message: `the worker process (PID ${child.pid}) did not say within ${STARTUP_WAIT_MS / 1000} s whether it started; see ${log}` }),
        STARTUP_WAIT_MS,
      );
    }),
  ]);
  clearTimeout(timer);
  child.unref();
  if (child.connected) child.disconnect();
  if (!first.ready) throw new BbgateError(first.code as BbgateError['code'], first.message);
  if (o.quiet) return 0;

  say('Following twistd.log until startup finished..\n');
  const outcome = await follow(log, offset, deadline, exited, (line) => say(formatLogLine(line)));
  if (outcome === 'attached') {
    say('The buildbot-worker appears to have (re)started correctly.\n');
    return 0;
  }
  if (outcome === 'timeout') say(notAttachedHelp(basedir, child.pid));
  else say(`The worker process exited (${outcome.exited}) before the master attached it; see ${log}.\n`);
  return 1;
}

/**
 * Reads lines appended to the log after `offset` until one says the master
 * attached the worker, the worker exits, or the deadline passes. Reading by
 * name each time follows the log through a rotation.
 */
async function follow(
  path: string,
  offset: number,
  deadline: number,
  exited: Promise<string>,
  onLine: (line: string) => void,
): Promise<'attached' | 'timeout' | { exited: string }> {
  let gone: string | undefined;
  void exited.then((how) => (gone = how));
  let position = offset;
  let partial = '';
  let decoder = new StringDecoder('utf8');
  for (;;) {
    const chunk = readFrom(path, position);
    if (chunk.restarted) {
      partial = '';
      decoder = new StringDecoder('utf8');
    }
    position = chunk.end;
    const text = decoder.write(chunk.bytes);
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      onLine(line);
      if (line.includes(ATTACHED)) return 'attached';
    }
    // Checked after a last read, so that lines written just before the exit are shown.
    if (gone !== undefined) return { exited: gone };
    if (Date.now() >= deadline) return 'timeout';
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The bytes from `position` to the end, or from the start if the file is now shorter (it was rotated). */
function readFrom(path: string, position: number): { bytes: Buffer; end: number; restarted: boolean } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { bytes: Buffer.alloc(0), end: position, restarted: false };
  }
  try {
    const size = fstatSync(fd).size;
    const restarted = size < position;
    const from = restarted ? 0 : position;
    const bytes = Buffer.alloc(size - from);
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    return { bytes: bytes.subarray(0, read), end: from + read, restarted };
  } finally {
    closeSync(fd);
  }
}
