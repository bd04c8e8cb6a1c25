import { createRequire } from 'node:module';
import { CommandError } from '../../errors.js';

/**
 * The native half of @lydell/node-pty (node-pty with its binaries in per-platform npm packages,
 * so nothing is compiled or downloaded at install). bbgate calls its `fork` (forkpty(3): a new
 * session whose controlling terminal is the PTY on fds 0, 1 and 2, then execvp) and reads the
 * terminal itself rather than through node-pty's JavaScript wrapper, which sets TERM when the
 * environment has none (Twisted leaves the environment alone) and, 200 ms after the child exits,
 * closes the terminal with whatever output is still unread: output held back while the master is
 * behind would be lost.
 */
export interface PtyBinding {
  fork(
    file: string,
    args: readonly string[],
    env: readonly string[],
    cwd: string,
    cols: number,
    rows: number,
    uid: number,
    gid: number,
    utf8: boolean,
    helperPath: string,
    onExit: (code: number, signal: number) => void,
  ): { fd: number; pid: number; pty: string };
}

export const PTY_PACKAGE = '@lydell/node-pty';

const loaded = new Map<string, PtyBinding | CommandError>();

/**
 * Loads the binding on first use only: a worker that never runs a PTY step does not need the
 * package (or its platform's binary). Throws PTY_UNAVAILABLE saying what is missing.
 */
export function loadPtyBinding(pkg = PTY_PACKAGE): PtyBinding {
  let result = loaded.get(pkg);
  if (!result) {
    try {
      const require = createRequire(import.meta.url);
      const { requireBinary } = require(`${pkg}/requireBinary.js`) as { requireBinary(file: string): PtyBinding };
      const binding = requireBinary('pty.node');
      if (typeof binding.fork !== 'function') throw new Error(`its pty.node has no fork()`);
      result = binding;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'MODULE_NOT_FOUND' && !(err as Error).message.includes('binary')
        ? `the "${pkg}" package is not installed (npm install ${pkg})`
        : `the "${pkg}" package cannot be used here: ${(err as Error).message.split('\n')[0]}`;
      result = new CommandError('PTY_UNAVAILABLE', `cannot run the command with a PTY: ${why}`, { cause: err });
    }
    loaded.set(pkg, result);
  }
  if (result instanceof CommandError) throw result;
  return result;
}
