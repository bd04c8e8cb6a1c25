import { lstat, mkdir, stat } from 'node:fs/promises';
import { splitPath } from './os-path.js';

/**
 * The few file system calls of Python's os and os.path that buildbot-worker's
 * file commands lean on, where Node's equivalents answer differently (mkdir -p
 * over a dangling symbolic link, errors that mean "no").
 */

/** os.path's predicates answer False for any error (a missing name, a directory that cannot be searched). */
async function falseOnError(check: () => Promise<boolean>): Promise<boolean> {
  try {
    return await check();
  } catch {
    return false;
  }
}

/** os.path.exists: follows symbolic links. */
export function exists(path: string): Promise<boolean> {
  return falseOnError(async () => Boolean(await stat(path)));
}

/** os.path.lexists: the name itself exists, even as a dangling link. */
export function lexists(path: string): Promise<boolean> {
  return falseOnError(async () => Boolean(await lstat(path)));
}

/** os.path.isdir: follows symbolic links. */
export function isDir(path: string): Promise<boolean> {
  return falseOnError(async () => (await stat(path)).isDirectory());
}

/**
 * os.makedirs(name) with exist_ok=False: creates missing parents, then
 * `name`, raising the errno of the last mkdir(2) (EEXIST for a dangling
 * link where fs.mkdir's recursive mode reports ENOENT).
 */
export async function makedirs(name: string): Promise<void> {
  let [head, tail] = splitPath(name);
  if (!tail) [head, tail] = splitPath(head);
  if (head && tail && !(await exists(head))) {
    try {
      await makedirs(head);
    } catch (err) {
      // Someone else created it meanwhile.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (tail === '.') return;
  }
  await mkdir(name, 0o777);
}
