/**
 * The PTY host: a process of its own that the worker starts for each PTY step (./pty.ts), which
 * forks the command on a new PTY (node-pty's forkpty) and copies the terminal's output to its
 * stdout. Why a process: node-pty 1.1.0 leaves the terminal's master side without close-on-exec
 * (its fix, in the 1.2.0 betas, only closes fds in its own children), and Node has no fcntl to
 * set it. Held by the worker, the master of every running PTY step would be inherited by every
 * other command the worker starts (pipes or PTY), which could then read and write that terminal
 * and keep it open after its step ended. Here it lives only in this host, and forkpty closes it
 * in the command. The host also closes, before forking, every fd it inherited without
 * close-on-exec (from whoever started the worker), so that the command holds only its terminal
 * on fds 0, 1 and 2, as under buildbot-worker, whose Twisted closes all others.
 *
 * See ./pty-protocol.ts for what goes in and out. The host ends when the command has exited and
 * its output is out, or when its stdin ends (the worker is gone): the terminal then closes with it,
 * and the kernel hangs it up for whatever still runs on it.
 */
import { closeSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { loadPtyBinding, type PtyBinding } from './pty-binding.js';
import type { PtyHostMessage, PtyRequest } from './pty-protocol.js';
import { TerminalReader } from './pty-terminal.js';

// Linux's (asm-generic) O_CLOEXEC, as /proc/PID/fdinfo shows it; Node's fs.constants has none.
const O_CLOEXEC = 0o2000000;

function send(message: PtyHostMessage): void {
  try {
    writeSync(2, `${JSON.stringify(message)}\n`);
  } catch {
    // The worker is gone: nobody to tell.
  }
}

/** Closes the fds above 2 that would survive an exec: inherited ones; Node opens all of its own close-on-exec. */
function closeInheritedFds(): void {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return; // no /proc: nothing to go by
  }
  for (const entry of entries) {
    const fd = Number(entry);
    if (!(fd > 2)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (flags && (parseInt(flags[1]!, 8) & O_CLOEXEC) === 0) closeSync(fd);
    } catch {
      // closed meanwhile (the directory's own fd)
    }
  }
}

/** The first line of stdin; the rest of stdin is only watched for its end. */
function readRequest(): Promise<PtyRequest> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      process.stdin.off('data', onData);
      process.stdin.resume(); // on to its end
      resolve(JSON.parse(text.slice(0, newline)) as PtyRequest);
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin ended before the request')));
  });
}

function start(binding: PtyBinding, request: PtyRequest): void {
  // stdout is the worker's end of a socket pair: its end of file says the worker stopped reading
  // (it abandoned the command), and the terminal is then let go at once, hung up for whatever holds it.
  const out = new Socket({ fd: 1, readable: true, writable: true });
  out.on('error', () => undefined); // EPIPE: the same; 'close' follows
  out.once('end', () => out.destroy());
  out.resume();
  const exitOnceOut = () => {
    if (out.destroyed || out.writableFinished) process.exit(0);
    out.once('finish', () => process.exit(0));
    out.once('close', () => process.exit(0));
  };
  let terminal: TerminalReader | undefined;
  let forked: { fd: number; pid: number; pty: string };
  try {
    // uid and gid -1: the worker's own; utf8 sets IUTF8, as output is decoded as UTF-8; the helper path is macOS's only.
    forked = binding.fork(request.file, request.args, request.env, request.cwd, request.cols, request.rows, -1, -1, true, '', (code, signal) => {
      // Through the event loop, so never before `terminal` is set.
      send({ exit: [code, signal] });
      terminal!.finish();
      exitOnceOut();
    });
  } catch (err) {
    send({ forkFailed: (err as Error).message });
    process.exit(0);
  }
  send({ started: forked.pid });
  terminal = new TerminalReader(forked.fd, forked.pty, out, (err) => send({ error: err.message }));
}

async function main(): Promise<void> {
  process.stdin.once('end', () => process.exit(0));
  // All that can be done before the request is done first: a spare host (./pty.ts) waits ready.
  closeInheritedFds();
  let binding: PtyBinding | Error;
  try {
    binding = loadPtyBinding();
  } catch (err) {
    binding = err as Error;
  }
  const request = await readRequest();
  if (binding instanceof Error) {
    send({ unavailable: binding.message });
    process.exit(0);
  }
  start(binding, request);
}

main().catch((err: Error) => {
  send({ error: `the PTY host failed: ${err.message}` });
  process.exit(1);
});
