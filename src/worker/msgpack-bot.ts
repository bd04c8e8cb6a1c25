import type { MsgpackSession } from '../msgpack/session.js';
import type { WireMessage } from '../msgpack/codec.js';
import { messageText, PbFailure, toNumber, toText, type PbValue } from '../pb/index.js';
import { awaitInterrupted, commandVersions, startRunner, type BotOptions } from './bot.js';
import { workerInfo } from './info.js';
import { checkRequired, type CommandRunner } from './runner.js';
import type { UpdateOptions } from './updates.js';
import { commandArgs } from './msgpack-args.js';
import { isTransfer, msgpackChannel, transferReference } from './msgpack-channel.js';

/** The master's newline_re (3.7 and 4.2.1): the rule ../updates.ts applies. */
const MASTER_NEWLINE_RE = '(\\r\\n|\\r(?=.)|\\033\\[u|\\033\\[[0-9]+;[0-9]+[Hf]|\\033\\[2J|\\x08+)';

/**
 * The worker over msgpack_experimental_v7: serves the master's ops (print,
 * keepalive, get_worker_info, set_worker_settings, start_command,
 * interrupt_command, shutdown) with the same commands as over PB. There are
 * no builder objects: the master resolves every path, builds the builder
 * directories with listdir/stat/rmdir/mkdir commands of its own, and names
 * each command by its command_id. It outlives connections, as Bot does.
 */
export class MsgpackBot {
  private readonly running = new Map<string, CommandRunner>();
  private buffering: UpdateOptions = {};

  constructor(private readonly o: BotOptions) {}

  /** Interrupts every running command; resolves once they have ended or `waitMs` has passed. */
  async interruptAll(why: string, waitMs = 0): Promise<void> {
    await awaitInterrupted([...this.running.values()].map((runner) => this.stop(runner, why)), waitMs);
  }

  /** Serves one request of the master on `session` (see MsgpackHandler). */
  async serve(session: MsgpackSession, op: string, message: WireMessage): Promise<PbValue> {
    switch (op) {
      case 'print':
        this.o.logger.info({}, `message from master: ${messageText(required(message, 'message'))}`);
        return null;
      case 'keepalive':
        return null;
      case 'get_worker_info':
        return (await workerInfo({ ...this.o, commands: commandVersions(this.o.commands) })) as Map<PbValue, PbValue>;
      case 'set_worker_settings':
        this.settings(required(message, 'args'));
        return null;
      case 'start_command':
        this.start(session, message);
        return null;
      case 'interrupt_command': {
        const id = commandKey(required(message, 'command_id'));
        const why = messageText(required(message, 'why'));
        const runner = this.running.get(id);
        if (runner) void this.stop(runner, why);
        else this.o.logger.info({ command_id: id, why }, 'asked to interrupt a command that is not running');
        return null;
      }
      case 'shutdown':
        this.o.logger.info({}, 'the master asked this worker to shut down');
        setTimeout(() => this.o.onShutdown(), 200);
        return null;
      default:
        // buildbot-worker's answer, word for word.
        throw new Error(`Command ${op} does not exist.`);
    }
  }

  /** The master's buffering settings (it sends buildbot-worker's defaults: 64 KiB, 5 s, 4096, the usual newline rule). */
  private settings(args: PbValue): void {
    if (!(args instanceof Map)) throw new Error('message did not contain obligatory settings for worker');
    for (const key of ['buffer_size', 'buffer_timeout', 'newline_re', 'max_line_length']) {
      if (!args.has(key)) throw new Error('message did not contain obligatory settings for worker');
    }
    const size = toNumber(args.get('buffer_size'));
    const timeout = toNumber(args.get('buffer_timeout'));
    const lineLength = toNumber(args.get('max_line_length'));
    this.buffering = {
      ...(size !== undefined && size > 0 ? { bufferSize: size } : {}),
      ...(timeout !== undefined && timeout >= 0 ? { bufferTimeout: timeout * 1000 } : {}),
      ...(lineLength !== undefined && lineLength > 1 ? { maxLineLength: lineLength } : {}),
    };
    const newlines = toText(args.get('newline_re'));
    if (newlines !== MASTER_NEWLINE_RE) this.o.logger.warn({ newline_re: newlines }, "the master's newline_re is not Buildbot's; bbgate splits lines by Buildbot's rule");
  }

  private start(session: MsgpackSession, message: WireMessage): void {
    const id = commandKey(required(message, 'command_id'));
    const name = toText(required(message, 'command_name'));
    const rawArgs = required(message, 'args');
    if (name === undefined || !(rawArgs instanceof Map)) throw new Error('start_command takes a command_name and an args dict');
    const spec = this.o.commands.get(name);
    if (!spec) throw new Error(`unrecognized WorkerCommand '${name}'`);
    const args = commandArgs(name, rawArgs as Map<string, PbValue>);
    if (isTransfer(name)) {
      const { key, ref } = transferReference(session, message.get('command_id')!, name);
      args.set(key, ref);
    }
    try {
      checkRequired(name, spec, args);
    } catch (err) {
      throw new Error((err as PbFailure).value);
    }
    if (this.running.has(id)) throw new Error(`a command with command_id ${id} is already running`);
    this.o.logger.info({ command: name, command_id: id, builder: toText(message.get('builder_name')) }, `starting command ${name}`);
    const runner = startRunner(this.o, {
      name,
      spec,
      args,
      channel: msgpackChannel(session, message.get('command_id')!, () => this.running.delete(id)),
      builderDir: this.o.basedir,
      buffering: this.buffering,
    });
    this.running.set(id, runner);
    void runner.done.catch((err: Error) => this.o.logger.warn({ command: name, err: err.message }, 'a command ended with an internal error'));
  }

  private stop(runner: CommandRunner, why: string): Promise<void> {
    runner.interrupt(why);
    return runner.done.catch(() => undefined);
  }
}

/** msgpack's obligatory keys: buildbot-worker answers a missing one with this KeyError text. */
function required(message: WireMessage, key: string): PbValue {
  if (!message.has(key)) throw new Error(`message did not contain obligatory "${key}" key`);
  return message.get(key)!;
}

function commandKey(id: PbValue): string {
  return toText(id) ?? messageText(id);
}
