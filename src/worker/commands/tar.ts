import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat, open, readFile, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { Readable, pipeline, type Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { osFailure, pyError } from '../python/oserror.js';
import { reprFloat } from '../python/repr.js';

/**
 * The tar stream uploadDirectory sends, as Python's
 * `tarfile.open(mode='w', format=PAX).add(root, '')` writes it, because the
 * master unpacks it with Python's tarfile: the root as the first member (its
 * name is empty), then the children depth first in sorted order; every
 * member with a pax header carrying the fractional mtime; hard links to a
 * file already stored as links; sockets left out. It is produced while it
 * is sent, so nothing is held in memory or written to a temporary file.
 *
 * User and group names come from /etc/passwd and /etc/group; Python asks
 * NSS, so accounts known only to a directory service (LDAP) get no name here,
 * and a master running as root then restores the numeric ids instead.
 */

const BLOCK = 512;
/** Python pads the archive to a multiple of its record size (20 blocks). */
const RECORD = 20 * BLOCK;
const READ_CHUNK = 256 * 1024;

const Type = { File: '0', Link: '1', Symlink: '2', Char: '3', Block: '4', Dir: '5', Fifo: '6', Pax: 'x' } as const;
type Type = (typeof Type)[keyof typeof Type];

interface Member {
  name: Buffer;
  type: Type;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** st_mtime as Python computes it (a float). */
  mtime: number;
  linkname: Buffer;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export type Compression = 'gz' | 'bz2' | null;

export interface TarStream {
  chunks: AsyncIterator<Buffer>;
  /** Stops producing: closes the open file and any compressor. Safe to call at any time. */
  close(): Promise<void>;
}

/**
 * Checks that `root` can be archived and starts the (compressed) stream.
 * Rejects, before anything is produced, when the root cannot be read or the
 * compressor cannot be started.
 */
export async function openTarStream(root: string, compress: Compression, bzip2Program = 'bzip2'): Promise<TarStream> {
  let rootStat: BigIntStats;
  try {
    rootStat = await lstat(root, { bigint: true });
  } catch (err) {
    throw osFailure(err, root);
  }
  const tar = tarMembers(Buffer.from(root), rootStat);
  if (compress === 'gz') return streamed(tar, createGzip());
  if (compress === 'bz2') return bzip2(tar, bzip2Program);
  return {
    chunks: tar,
    close: async () => {
      await tar.return(undefined);
    },
  };
}

function streamed(tar: AsyncGenerator<Buffer>, transform: Transform): TarStream {
  const source = Readable.from(tar, { objectMode: false, highWaterMark: READ_CHUNK });
  // Errors reach the consumer through `out`, which pipeline destroys with them.
  const out = pipeline(source, transform, () => {});
  return {
    chunks: out[Symbol.asyncIterator](),
    close: async () => {
      out.destroy();
      source.destroy();
    },
  };
}

/** Node has no bzip2, so compress='bz2' pipes the tar through the bzip2 program, as Python's bz2 module would compress it. */
async function bzip2(tar: AsyncGenerator<Buffer>, program: string): Promise<TarStream> {
  const child = spawn(program, ['-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    await once(child, 'spawn');
  } catch (err) {
    await tar.return(undefined);
    throw pyError('OSError', `compress='bz2' needs the ${program} program on this worker, and it could not be started: ${(err as Error).message}`);
  }
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  exited.catch(() => {});
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  const source = Readable.from(tar, { objectMode: false, highWaterMark: READ_CHUNK });
  let tarError: unknown;
  pipeline(source, child.stdin, (err) => {
    if (err) {
      // bzip2 would end the stream cleanly on the closed pipe, so the error must be kept and raised.
      tarError ??= err;
      child.kill();
    }
  });
  async function* output(): AsyncGenerator<Buffer> {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const [code, signal] = await exited;
    if (tarError !== undefined) throw tarError;
    if (code !== 0) throw pyError('OSError', `${program} failed (${code ?? signal}): ${stderr.trim()}`);
  }
  const chunks = output();
  return {
    chunks,
    close: async () => {
      source.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await chunks.return(undefined);
    },
  };
}

/** The archive as Python's TarFile.add(root, '') followed by close() writes it. */
async function* tarMembers(root: Buffer, rootStat: BigIntStats): AsyncGenerator<Buffer> {
  const hardlinks = new Map<string, Buffer>();
  const accounts = await readAccounts();
  let written = 0;
  async function* add(path: Buffer, arcname: Buffer, st: BigIntStats): AsyncGenerator<Buffer> {
    const member = await describe(path, arcname, st, hardlinks, accounts);
    if (!member) return;
    const header = encodeMember(member);
    written += header.length;
    yield header;
    if (member.type === Type.File && member.size > 0) {
      yield* fileData(path, member.size);
      written += padded(member.size);
    }
    if (member.type !== Type.Dir) return;
    let names: Buffer[];
    try {
      names = await readdir(path, { encoding: 'buffer' });
    } catch (err) {
      throw osFailure(err, path.toString());
    }
    names.sort(Buffer.compare);
    for (const name of names) {
      const child = Buffer.concat([path, SLASH, name]);
      let childStat: BigIntStats;
      try {
        childStat = await lstat(child, { bigint: true });
      } catch (err) {
        throw osFailure(err, child.toString());
      }
      yield* add(child, arcname.length ? Buffer.concat([arcname, SLASH, name]) : name, childStat);
    }
  }
  yield* add(root, Buffer.alloc(0), rootStat);
  const end = 2 * BLOCK;
  const total = written + end;
  yield Buffer.alloc(end + ((RECORD - (total % RECORD)) % RECORD));
}

const SLASH = Buffer.from('/');

/** tarfile.gettarinfo(); undefined for a socket, which Python leaves out. */
async function describe(path: Buffer, arcname: Buffer, st: BigIntStats, hardlinks: Map<string, Buffer>, accounts: Accounts): Promise<Member | undefined> {
  const member: Member = {
    name: arcname,
    type: Type.File,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: pythonTime(st.mtimeNs),
    linkname: Buffer.alloc(0),
    uname: accounts.users.get(Number(st.uid)) ?? '',
    gname: accounts.groups.get(Number(st.gid)) ?? '',
    devmajor: 0,
    devminor: 0,
  };
  if (st.isFile()) {
    const inode = `${st.ino}:${st.dev}`;
    const first = hardlinks.get(inode);
    if (st.nlink > 1n && first && !first.equals(arcname)) {
      member.type = Type.Link;
      member.linkname = first;
    } else {
      member.size = Number(st.size);
      if (st.ino !== 0n) hardlinks.set(inode, arcname);
    }
  } else if (st.isDirectory()) {
    member.type = Type.Dir;
    member.name = Buffer.concat([arcname, SLASH]);
  } else if (st.isFIFO()) {
    member.type = Type.Fifo;
  } else if (st.isSymbolicLink()) {
    member.type = Type.Symlink;
    try {
      member.linkname = await readlink(path, { encoding: 'buffer' });
    } catch (err) {
      throw osFailure(err, path.toString());
    }
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    member.type = st.isCharacterDevice() ? Type.Char : Type.Block;
    [member.devmajor, member.devminor] = splitDevice(st.rdev);
  } else {
    return undefined;
  }
  return member;
}

async function* fileData(path: Buffer, size: number): AsyncGenerator<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw osFailure(err, path.toString());
  }
  try {
    let left = size;
    while (left > 0) {
      // A fresh buffer each time: the chunk is handed on and may still be queued for sending.
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) throw pyError('OSError', `unexpected end of data: ${path.toString()} shrank while it was archived`);
      left -= bytesRead;
      yield chunk.subarray(0, bytesRead);
    }
    const pad = padded(size) - size;
    if (pad) yield Buffer.alloc(pad);
  } finally {
    await handle.close();
  }
}

