import { BbgateError, type ErrorCode } from '../../errors.js';
import { messageText, toText } from './values.js';

/** Qualified names that PB peers match on (`failure.check(...)` compares these strings). */
export const PY = {
  object: 'builtins.object',
  BaseException: 'builtins.BaseException',
  Exception: 'builtins.Exception',
  RuntimeError: 'builtins.RuntimeError',
  ValueError: 'builtins.ValueError',
  KeyError: 'builtins.KeyError',
  AttributeError: 'builtins.AttributeError',
  PbError: 'twisted.spread.pb.Error',
  NoSuchMethod: 'twisted.spread.flavors.NoSuchMethod',
  InsecureJelly: 'twisted.spread.jelly.InsecureJelly',
  UnauthorizedLogin: 'twisted.cred.error.UnauthorizedLogin',
  LoginFailed: 'twisted.cred.error.LoginFailed',
  Unauthorized: 'twisted.cred.error.Unauthorized',
  PBConnectionLost: 'twisted.spread.pb.PBConnectionLost',
} as const;

const EXCEPTION_BASES = [PY.Exception, PY.BaseException, PY.object];

/** The class hierarchy Python reports in `parents`, for the exception types bbgate raises itself. */
const KNOWN_PARENTS: Record<string, string[]> = {
  [PY.PbError]: [PY.PbError, ...EXCEPTION_BASES],
  [PY.NoSuchMethod]: [PY.NoSuchMethod, PY.AttributeError, ...EXCEPTION_BASES],
  [PY.InsecureJelly]: [PY.InsecureJelly, ...EXCEPTION_BASES],
  [PY.UnauthorizedLogin]: [PY.UnauthorizedLogin, PY.LoginFailed, PY.Unauthorized, ...EXCEPTION_BASES],
  [PY.KeyError]: [PY.KeyError, 'builtins.LookupError', ...EXCEPTION_BASES],
  [PY.AttributeError]: [PY.AttributeError, ...EXCEPTION_BASES],
};

export const COPYABLE_FAILURE = 'twisted.spread.pb.CopyableFailure';

/** Failure texts are cut well below Banana's 640 KiB string limit, so a long message can still be sent. */
const MAX_FAILURE_TEXT = 64 * 1024;

function clip(text: string): string {
  return text.length <= MAX_FAILURE_TEXT ? text : `${text.slice(0, MAX_FAILURE_TEXT)}… (${text.length - MAX_FAILURE_TEXT} more characters)`;
}
const NO_TRACEBACK = 'Traceback unavailable\n';

export interface FailureInit {
  parents?: string[];
  traceback?: string;
}

/**
 * A Python exception as PB carries it (a `CopyableFailure`). Received from the
 * peer it is the rejection of a call; thrown by a local remote method it is sent
 * back to the peer with exactly this type and parents, so Python's
 * `failure.check(...)` matches it.
 */
export class PbFailure extends BbgateError {
  readonly type: string;
  readonly value: string;
  readonly parents: string[];
  readonly traceback: string;

  constructor(type: string, value: string, init: FailureInit = {}, code: ErrorCode = 'PB_REMOTE_ERROR') {
    super(code, value ? `${type}: ${value}` : type);
    this.type = type;
    this.value = value;
    this.parents = init.parents ?? KNOWN_PARENTS[type] ?? (type.startsWith('builtins.') ? [type, ...EXCEPTION_BASES] : [type]);
    this.traceback = init.traceback ?? NO_TRACEBACK;
  }

  /** The first of `names` that this failure is an instance of, like Twisted's Failure.check. */
  check(...names: string[]): string | undefined {
    return names.find((n) => this.parents.includes(n));
  }

  /** The state dict a Twisted CopyableFailure sends, key for key. */
  toState(): Map<string, unknown> {
    return new Map<string, unknown>([
      ['count', 1],
      ['type', Buffer.from(this.type, 'utf8')],
      ['value', clip(this.value)],
      ['captureVars', false],
      ['frames', []],
      ['stack', []],
      ['tb', null],
      ['parents', this.parents],
      ['unsafeTracebacks', this.traceback === NO_TRACEBACK ? 0 : 1],
      ['traceback', clip(this.traceback)],
    ]);
  }

  /** Rebuilds a failure from a received CopyableFailure state; undefined if the state is not one. */
  static fromState(state: unknown): PbFailure | undefined {
    if (!(state instanceof Map)) return undefined;
    const type = toText(state.get('type'));
    if (type === undefined) return undefined;
    const rawValue = state.get('value');
    const value = rawValue == null ? '' : messageText(rawValue);
    const rawParents = state.get('parents');
    const parents = Array.isArray(rawParents)
      ? rawParents.map((p) => toText(p)).filter((p): p is string => p !== undefined)
      : [type];
    const traceback = toText(state.get('traceback')) ?? NO_TRACEBACK;
    if (parents.includes(PY.UnauthorizedLogin)) return new UnauthorizedLogin(value, { parents, traceback }, type);
    return new PbFailure(type, value, { parents, traceback });
  }

  /** How a local exception is reported to the peer. */
  static fromError(err: unknown): PbFailure {
    if (err instanceof PbFailure) return err;
    if (err instanceof Error) return new PbFailure(PY.RuntimeError, err.message);
    return new PbFailure(PY.RuntimeError, String(err));
  }
}

/**
 * Wrong password or unknown user: what a Twisted portal raises, under the same
 * Python name. A subclass (a relay's refusal) keeps its own type, and its text
 * is the reason, since it is not about the password.
 */
export class UnauthorizedLogin extends PbFailure {
  constructor(value = '', init: FailureInit = {}, type: string = PY.UnauthorizedLogin) {
    super(type, value, type === PY.UnauthorizedLogin ? init : { parents: [type, ...KNOWN_PARENTS[PY.UnauthorizedLogin]!], ...init }, 'PB_UNAUTHORIZED');
    this.message = type === PY.UnauthorizedLogin
      ? `login refused: wrong name or password (${PY.UnauthorizedLogin}${value ? `: ${value}` : ''})`
      : `login refused: ${value || type} (${type})`;
  }
}
