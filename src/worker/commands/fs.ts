import type { BigIntStats } from 'node:fs';
import { readdir, stat as fsStat, unlink } from 'node:fs/promises';
import { CommandError } from '../../errors.js';
import { Tuple } from '../../pb/index.js';
import { runProcess, type ProcessSpec } from '../process/index.js';
import { pythonGlob } from '../python/glob.js';
import { osError, osFailure } from '../python/oserror.js';
import { exists, isDir, makedirs } from '../python/os.js';
import { pythonDirname, pythonJoin } from '../python/os-path.js';
import { CommandArgs } from './command-args.js';
import { processFailure } from './process-failure.js';
import type { CommandContext, CommandSpec } from './types.js';

/**
 * The file system commands of buildbot-worker 3.7 (commands/fs.py), with the
 * master's arguments resolved against the builder directory as
 * ProtocolCommandPb.protocol_args_setup does. A failed system call is
 * reported as Python reports an OSError: the header `<command>: <strerror>:
 * <path>` (without a newline) and `rc` set to the errno. rmdir and cpdir run
 * `rm -rf` and `cp -R -P -p -v` through the process runner, as 3.7 does.
 */

/** Sends the OSError header and rc; anything that is not a system error fails the command. */
function reportOsError(ctx: CommandContext, command: string, path: string, err: unknown): void {
  const os = osError(err);
  if (!os) throw osFailure(err);
  ctx.logger.warn({ command, path, errno: os.errno, error: os.strerror }, `${command} failed`);
  ctx.updates.header(`${command}: ${os.strerror}: ${path}`);
  ctx.updates.send('rc', os.errno);
}

export const mkdir: CommandSpec = {
  required: ['dir'],
  async run(ctx) {
    // PB sends one directory; msgpack's master sends a list (its attach makes every builder directory at once).
    const args = new CommandArgs(ctx.args);
    const dirs = Array.isArray(args.get('dir')) ? args.textList('dir') : [args.text('dir')];
    for (const dir of dirs) {
      const path = pythonJoin(ctx.builderDir, dir);
      try {
        if (!(await isDir(path))) await makedirs(path);
      } catch (err) {
        reportOsError(ctx, 'mkdir', path, err);
        return;
      }
    }
    ctx.updates.send('rc', 0);
  },
};

export const stat: CommandSpec = {
  // 3.7 declares its required arguments under a misspelt name and so checks none; `file` is what it uses.
  required: ['file'],
  async run(ctx) {
    const args = new CommandArgs(ctx.args);
    const path = pythonJoin(ctx.builderDir, args.optionalText('workdir') ?? '', args.text('file'));
    let st;
    try {
      st = await fsStat(path, { bigint: true });
    } catch (err) {
      reportOsError(ctx, 'stat', path, err);
      return;
    }
    ctx.updates.send('stat', statTuple(st));
    ctx.updates.send('rc', 0);
  },
};

/** tuple(os.stat(path)): ten ints, the three times in whole seconds. */
function statTuple(st: BigIntStats): Tuple<number | bigint> {
  const seconds = (ns: bigint) => (ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n));
  const fields = [st.mode, st.ino, st.dev, st.nlink, st.uid, st.gid, st.size, seconds(st.atimeNs), seconds(st.mtimeNs), seconds(st.ctimeNs)];
  return Tuple.from(fields.map((n) => (n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n)));
}

export const glob: CommandSpec = {
  required: ['path'],
  async run(ctx) {
    const path = pythonJoin(ctx.builderDir, new CommandArgs(ctx.args).text('path'));
    // Python's glob swallows every OSError, so 3.7's error branch never runs; neither does one here.
    ctx.updates.send('files', await pythonGlob(path));
    ctx.updates.send('rc', 0);
  },
};

export const listdir: CommandSpec = {
  required: ['dir'],
  async run(ctx) {
    const path = pythonJoin(ctx.builderDir, new CommandArgs(ctx.args).text('dir'));
    let files: string[];
    try {
      files = await readdir(path);
    } catch (err) {
      reportOsError(ctx, 'listdir', path, err);
      return;
    }
    ctx.updates.send('files', files);
    ctx.updates.send('rc', 0);
  },
};

export const rmfile: CommandSpec = {
  required: ['path'],
  async run(ctx) {
    const path = pythonJoin(ctx.builderDir, new CommandArgs(ctx.args).text('path'));
    try {
      await unlink(path);
    } catch (err) {
      reportOsError(ctx, 'rmfile', path, err);
      return;
    }
    ctx.updates.send('rc', 0);
  },
};

/** How rmdir and cpdir run their tools, as 3.7's RunProcess calls do: in the worker's basedir, without an rc of their own. */
function toolSpec(ctx: CommandContext, argv: string[]): ProcessSpec {
  const args = new CommandArgs(ctx.args);
  return {
    command: argv,
    workdir: ctx.basedir,
    timeout: args.seconds('timeout', 120),
    maxTime: args.seconds('maxTime'),
    logEnviron: args.flag('logEnviron', true),
    sendRC: false,
  };
}

/**
 * Runs one tool. 3.7 cannot interrupt rmdir or cpdir (its process runs on);
 * here an interrupt kills the tool like a shell command, and nothing further
 * is started.
 */
async function runTool(ctx: CommandContext, argv: string[]): Promise<number> {
  try {
    return await runProcess(ctx, toolSpec(ctx, argv));
  } catch (err) {
    throw err instanceof CommandError ? processFailure(err) : osFailure(err);
  }
}

export const rmdir: CommandSpec = {
  required: ['dir'],
  async run(ctx) {
    const paths = new CommandArgs(ctx.args).textList('dir').map((dir) => pythonJoin(ctx.builderDir, dir));
    let rc = 0;
    for (const path of paths) {
      if (ctx.interrupted.aborted) break;
      let result = await runTool(ctx, ['rm', '-rf', path]);
      if (result !== 0 && !ctx.interrupted.aborted) {
        // A tree with read-only directories in it can be removed once they are writable (3.7's _tryChmod).
        const chmod = process.platform === 'freebsd' ? ['find', path, '-exec', 'chmod', 'u+rwx', '{}', ';'] : ['chmod', '-Rf', 'u+rwx', path];
        await runTool(ctx, chmod);
        result = await runTool(ctx, ['rm', '-rf', path]);
      }
      // A failed path fails the command, but the others are still removed.
      if (result !== 0) rc = result;
    }
    ctx.updates.send('rc', rc);
  },
};

export const cpdir: CommandSpec = {
  required: ['fromdir', 'todir'],
  async run(ctx) {
    const args = new CommandArgs(ctx.args);
    const from = pythonJoin(ctx.builderDir, args.text('fromdir'));
    const to = pythonJoin(ctx.builderDir, args.text('todir'));
    const parent = pythonDirname(to);
    if (!(await exists(parent))) {
      try {
        await makedirs(parent);
      } catch (err) {
        throw osFailure(err, parent);
      }
    }
    if (await exists(to)) ctx.logger.warn({ to }, `cp target '${to}' already exists -- cp will not do what you think!`);
    ctx.updates.send('rc', await runTool(ctx, ['cp', '-R', '-P', '-p', '-v', from, to]));
  },
};
