import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

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
