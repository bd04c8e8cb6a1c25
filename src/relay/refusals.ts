import { BbgateError, type ErrorCode } from '../errors.js';
import { PbFailure, PY, UnauthorizedLogin } from '../pb/index.js';

export type RefusalCode = 'RELAY_DENIED' | 'RELAY_LIMIT' | 'RELAY_UPSTREAM';

/**
 * How the relay turns a worker away, as a PB failure of its login call.
 * The Python worker retries only after UnauthorizedLogin or PBConnectionLost
 * (anything else stops its reactor), so every refusal derives from one of
 * those: a worker not on the allow-list is told its login is refused; a
 * limit or an unreachable master looks like a connection lost, retried with
 * backoff. The type names say which, for bbgate's probe and for humans.
 */
const REFUSALS: Record<RefusalCode, { type: string; parents: string[] }> = {
  RELAY_DENIED: { type: 'bbgate.relay.WorkerNotAllowed', parents: [] },
  RELAY_LIMIT: { type: 'bbgate.relay.TooManyConnections', parents: [PY.PBConnectionLost, PY.Exception, PY.BaseException, PY.object] },
  RELAY_UPSTREAM: { type: 'bbgate.relay.MasterUnreachable', parents: [PY.PBConnectionLost, PY.Exception, PY.BaseException, PY.object] },
};

export function refusal(code: RefusalCode, message: string): PbFailure {
  const { type, parents } = REFUSALS[code];
  if (code === 'RELAY_DENIED') return new UnauthorizedLogin(message, {}, type);
  return new PbFailure(type, message, { parents: [type, ...parents] });
}

/** A relay's refusal received by a worker or the probe, as an error with the relay's code; undefined for anything else. */
export function readRefusal(err: unknown): BbgateError | undefined {
  if (!(err instanceof PbFailure)) return undefined;
  const code = (Object.keys(REFUSALS) as RefusalCode[]).find((c) => REFUSALS[c].type === err.type);
  return code === undefined ? undefined : new BbgateError(code as ErrorCode, `the relay refused the connection: ${err.value}`);
}
