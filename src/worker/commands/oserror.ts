import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { PbFailure, PY } from '../../pb/values/failure.js';
import { reprText } from '../process/python-format.js';

/**
 * buildbot-worker reports failed file system calls with Python's OSError
 * fields: `rc` is `e.errno` and headers quote `e.strerror`, the C library's
 * text. Node gives the errno name (`ENOENT`) and libuv's lowercase wording
 * instead, so this module turns one into the other.
 */

/** glibc's strerror() for the errors file system calls give; libuv's wording differs for several of them. */
const GLIBC_STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  ESPIPE: 'Illegal seek',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  EPIPE: 'Broken pipe',
  ENAMETOOLONG: 'File name too long',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  EILSEQ: 'Invalid or incomplete multibyte or wide character',
  ENOTSUP: 'Operation not supported',
  EOPNOTSUPP: 'Operation not supported',
  ESTALE: 'Stale file handle',
  EDQUOT: 'Disk quota exceeded',
  ECANCELED: 'Operation canceled',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  ECONNRESET: 'Connection reset by peer',
};

/** The OSError subclass Python raises for an errno (PEP 3151), for the errors file system calls give. */
const PYTHON_CLASS: Readonly<Record<string, string>> = {
  ENOENT: 'FileNotFoundError',
  EEXIST: 'FileExistsError',
  EISDIR: 'IsADirectoryError',
  ENOTDIR: 'NotADirectoryError',
  EACCES: 'PermissionError',
  EPERM: 'PermissionError',
  EINTR: 'InterruptedError',
  EAGAIN: 'BlockingIOError',
  EPIPE: 'BrokenPipeError',
  ETIMEDOUT: 'TimeoutError',
};

/** A failed system call, with the fields Python's OSError has. */
export interface OsErrorInfo {
  /** The errno name, such as `ENOENT`. */
  code: string;
  errno: number;
  strerror: string;
}

/** The errno fields of a Node system error; undefined for anything that is not one. */
export function osError(err: unknown): OsErrorInfo | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== 'string') return undefined;
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  if (errno === undefined) return undefined;
  return { code, errno, strerror: strerror(code, errno) };
}

function strerror(code: string, errno: number): string {
  const known = GLIBC_STRERROR[code];
  if (known) return known;
  const libuv = getSystemErrorMap().get(-errno)?.[1];
  return libuv ? libuv.charAt(0).toUpperCase() + libuv.slice(1) : `Unknown error ${errno}`;
}

const BASES = [PY.Exception, PY.BaseException, 'builtins.object'];

/**
 * The failure a Python worker would report for an OSError it did not catch,
 * e.g. `FileNotFoundError: [Errno 2] No such file or directory: '/b/x'`.
 * Anything that is not a system error becomes a RuntimeError with its message.
 */
export function osFailure(err: unknown, path?: string): PbFailure {
  if (err instanceof PbFailure) return err;
  const os = osError(err);
  if (!os) return PbFailure.fromError(err);
  const cls = PYTHON_CLASS[os.code];
  const type = cls ? `builtins.${cls}` : 'builtins.OSError';
  const parents = cls ? [type, 'builtins.OSError', ...BASES] : ['builtins.OSError', ...BASES];
  const where = path ?? (err as NodeJS.ErrnoException).path;
  const value = `[Errno ${os.errno}] ${os.strerror}${where !== undefined ? `: ${reprText(where)}` : ''}`;
  return new PbFailure(type, value, { parents });
}

/** A failure with a Python built-in exception type, for arguments Python would choke on. */
export function pyError(name: 'TypeError' | 'ValueError' | 'OSError', message: string): PbFailure {
  return new PbFailure(`builtins.${name}`, message);
}
