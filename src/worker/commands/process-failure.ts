import type { CommandError } from '../../errors.js';
import { PbFailure, PY } from '../../pb/index.js';

/**
 * The failure the master is sent when the process runner refuses to run or
 * loses a process: arguments it cannot use (COMMAND_ARGS) as a ValueError,
 * the rest as a RuntimeError, the code kept for the worker's own log.
 */
export function processFailure(err: CommandError): PbFailure {
  return new PbFailure(err.code === 'COMMAND_ARGS' ? PY.ValueError : PY.RuntimeError, err.message, {}, err.code);
}
