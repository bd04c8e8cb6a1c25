import { open, stat, type FileHandle } from 'node:fs/promises';
import { float, tuple, type PbValue, type RemoteReference } from '../../pb/index.js';
import { osFailure, pyError } from '../python/oserror.js';
import { exists, makedirs } from '../python/os.js';
import { expandUser, pythonDirname, pythonJoin } from '../python/os-path.js';
import { CommandArgs } from './command-args.js';
import { runPipeline } from './transfer-pipeline.js';
import { adaptiveWindow, type TransferWindow, type WindowFactory } from './transfer-window.js';
import { openTarStream, pythonTime, type Compression, type TarStream } from './tar.js';
import type { CommandContext, CommandSpec } from './types.js';

/**
 * uploadFile, uploadDirectory and downloadFile (buildbot-worker 3.7,
 * commands/transfer.py). Data moves in blocks of min(blocksize, what maxsize
 * still allows) through the master's FileWriter (`write`, then `close` or
 * `unpack`, and `utime`) or FileReader (`read`, then `close`), read from and
 * written to disk block by block.
 */

/**
 * Twisted refuses a Banana string over 640 KiB and drops the connection, so
 * a larger blocksize from the master is cut to this (3.7 would send it and
 * lose the connection).
 */
export const MAX_BLOCK = 640 * 1024;

export interface TransferOptions {
  /**
   * The window of each transfer (default: the adaptive one; see
   * transfer-window.ts). `fixedWindow(1)` waits for each answer before the
   * next call, as buildbot-worker does. With more in flight a failure is
   * noticed up to a window later (those blocks are sent or asked for too, and
   * the command fails either way).
   */
  window?: WindowFactory;
  /** The program that compresses for compress='bz2' (Node has no bzip2). */
  bzip2?: string;
}

/** A file or tar stream read in blocks of exactly the size asked for, except at its end. */
interface BlockSource {
  read(length: number): Promise<Buffer>;
  close(): Promise<void>;
}

class FileSource implements BlockSource {
  private constructor(private readonly handle: FileHandle) {}

