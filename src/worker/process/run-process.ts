import { mkdir } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { CommandError } from '../../errors.js';
import { pythonJoin } from '../python/os-path.js';
import { reprText } from '../python/repr.js';
import { resolveCommand } from './command-line.js';
import { buildEnvironment } from './environment.js';
import { PTY_DISABLED_WARNING, startHeaders, type LogfileSpec } from './headers.js';
import { LogfileWatcher } from './logfile-watcher.js';
import type { ProcessContext, ProcessSpec } from './spec.js';
import { ProcessSupervisor } from './supervisor.js';

export type { ProcessContext, ProcessSpec } from './spec.js';

function signalNamed(name: string): NodeJS.Signals {
  const full = `SIG${name}`;
  if (!(full in osConstants.signals)) throw new CommandError('COMMAND_ARGS', `unknown interruptSignal ${reprText(name)}`);
  return full as NodeJS.Signals;
}

async function ensureWorkdir(workdir: string): Promise<void> {
  try {
    await mkdir(workdir, { recursive: true });
  } catch (err) {
    throw new CommandError('PROCESS_START', `cannot create the workdir ${workdir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Runs a command as buildbot-worker's RunProcess does: the standard headers,
 * the process as the leader of its own group, stdout, stderr and logfiles
 * streamed as UTF-8 text, the timeouts, and the kill on interrupt; then the
 * `rc` update (unless sendRC is false) and the `elapsedTime` header.
 *
 * Resolves with the rc: the exit code, 1 if the program could not be executed,
 * -1 if it died from a signal or was killed and still exited 0. Rejects with a
 * CommandError if the arguments are unusable (COMMAND_ARGS), the workdir cannot
 * be created or the worker cannot fork (PROCESS_START), or a killed process has
 * not ended 5 s after the last signal (PROCESS_KILL_FAILED, after a fake rc -1).
 */
export async function runProcess(ctx: ProcessContext, spec: ProcessSpec): Promise<number> {
  const command = resolveCommand(spec.command);
  const interruptSignal = signalNamed(spec.interruptSignal || 'KILL');
  await ensureWorkdir(spec.workdir);
  const env = buildEnvironment(ctx.environ, spec.env, spec.workdir);
  const stdin = typeof spec.initialStdin === 'string' ? Buffer.from(spec.initialStdin, 'utf8') : Buffer.from(spec.initialStdin ?? []);
  // As buildbot-worker: any initialStdin, even empty, turns the PTY off (see PTY_DISABLED_WARNING).
  const hasStdin = spec.initialStdin !== null && spec.initialStdin !== undefined;
  const usePTY = spec.usePTY === true && !hasStdin;
  const supervisor = new ProcessSupervisor(ctx, spec, { command, interruptSignal, env, stdin, usePTY });
  const logfiles = spec.logfiles ?? new Map<string, LogfileSpec>();
  const watchers = await Promise.all(
    Array.from(logfiles, ([name, file]) =>
      LogfileWatcher.create({
        path: pythonJoin(spec.workdir, typeof file === 'string' ? file : file.filename),
        follow: typeof file !== 'string' && file.follow === true,
        onText: (text) => supervisor.logfileText(name, text),
        ...(ctx.codec ? { codec: ctx.codec } : {}),
        onError: (err) => ctx.logger.warn({ logfile: name, err }, 'cannot watch the logfile any longer'),
      }),
    ),
  );
  if (spec.usePTY && hasStdin) ctx.updates.header(PTY_DISABLED_WARNING);
  const headers = startHeaders({
    display: command.display,
    fakeRepr: command.fakeRepr,
    workdir: spec.workdir,
    timeout: spec.timeout ?? null,
    maxTime: spec.maxTime ?? null,
    logfiles,
    environment: spec.logEnviron === false ? null : env,
    stdinBytes: stdin.length,
    usePTY,
  });
  for (const header of headers) ctx.updates.header(header);
  return supervisor.run(watchers);
}
