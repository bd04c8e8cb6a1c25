import { lstat, mkdir, stat } from 'node:fs/promises';
import { splitPath } from './os-path.js';

/**
 * The few file system calls of Python's os and os.path that buildbot-worker's
 * file commands lean on, where Node's equivalents answer differently (mkdir -p
 * over a dangling symbolic link, errors that mean "no").
 */

/** os.path.exists: follows symbolic links; any error means no. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** os.path.lexists: the name itself exists, even as a dangling link. */
export async function lexists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
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
