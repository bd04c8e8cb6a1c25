import { readdir } from 'node:fs/promises';
import { pythonJoin, splitPath } from './os-path.js';
import { isDir, lexists } from './os.js';

/**
 * Python's `glob.glob(pathname, recursive=True)` (3.11), which the glob
 * command runs: the same matches in the same order, hidden names skipped
 * unless the pattern part starts with a dot, `**` for zero or more
 * directories, symbolic links to directories followed, and every error
 * swallowed (an unreadable directory matches nothing).
 */
export async function pythonGlob(pathname: string): Promise<string[]> {
  const out: string[] = [];
  const skipEmptyFirst = pathname === '' || pathname.startsWith('**');
  let first = true;
  for await (const match of iglob(pathname, false)) {
    if (first && skipEmptyFirst && match === '') {
      first = false;
      continue;
    }
    first = false;
    out.push(match);
  }
  return out;
}

async function* iglob(pathname: string, dironly: boolean): AsyncGenerator<string> {
  const [dirname, basename] = splitPath(pathname);
  if (!hasMagic(pathname)) {
    if (basename) {
      if (await lexists(pathname)) yield pathname;
    } else if (await isDir(dirname)) {
      // A pattern ending in a slash matches directories only.
      yield pathname;
    }
    return;
  }
  if (!dirname) {
    yield* basename === '**' ? glob2('', dironly) : glob1('', basename, dironly);
    return;
  }
  const dirs: AsyncIterable<string> | string[] =
    dirname !== pathname && hasMagic(dirname) ? iglob(dirname, true) : [dirname];
  for await (const dir of dirs) {
    const names = !hasMagic(basename)
      ? glob0(dir, basename)
      : basename === '**'
        ? glob2(dir, dironly)
        : glob1(dir, basename, dironly);
    for await (const name of names) yield pythonJoin(dir, name);
  }
}

async function* glob0(dirname: string, basename: string): AsyncGenerator<string> {
  if (basename) {
    if (await lexists(joinNonEmpty(dirname, basename))) yield basename;
  } else if (await isDir(dirname)) {
    yield basename;
  }
}

async function* glob1(dirname: string, pattern: string, dironly: boolean): AsyncGenerator<string> {
  const matcher = fnmatchRegExp(pattern);
  const showHidden = isHidden(pattern);
  for (const name of await listdir(dirname, dironly)) {
    if ((showHidden || !isHidden(name)) && matcher.test(name)) yield name;
  }
}

async function* glob2(dirname: string, dironly: boolean): AsyncGenerator<string> {
  yield '';
  yield* rlistdir(dirname, dironly);
}

async function* rlistdir(dirname: string, dironly: boolean): AsyncGenerator<string> {
  for (const name of await listdir(dirname, dironly)) {
    if (isHidden(name)) continue;
    yield name;
    // A symbolic link loop ends when the kernel refuses the path (ELOOP), as it does for Python.
    for await (const below of rlistdir(dirname ? joinNonEmpty(dirname, name) : name, dironly)) {
      yield joinNonEmpty(name, below);
    }
  }
}

async function listdir(dirname: string, dironly: boolean): Promise<string[]> {
  const dir = dirname || '.';
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  if (!dironly) return entries.map((e) => e.name);
  const names: string[] = [];
  for (const entry of entries) {
    if (entry.isDirectory() || (entry.isSymbolicLink() && (await isDir(pythonJoin(dir, entry.name))))) names.push(entry.name);
  }
  return names;
}

/** glob's own _join: an empty side gives the other side unchanged. */
function joinNonEmpty(a: string, b: string): string {
  return !a || !b ? a || b : pythonJoin(a, b);
}

function hasMagic(s: string): boolean {
  return /[*?[]/.test(s);
}

function isHidden(name: string): boolean {
  return name.startsWith('.');
}

const compiled = new Map<string, RegExp>();

/** Python's fnmatch.fnmatch on POSIX (where os.path.normcase changes nothing): a tac's WORKER_ENVIRONMENT_BLACKLIST match. */
export function fnmatch(name: string, pattern: string): boolean {
  return fnmatchRegExp(pattern).test(name);
}

/** fnmatch.translate for POSIX (case-sensitive, no escapes: a backslash is an ordinary character). */
function fnmatchRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re) return re;
  re = new RegExp(`^${translate([...pattern])}$`, 'u');
  if (compiled.size > 256) compiled.clear();
  compiled.set(pattern, re);
  return re;
}

/**
 * fnmatch.translate's regular expression (3.11): each `*` between two fixed parts
 * matches as little as it can and never gives it back (Python's atomic group,
 * here a lookahead and a back-reference), so that a pattern such as `*a*a*a*b`
 * takes linear time, not exponential, on a long name.
 */
function translate(pat: string[]): string {
  const STAR = null;
  const parts: (string | null)[] = [];
  let i = 0;
  const n = pat.length;
  while (i < n) {
    const c = pat[i++]!;
    if (c === '*') {
      if (parts.length === 0 || parts.at(-1) !== STAR) parts.push(STAR);
    } else if (c === '?') {
      parts.push('[^]');
    } else if (c === '[') {
      let j = i;
      if (j < n && pat[j] === '!') j++;
      if (j < n && pat[j] === ']') j++;
      while (j < n && pat[j] !== ']') j++;
      if (j >= n) {
        parts.push('\\[');
      } else {
        parts.push(charClass(pat.slice(i, j)));
        i = j + 1;
      }
    } else {
      parts.push(escapeLiteral(c));
    }
  }
  // Fixed parts, then (STAR fixed)*, then maybe a last STAR.
  let out = '';
  let k = 0;
  while (k < parts.length && parts[k] !== STAR) out += parts[k++];
  let group = 0;
  while (k < parts.length) {
    k++;
    let fixed = '';
    while (k < parts.length && parts[k] !== STAR) fixed += parts[k++];
    if (k === parts.length) {
      out += `[^]*${fixed}`;
    } else {
      group++;
      out += `(?=(?<g${group}>[^]*?${fixed}))\\k<g${group}>`;
    }
  }
  return out;
}

/** One `[...]` set: `!` negates, `a-z` is a range, reversed ranges match nothing (as Python drops them). */
function charClass(body: string[]): string {
  const negate = body[0] === '!';
  const chars = negate ? body.slice(1) : body;
  let items = '';
  for (let k = 0; k < chars.length; k++) {
    const lo = chars[k]!;
    if (chars[k + 1] === '-' && k + 2 < chars.length) {
      const hi = chars[k + 2]!;
      k += 2;
      if (lo.codePointAt(0)! <= hi.codePointAt(0)!) items += `${escapeInClass(lo)}-${escapeInClass(hi)}`;
    } else {
      items += escapeInClass(lo);
    }
  }
  if (!items) return negate ? '[^]' : '(?!)';
  return `[${negate ? '^' : ''}${items}]`;
}

function escapeLiteral(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function escapeInClass(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}
