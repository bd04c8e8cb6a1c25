import { BbgateError } from '../errors.js';
import type { MsgpackSession } from '../msgpack/session.js';
import { RemoteReference, toNumber, type KwArgs, type PbFailure, type PbValue, type ReferenceOwner } from '../pb/index.js';
import type { CommandChannel } from './runner.js';
import type { Update } from './updates.js';

/**
 * A command's channel over msgpack: `update` with `[key, value]` pairs (text
 * as `[text, newline indexes, line times]`, as buildbot-worker's
 * LineBoundaryFinder gives it; the master reads only the text), and
 * `complete` with None or the failure as text, which is all msgpack can carry.
 */
export function msgpackChannel(session: MsgpackSession, commandId: PbValue, onRelease: () => void): CommandChannel {
  return {
    update: (items) => session.request('update', { command_id: commandId, args: items.map(wireUpdate) }),
    complete: (failure) => session.request('complete', { command_id: commandId, args: failure ? failureText(failure) : null }),
    onDisconnect: (listener) => session.onDisconnect(listener),
    release: onRelease,
  };
}

/** Output text arrives as a PyText (its pieces, for PB's in-place encoding): msgpack sends it as one str. */
function wireUpdate([key, value]: Update): [string, unknown] {
  if (key === 'stdout' || key === 'stderr' || key === 'header') return [key, lineInfo(String(value))];
  if (key === 'log') {
    const [logname, text] = value as [string, unknown];
    return [key, [logname, lineInfo(String(text))]];
  }
  return [key, value];
}

/** Whole lines (the update buffer sends nothing else) with the index of each "\n" and the time each was sent. */
function lineInfo(text: string): [string, number[], number[]] {
  const indexes: number[] = [];
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) indexes.push(at);
  const now = Date.now() / 1000;
  return [text, indexes, indexes.map(() => now)];
}

/** str() of the Twisted Failure buildbot-worker would send: the master raises it as a RemoteException with this text. */
export function failureText(failure: PbFailure): string {
  const type = failure.type.replace(/^builtins\./, '');
  return `[Failure instance: Traceback (failure with no frames): <class '${type}'>: ${failure.value}\n]`;
}

type TransferCommand = 'upload_file' | 'upload_directory' | 'download_file';

/** The command layer's writer/reader calls, and the ops buildbot-worker sends for them, per command. */
const OPS: Record<TransferCommand, Readonly<Record<string, string>>> = {
  upload_file: { write: 'update_upload_file_write', close: 'update_upload_file_close', utime: 'update_upload_file_utime' },
  upload_directory: { write: 'update_upload_directory_write', unpack: 'update_upload_directory_unpack' },
  download_file: { read: 'update_read_file', close: 'update_read_file_close' },
};

export function isTransfer(command: string): command is TransferCommand {
  return Object.hasOwn(OPS, command);
}

/**
 * The master's FileWriter, DirectoryWriter or FileReader for one command, as
 * the command layer calls it (a RemoteReference: write, close, utime, unpack,
 * read), turned into the msgpack ops keyed by the command's command_id.
 */
class TransferOwner implements ReferenceOwner {
  constructor(
    private readonly session: MsgpackSession,
    private readonly commandId: PbValue,
    private readonly command: TransferCommand,
  ) {}

  get connected(): boolean {
    return this.session.connected;
  }

  async callRemote(_target: number | 'root', method: string, args: readonly unknown[], _kwargs: KwArgs): Promise<PbValue> {
    const op = OPS[this.command][method];
    if (op === undefined) throw new BbgateError('MSGPACK_PROTOCOL', `${this.command} has no ${method}() over msgpack`);
    const fields: Record<string, unknown> = { command_id: this.commandId };
    if (method === 'write') fields.args = args[0];
    if (method === 'read') fields.length = args[0];
    if (method === 'utime') {
      const [access, modified] = args[0] as unknown[];
      fields.access_time = toNumber(access);
      fields.modified_time = toNumber(modified);
    }
    const result = await this.session.request(op, fields);
    // The 3.7.0 and 4.2.1 masters answer update_read_file with None (their handler drops the
    // data): buildbot-worker takes that as the end of the file, and so does this.
    return method === 'read' && result === null ? Buffer.alloc(0) : result;
  }

  releaseRemote(): void {}

  onDisconnect(listener: (reason: Error) => void): () => void {
    return this.session.onDisconnect(listener);
  }
}

/** The reference a transfer command finds under `writer` or `reader`. */
export function transferReference(session: MsgpackSession, commandId: PbValue, command: TransferCommand): { key: 'writer' | 'reader'; ref: RemoteReference } {
  return { key: command === 'download_file' ? 'reader' : 'writer', ref: new RemoteReference(new TransferOwner(session, commandId, command), 'root') };
}
