import { CommandError } from '../../errors.js';
import { PY, PbFailure } from '../../pb/values/failure.js';
import type { PbValue } from '../../pb/values/values.js';
import { pythonJoin } from '../paths.js';
import { runProcess, type ProcessSpec } from '../process/run-process.js';
import {
  argOr,
  commandArg,
  envArg,
  logfilesArg,
  pyTruthy,
  secondsArg,
  stdinArg,
  textArg,
} from '../process/wire-args.js';
import type { CommandContext, CommandSpec } from './types.js';

function shellSpec(args: ReadonlyMap<string, PbValue>, builderDir: string): ProcessSpec {
  const interruptSignal = argOr(args, 'interruptSignal', null);
  return {
    command: commandArg(args.get('command')!),
    workdir: pythonJoin(builderDir, textArg('workdir', args.get('workdir')!)),
    env: envArg(argOr(args, 'env', null)),
    timeout: secondsArg('timeout', argOr(args, 'timeout', null)),
    maxTime: secondsArg('maxTime', argOr(args, 'maxTime', null)),
    sigtermTime: secondsArg('sigtermTime', argOr(args, 'sigtermTime', null)),
    interruptSignal: pyTruthy(interruptSignal) ? textArg('interruptSignal', interruptSignal) : null,
    sendStdout: pyTruthy(argOr(args, 'want_stdout', true)),
    sendStderr: pyTruthy(argOr(args, 'want_stderr', true)),
    initialStdin: stdinArg(argOr(args, 'initial_stdin', null)),
    logfiles: logfilesArg(argOr(args, 'logfiles', null)),
    usePTY: pyTruthy(argOr(args, 'usePTY', false)),
    logEnviron: pyTruthy(argOr(args, 'logEnviron', true)),
  };
}

/** The master marks the step EXCEPTION on any failure; the Python type only shows in its log. */
function asFailure(err: unknown): PbFailure {
  if (err instanceof CommandError) {
    return new PbFailure(err.code === 'COMMAND_ARGS' ? PY.ValueError : PY.RuntimeError, err.message, {}, err.code);
  }
  return PbFailure.fromError(err);
}

/** `shell`: runs a command line in the workdir and sends its output, then `rc`. */
export const shell: CommandSpec = {
  required: ['workdir', 'command'],
  async run(ctx: CommandContext): Promise<void> {
    try {
      await runProcess(ctx, shellSpec(ctx.args, ctx.builderDir));
    } catch (err) {
      throw asFailure(err);
    }
  },
};