  /** Opens a regular file (or anything but a directory, as Python's open() would). */
  static async open(path: string): Promise<FileSource> {
    const handle = await open(path, 'r');
    try {
      if ((await handle.stat()).isDirectory()) throw Object.assign(new Error(`EISDIR: ${path}`), { code: 'EISDIR' });
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new FileSource(handle);
  }

  async read(length: number): Promise<Buffer> {
    // A new buffer per block: it is handed to the PB layer, which may still be sending it.
    const block = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(block, filled, length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return block.subarray(0, filled);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

class StreamSource implements BlockSource {
  private readonly pending: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly stream: TarStream) {}

  async read(length: number): Promise<Buffer> {
    while (this.buffered < length && !this.ended) {
      const next = await this.stream.chunks.next();
      if (next.done) this.ended = true;
      else if (next.value.length) {
        this.pending.push(next.value);
        this.buffered += next.value.length;
      }
    }
    const take = Math.min(length, this.buffered);
    const parts: Buffer[] = [];
    let taken = 0;
    while (taken < take) {
      const head = this.pending[0]!;
      const want = take - taken;
      if (head.length <= want) {
        parts.push(this.pending.shift()!);
        taken += head.length;
      } else {
        parts.push(head.subarray(0, want));
        this.pending[0] = head.subarray(want);
        taken += want;
      }
    }
    this.buffered -= take;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, take);
  }

  close(): Promise<void> {
    return this.stream.close();
  }
}

interface SendResult {
  /** maxsize stopped the upload before the end of the data. */
  truncated: boolean;
  /** The first failure: a rejected write, or the source failing to read. */
  error?: unknown;
}

/** 3.7's _writeBlock loop (interrupt first, then the maxsize limit, then a block and its write), with a window of writes in flight. */
async function sendBlocks(ctx: CommandContext, writer: RemoteReference, source: BlockSource, blocksize: number, maxsize: number | undefined, window: TransferWindow): Promise<SendResult> {
  let remaining = maxsize;
  let truncated = false;
  const failure = await runPipeline<PbValue>(window, {
    nextLength() {
      if (ctx.interrupted.aborted) return 0;
      const length = Math.min(blocksize, MAX_BLOCK, remaining ?? Infinity);
      // As in 3.7, a file of exactly maxsize bytes also ends here, and so counts as truncated.
      if (length <= 0) truncated = true;
      return length;
    },
    async call(length) {
      const data = await source.read(length);
      if (data.length === 0) return undefined;
      if (remaining !== undefined) remaining -= data.length;
      return { bytes: data.length, answer: writer.callRemote('write', [data]) };
    },
    take: () => true,
  });
  return failure ? { truncated, error: failure.error } : { truncated };
}

/** 3.7's finished(): rc (1 whenever the command was interrupted), then stderr; sent even after an interrupt. */
function finish(ctx: CommandContext, rc: number, stderr: string | undefined): void {
  ctx.updates.send('rc', ctx.interrupted.aborted ? 1 : rc);
  if (stderr) ctx.updates.stderr(stderr);
}

function truncatedMessage(path: string): string {
  return `Maximum filesize reached, truncating file '${path}'`;
}

/** Calls the master's close/unpack after a failure, keeping the failure that came first. */
async function closeQuietly(ctx: CommandContext, ref: RemoteReference, method: string): Promise<void> {
  try {
    await ref.callRemote(method);
  } catch (err) {
    ctx.logger.warn({ method, err: (err as Error).message }, `ignoring the master's error from ${method}()`);
  }
}

/** What every transfer reads: the master's writer or reader, the block size and maxsize, and a window for those blocks. */
function transferArgs(options: TransferOptions, args: CommandArgs, remote: 'writer' | 'reader') {
  const blocksize = args.number('blocksize');
  return {
    remote: args.reference(remote),
    blocksize,
    maxsize: args.optionalNumber('maxsize'),
    window: (options.window ?? adaptiveWindow)(Math.min(blocksize, MAX_BLOCK)),
  };
}

function transferPath(ctx: CommandContext, args: CommandArgs, name: 'workersrc' | 'workerdest'): string {
  return pythonJoin(ctx.builderDir, args.optionalText('workdir') ?? '', expandUser(args.text(name)));
}

export function uploadFileCommand(options: TransferOptions = {}): CommandSpec {
  return {
    required: ['workdir', 'workersrc', 'writer', 'blocksize', 'maxsize'],
    async run(ctx) {
      const args = new CommandArgs(ctx.args);
      const path = transferPath(ctx, args, 'workersrc');
      const { remote: writer, blocksize, maxsize, window } = transferArgs(options, args, 'writer');
      const keepstamp = args.flag('keepstamp');

      let rc = 0;
      let stderr: string | undefined;
      let times: [number, number] | undefined;
      let source: FileSource | undefined;
      try {
        if (keepstamp) {
          const st = await stat(path, { bigint: true });
          times = [pythonTime(st.atimeNs), pythonTime(st.mtimeNs)];
        }
        source = await FileSource.open(path);
      } catch {
        rc = 1;
        stderr = `Cannot open file '${path}' for upload`;
      }
      ctx.updates.header(`sending ${path}\n`);

      let result: SendResult = { truncated: false };
      if (source) {
        try {
          result = await sendBlocks(ctx, writer, source, blocksize, maxsize, window);
        } finally {
          await source.close();
        }
      }
      if (result.truncated && stderr === undefined) {
        stderr = truncatedMessage(path);
        rc = 1;
      }
      if (result.error !== undefined) {
        await closeQuietly(ctx, writer, 'close');
        finish(ctx, 1, stderr);
        throw osFailure(result.error);
      }
      try {
        await writer.callRemote('close');
        // Without times (the file could not be stat'ed) 3.7 sends utime((None, None)), which fails on the master.
        if (keepstamp && times) await writer.callRemote('utime', [tuple(float(times[0]), float(times[1]))]);
      } catch (err) {
        finish(ctx, 1, stderr);
        throw err;
      }
      finish(ctx, rc, stderr);
    },
  };
}

export function uploadDirectoryCommand(options: TransferOptions = {}): CommandSpec {
  return {
    required: ['workdir', 'workersrc', 'writer', 'blocksize', 'maxsize', 'compress'],
    async run(ctx) {
      const args = new CommandArgs(ctx.args);
      const path = transferPath(ctx, args, 'workersrc');
      const { remote: writer, blocksize, maxsize, window } = transferArgs(options, args, 'writer');
      const compressArg = args.optionalText('compress');
      // As in 3.7, any other value means no compression (the master then opens the archive with 'r', which detects it).
      const compress: Compression = compressArg === 'gz' || compressArg === 'bz2' ? compressArg : null;

      // A missing or unreadable directory fails the command before anything is sent, as it does in 3.7.
      const tar = await openTarStream(path, compress, options.bzip2);
      ctx.updates.header(`sending ${path}\n`);
      const source = new StreamSource(tar);
      let result: SendResult;
      try {
        result = await sendBlocks(ctx, writer, source, blocksize, maxsize, window);
      } finally {
        await source.close();
      }

      let rc = 0;
      let stderr: string | undefined;
      if (result.truncated) {
        stderr = truncatedMessage(path);
        rc = 1;
      }
      if (result.error !== undefined) {
        // 3.7 does not unpack after a failed write; the master's step discards the partial archive.
        finish(ctx, 1, stderr);
        throw osFailure(result.error);
      }
      if (ctx.interrupted.aborted) {
        // 3.7 unpacks what it sent even after an interrupt, which extracts a cut-off archive
        // or fails on the master; leaving it unpacked lets the master discard it.
        finish(ctx, 1, stderr);
        return;
      }
      try {
        await writer.callRemote('unpack');
      } catch (err) {
        finish(ctx, 1, stderr);
        throw err;
      }
      finish(ctx, rc, stderr);
    },
  };
}

export const uploadFile: CommandSpec = uploadFileCommand();
export const uploadDirectory: CommandSpec = uploadDirectoryCommand();

export function downloadFileCommand(options: TransferOptions = {}): CommandSpec {
  return {
    required: ['workdir', 'workerdest', 'reader', 'blocksize', 'maxsize', 'mode'],
    async run(ctx) {
      const args = new CommandArgs(ctx.args);
      const path = transferPath(ctx, args, 'workerdest');
      const { remote: reader, blocksize, maxsize, window } = transferArgs(options, args, 'reader');
      const mode = args.optionalNumber('mode');

      let rc = 0;
      let stderr: string | undefined;
      let error: unknown;
      let handle: FileHandle | undefined;
      try {
        const dir = pythonDirname(path);
        try {
          if (!(await exists(dir))) await makedirs(dir);
        } catch (err) {
          // 3.7 fails the command here (and leaves the reader open; it is closed below).
          throw osFailure(err, dir);
        }
        try {
          handle = await open(path, 'w');
          if (mode !== undefined) await handle.chmod(mode);
        } catch {
          await handle?.close();
          handle = undefined;
          rc = 1;
          stderr = `Cannot open file '${path}' for download`;
        }
        if (handle && (await receiveBlocks(ctx, reader, handle, blocksize, maxsize, window))) {
          stderr ??= truncatedMessage(path);
          rc = 1;
        }
      } catch (err) {
        error = err;
      }
      try {
        await closeQuietly(ctx, reader, 'close');
      } finally {
        await handle?.close();
      }
      finish(ctx, error === undefined ? rc : 1, stderr);
      if (error !== undefined) throw osFailure(error, path);
    },
  };
}

/**
 * 3.7's _readBlock loop (interrupt first, then the maxsize limit, then a
 * read of min(blocksize, what maxsize still allows)), with a window of reads
 * in flight, written to `handle` in order. The first empty answer ends the
 * file; the reads still out then answer empty too (the master's FileReader
 * reads on from the end of its file). Resolves true when maxsize stopped it
 * (as in 3.7, a file of exactly maxsize bytes too); throws the first failure.
 */
async function receiveBlocks(ctx: CommandContext, reader: RemoteReference, handle: FileHandle, blocksize: number, maxsize: number | undefined, window: TransferWindow): Promise<boolean> {
  // What maxsize still allows beyond the bytes received and the reads out.
  let remaining = maxsize;
  let ended = false;
  const failure = await runPipeline<PbValue>(window, {
    nextLength: () => (ctx.interrupted.aborted ? 0 : Math.min(blocksize, MAX_BLOCK, remaining ?? Infinity)),
    async call(length) {
      if (remaining !== undefined) remaining -= length;
      return { bytes: length, answer: reader.callRemote('read', [length]) };
    },
    async take(answers) {
      const blocks: Uint8Array[] = [];
      try {
        for (const { answer: data, bytes: length } of answers) {
          if (data === '' || (data instanceof Uint8Array && data.length === 0)) {
            ended = true;
            break;
          }
          if (!(data instanceof Uint8Array)) throw pyError('TypeError', `the master's reader sent ${typeof data} data, not bytes`);
          if (data.length > length) throw pyError('ValueError', `the master's reader sent ${data.length} bytes for a read of ${length}`);
          // A short answer before the end leaves maxsize room for more.
          if (remaining !== undefined) remaining += length - data.length;
          blocks.push(data);
        }
      } finally {
        // What came before a bad answer is written, as 3.7 writes each block as it comes.
        await writeAll(handle, blocks);
      }
      return !ended;
    },
  });
  if (failure) throw failure.error;
  return !ended && !ctx.interrupted.aborted && remaining !== undefined && remaining <= 0;
}

export const downloadFile: CommandSpec = downloadFileCommand();

/** Writes the blocks, in order, with as few calls as the system allows. */
async function writeAll(handle: FileHandle, blocks: Uint8Array[]): Promise<void> {
  let pending = blocks.filter((b) => b.length > 0);
  while (pending.length) {
    let { bytesWritten } = await handle.writev(pending);
    // A short write: drop what went, and go on from the rest.
    while (pending.length && bytesWritten >= pending[0]!.length) bytesWritten -= pending.shift()!.length;
    if (pending.length && bytesWritten > 0) pending[0] = pending[0]!.subarray(bytesWritten);
  }
}
