/** Banana type bytes, limits and the PB vocabulary, as twisted.spread.banana defines them. */

export const LIST = 0x80;
export const INT = 0x81;
export const STRING = 0x82;
export const NEG = 0x83;
export const FLOAT = 0x84;
export const LONGINT = 0x85;
export const LONGNEG = 0x86;
export const VOCAB = 0x87;

/** Longest string and longest list either side may send (Twisted's SIZE_LIMIT). */
export const SIZE_LIMIT = 640 * 1024;
/** Most base-128 digits before a type byte (Twisted's prefix limit). */
export const PREFIX_LIMIT = 64;
/** INT/NEG cover [-2^31, 2^31-1]; beyond that Twisted switches to LONGINT/LONGNEG. */
export const LARGEST_INT = 2 ** 31 - 1;
export const SMALLEST_INT = -(2 ** 31);
/** The largest magnitude a 64-digit prefix can carry. */
export const LARGEST_LONG = (1n << BigInt(PREFIX_LIMIT * 7)) - 1n;

/** The "pb" dialect's vocabulary; index i+1 stands for PB_VOCABULARY[i]. */
export const PB_VOCABULARY: readonly string[] = [
  'None', 'class', 'dereference', 'reference', 'dictionary', 'function', 'instance', 'list',
  'module', 'persistent', 'tuple', 'unpersistable', 'copy', 'cache', 'cached', 'remote',
  'local', 'lcache', 'version', 'login', 'password', 'challenge', 'logged_in',
  'not_logged_in', 'cachemessage', 'message', 'answer', 'error', 'decref', 'decache',
  'uncache',
];

/** Dialects in the order a server offers them and a client prefers them. */
export const DIALECTS: readonly string[] = ['pb', 'none'];