interface Accounts {
  users: Map<number, string>;
  groups: Map<number, string>;
}

async function readAccounts(): Promise<Accounts> {
  return { users: await idNames('/etc/passwd'), groups: await idNames('/etc/group') };
}

/** name:x:id:… lines; the first name for an id wins, as getpwuid() returns it. */
async function idNames(file: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (!name || id === undefined || !/^\d+$/.test(id)) continue;
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** Python's st_mtime: seconds plus nanoseconds * 1e-9, in floating point. */
export function pythonTime(ns: bigint): number {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return Number(sec) + Number(nsec) * 1e-9;
}

function splitDevice(rdev: bigint): [number, number] {
  if (process.platform === 'darwin') return [Number((rdev >> 24n) & 0xffn), Number(rdev & 0xffffffn)];
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/** TarInfo.create_pax_header(): a pax header for what ustar cannot hold (and always for the float mtime), then the ustar header. */
function encodeMember(m: Member): Buffer {
  const pax: [string, Buffer][] = [];
  const name = m.name;
  if (!isAscii(name) || name.length > 100) pax.push(['path', name]);
  if (!isAscii(m.linkname) || m.linkname.length > 100) pax.push(['linkpath', m.linkname]);
  const uname = Buffer.from(m.uname);
  const gname = Buffer.from(m.gname);
  if (!isAscii(uname) || m.uname.length > 32) pax.push(['uname', uname]);
  if (!isAscii(gname) || m.gname.length > 32) pax.push(['gname', gname]);
  const fields = { uid: m.uid, gid: m.gid, size: m.size, mtime: roundHalfEven(m.mtime) };
  for (const [key, digits] of [['uid', 8], ['gid', 8], ['size', 12]] as const) {
    if (!fits(fields[key], digits)) {
      pax.push([key, Buffer.from(String(m[key]))]);
      fields[key] = 0;
    }
  }
  pax.push(['mtime', Buffer.from(reprFloat(m.mtime))]);
  if (!fits(fields.mtime, 12)) fields.mtime = 0;

  const ustar = header({
    name,
    mode: m.mode,
    uid: fields.uid,
    gid: fields.gid,
    size: fields.size,
    mtime: fields.mtime,
    type: m.type,
    linkname: m.linkname,
    uname,
    gname,
    device: m.type === Type.Char || m.type === Type.Block ? [m.devmajor, m.devminor] : undefined,
  });
  return Buffer.concat([paxHeader(pax), ustar]);
}

function paxHeader(records: [string, Buffer][]): Buffer {
  const binary = records.some(([, value]) => !isUtf8(value));
  const parts: Buffer[] = binary ? [Buffer.from('21 hdrcharset=BINARY\n')] : [];
  for (const [key, value] of records) {
    const base = key.length + value.length + 3;
    let length = base;
    while (base + String(length).length !== length) length = base + String(length).length;
    parts.push(Buffer.from(`${length} ${key}=`), value, Buffer.from('\n'));
  }
  const body = Buffer.concat(parts);
  const head = header({ name: Buffer.from('././@PaxHeader'), mode: 0, uid: 0, gid: 0, size: body.length, mtime: 0, type: Type.Pax, linkname: Buffer.alloc(0) });
  return Buffer.concat([head, body, Buffer.alloc(padded(body.length) - body.length)]);
}

interface HeaderFields {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: Type;
  linkname: Buffer;
  uname?: Buffer;
  gname?: Buffer;
  device?: [number, number];
}

/** One ustar header block, laid out as tarfile's _create_header lays it out. */
function header(f: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  asciiField(f.name).copy(block, 0, 0, 100);
  block.write(octal(f.mode, 8), 100, 'latin1');
  block.write(octal(f.uid, 8), 108, 'latin1');
  block.write(octal(f.gid, 8), 116, 'latin1');
  block.write(octal(f.size, 12), 124, 'latin1');
  block.write(octal(f.mtime, 12), 136, 'latin1');
  block.write('        ', 148, 'latin1');
  block.write(f.type, 156, 'latin1');
  asciiField(f.linkname).copy(block, 157, 0, 100);
  block.write('ustar\x0000', 257, 'latin1');
  if (f.uname) asciiField(f.uname).copy(block, 265, 0, 32);
  if (f.gname) asciiField(f.gname).copy(block, 297, 0, 32);
  if (f.device) {
    block.write(octal(f.device[0], 8), 329, 'latin1');
    block.write(octal(f.device[1], 8), 337, 'latin1');
  }
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** What tarfile puts in a ustar text field when the real value went to the pax header: ASCII, anything else as '?'. */
function asciiField(value: Buffer): Buffer {
  return isAscii(value) ? value : Buffer.from(value.toString('utf8').replace(/[^\x00-\x7f]/gu, '?'), 'latin1');
}

function octal(n: number, digits: number): string {
  return `${n.toString(8).padStart(digits - 1, '0')}\0`;
}

function fits(n: number, digits: number): boolean {
  return n >= 0 && n < 8 ** (digits - 1);
}

function isAscii(b: Buffer): boolean {
  for (const byte of b) if (byte > 0x7f) return false;
  return true;
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** Python's round() of a float: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
