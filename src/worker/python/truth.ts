import { PyFloat, type PbValue } from '../../pb/index.js';

/**
 * Python's truth value, as buildbot-worker's `if args.get(...)` tests a value
 * the master sent (it sends 1/0 for flags such as want_stdout): None, False,
 * zero and empty containers are false, everything else is true.
 */
export function pyTruthy(value: PbValue): boolean {
  if (value === null || value === false || value === 0 || value === 0n || value === '') return false;
  if (value instanceof PyFloat) return value.value !== 0;
  if (value instanceof Uint8Array || Array.isArray(value)) return value.length > 0;
  if (value instanceof Map || value instanceof Set) return value.size > 0;
  return true;
}
