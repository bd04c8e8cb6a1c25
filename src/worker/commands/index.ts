import { cpdir, glob, listdir, mkdir, rmdir, rmfile, stat } from './fs.js';
import { shell } from './shell.js';
import { downloadFile, uploadDirectory, uploadFile } from './transfer.js';
import type { CommandSpec } from './types.js';

/**
 * Every command the worker offers, under the names the 3.7 master uses; the
 * snake_case aliases are the msgpack protocol's names, which buildbot-worker
 * also registers, so getCommands reports the same 14 names.
 */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ['shell', shell],
  ['uploadFile', uploadFile],
  ['upload_file', uploadFile],
  ['uploadDirectory', uploadDirectory],
  ['upload_directory', uploadDirectory],
  ['downloadFile', downloadFile],
  ['download_file', downloadFile],
  ['mkdir', mkdir],
  ['rmdir', rmdir],
  ['cpdir', cpdir],
  ['stat', stat],
  ['glob', glob],
  ['listdir', listdir],
  ['rmfile', rmfile],
]);
