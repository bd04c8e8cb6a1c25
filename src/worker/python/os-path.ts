import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

// Python's os.path for POSIX: the master's paths and the tac's were written for it, and Node's path module answers differently.

/**
 * Python's os.path.join, which the master's paths rely on: an absolute part
 * replaces everything before it, and `..` is kept as it is.
 */
export function pythonJoin(...parts: string[]): string {
  let out = '';
  for (const part of parts) {
    if (isAbsolute(part) || out === '') out = part;
    else out = out.endsWith('/') ? out + part : `${out}/${part}`;
  }
  return out;
}

/** Python's os.path.expanduser for `~` and `~/…` (buildbot-worker expands only transfer sources and destinations). */
export function expandUser(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** os.path.split: the head keeps a root made only of slashes, and otherwise loses its trailing slashes. */
export function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf('/') + 1;
  let head = p.slice(0, i);
  const tail = p.slice(i);
  if (head && !/^\/+$/.test(head)) head = head.replace(/\/+$/, '');
  return [head, tail];
}

/** os.path.dirname: everything before the last "/", trailing slashes removed unless that is all there is. */
export function pythonDirname(p: string): string {
  return splitPath(p)[0];
}

/** os.path.normpath: `.` and `..` resolved without the file system; a leading `//` is kept (POSIX leaves its meaning to the system), three or more are `/`. */
export function pythonNormpath(p: string): string {
  if (p === '') return '.';
  const root = p.startsWith('//') && !p.startsWith('///') ? '//' : p.startsWith('/') ? '/' : '';
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..' || (root === '' && parts.length === 0) || parts.at(-1) === '..') parts.push(part);
    else if (parts.length > 0) parts.pop();
  }
  return root + parts.join('/') || '.';
}

/** os.path.abspath, relative to `cwd` (the directory twistd runs the tac in). */
export function pythonAbspath(cwd: string, p: string): string {
  return pythonNormpath(isAbsolute(p) ? p : pythonJoin(cwd, p));
}
