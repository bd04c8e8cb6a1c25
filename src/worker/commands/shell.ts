import { CommandError } from '../../errors.js';
import { PbFailure, toText } from '../../pb/index.js';
import { runProcess, type ProcessSpec } from '../process/index.js';
import { pythonJoin } from '../python/os-path.js';
import { CommandArgs } from './command-args.js';
import { processFailure } from './process-failure.js';
import type { CommandContext, CommandSpec } from './types.js';

/** The master sends usePTY "slave-config" to workers older than 3.0 to mean "the worker's default". */
function usePTY(args: CommandArgs, workerDefault: boolean): boolean {
  const value = args.get('usePTY', false);
  return toText(value) === 'slave-config' ? workerDefault : args.flag('usePTY');
}

function shellSpec(args: CommandArgs, builderDir: string, workerPTY: boolean): ProcessSpec {
  return {
    command: args.command(),
    workdir: pythonJoin(builderDir, args.text('workdir')),
    env: args.env(),
    timeout: args.seconds('timeout'),
    maxTime: args.seconds('maxTime'),
    maxLines: args.lineCount('max_lines'),
    sigtermTime: args.seconds('sigtermTime'),
    interruptSignal: args.flag('interruptSignal') ? args.text('interruptSignal') : null,
    sendStdout: args.flag('want_stdout', true),
    sendStderr: args.flag('want_stderr', true),
    initialStdin: args.initialStdin(),
    logfiles: args.logfiles(),
    usePTY: usePTY(args, workerPTY),
    logEnviron: args.flag('logEnviron', true),
  };
}

/** `shell`: runs a command line in the workdir and sends its output, then `rc`. */
export const shell: CommandSpec = {
  required: ['workdir', 'command'],
  async run(ctx: CommandContext): Promise<void> {
    try {
      await runProcess(ctx, shellSpec(new CommandArgs(ctx.args), ctx.builderDir, ctx.usePTY ?? false));
    } catch (err) {
      // The master marks the step EXCEPTION on any failure; the Python type only shows in its log.
      throw err instanceof CommandError ? processFailure(err) : PbFailure.fromError(err);
    }
  },
};
