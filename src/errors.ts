/**
 * Typed errors shared by every layer. The `code` is stable: logs, the probe's
 * JSON output, exit statuses and the tests all key on it, never on the text.
 */
export type ErrorCode =
  // Banana: the byte-level framing
  | 'BANANA_PREFIX_TOO_LONG'
  | 'BANANA_STRING_TOO_LONG'
  | 'BANANA_LIST_TOO_LONG'
  | 'BANANA_UNKNOWN_TYPE'
  | 'BANANA_BAD_VOCAB'
  | 'BANANA_TOO_DEEP'
  | 'BANANA_EXPRESSION_TOO_LARGE'
  | 'BANANA_CANNOT_ENCODE'
  // Jelly: the object layer
  | 'JELLY_INSECURE'
  | 'JELLY_UNSUPPORTED'
  | 'JELLY_MALFORMED'
  | 'JELLY_CANNOT_ENCODE'
  // PB: the broker and login
  | 'PB_NOT_PB'
  | 'PB_DIALECT'
  | 'PB_VERSION'
  | 'PB_PROTOCOL'
  | 'PB_TOO_MANY_REFERENCES'
  | 'PB_DEAD_REFERENCE'
  | 'PB_CONNECTION_LOST'
  | 'PB_REMOTE_ERROR'
  | 'PB_UNAUTHORIZED'
  | 'PB_DUPLICATE_WORKER'
  | 'PB_NOT_BUILDBOT'
  // Connecting and the command line
  | 'USAGE'
  | 'ENDPOINT_SYNTAX'
  | 'NET_DNS'
  | 'NET_REFUSED'
  | 'NET_TIMEOUT'
  | 'NET_UNREACHABLE'
  | 'NET_RESET'
  | 'NET_KEEPALIVE_TIMEOUT'
  // HTTP CONNECT proxies: reaching the proxy, and what it answered
  | 'PROXY_SYNTAX'
  | 'PROXY_CREDENTIALS'
  | 'PROXY_DNS'
  | 'PROXY_REFUSED'
  | 'PROXY_UNREACHABLE'
  | 'PROXY_TIMEOUT'
  | 'PROXY_CLOSED'
  | 'PROXY_TLS'
  | 'PROXY_NOT_HTTP'
  | 'PROXY_AUTH_REQUIRED'
  | 'PROXY_AUTH_FAILED'
  | 'PROXY_AUTH_UNSUPPORTED'
  | 'PROXY_AUTH_PROTOCOL'
  | 'PROXY_FORBIDDEN'
  | 'PROXY_BAD_GATEWAY'
  | 'PROXY_ERROR'
  // PAC files (pac+file:, pac+http(s):): loading, evaluating, the answer, and its entries all failing
  | 'PROXY_PAC_LOAD'
  | 'PROXY_PAC_EVAL'
  | 'PROXY_PAC_ANSWER'
  | 'PROXY_ALL_FAILED'
  // Negotiate (SPNEGO/Kerberos) proxy authentication: why no token could be made, or the proxy refused it
  | 'PROXY_AUTH_NEGOTIATE_UNAVAILABLE'
  | 'PROXY_AUTH_NEGOTIATE_NO_TICKET'
  | 'PROXY_AUTH_NEGOTIATE_EXPIRED'
  | 'PROXY_AUTH_NEGOTIATE_CLOCK_SKEW'
  | 'PROXY_AUTH_NEGOTIATE_UNKNOWN_SERVICE'
  | 'PROXY_AUTH_NEGOTIATE_KDC_UNREACHABLE'
  | 'PROXY_AUTH_NEGOTIATE_FAILED'
  // TLS: our trust roots and certificate, the handshake, and the server's certificate
  | 'TLS_NO_TRUST_ROOTS'
  | 'TLS_CLIENT_CERT'
  | 'TLS_NOT_TLS'
  | 'TLS_HANDSHAKE'
  | 'TLS_UNTRUSTED'
  | 'TLS_SELF_SIGNED'
  | 'TLS_EXPIRED'
  | 'TLS_NOT_YET_VALID'
  | 'TLS_HOSTNAME'
  | 'TLS_FINGERPRINT'
  // Worker commands: their arguments, and the processes they run
  | 'COMMAND_ARGS'
  | 'PROCESS_START'
  | 'PROCESS_KILL_FAILED'
  | 'PTY_UNAVAILABLE'
  // buildbot.tac: not Python, Python bbgate does not run, or values no worker can run with
  | 'TAC_SYNTAX'
  | 'TAC_UNSUPPORTED'
  | 'TAC_INVALID'
  // The worker's directory and process: create-worker, start, stop
  | 'WORKER_DIR'
  | 'WORKER_RUNNING'
  | 'WORKER_PIDFILE'
  | 'WORKER_START'
  // WebSocket transports (ws://, wss://): the HTTP upgrade and the framing
  | 'WS_UPGRADE_REFUSED'
  | 'WS_PROTOCOL'
  // msgpack_experimental_v7: the master refused the worker's name or password (HTTP 401), broke the protocol, went away, or failed a request
  | 'MSGPACK_UNAUTHORIZED'
  | 'MSGPACK_PROTOCOL'
  | 'MSGPACK_CONNECTION_LOST'
  | 'MSGPACK_REMOTE_ERROR'
  // The relay: its configuration, and what it tells a worker it turns away
  | 'RELAY_CONFIG'
  | 'RELAY_DENIED'
  | 'RELAY_LIMIT'
  | 'RELAY_HANDSHAKE'
  | 'RELAY_UPSTREAM'
  // bbgate itself: a wait that nothing could end any more (see src/liveness.ts)
  | 'INTERNAL_STALL';

/** The exit status of a bbgate process stopped by a bug of its own (sysexits' EX_SOFTWARE). */
export const EXIT_INTERNAL_ERROR = 70;

export class BbgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Violations of Banana framing or size limits; the connection cannot continue. */
export class BananaError extends BbgateError {}

/** Jelly trees that are malformed, or carry types bbgate refuses (as Twisted's security options do). */
export class JellyError extends BbgateError {}

/** The peer broke the PB protocol, or the broker is no longer usable. */
export class PbError extends BbgateError {}

export function isBbgateError(err: unknown): err is BbgateError {
  return err instanceof BbgateError;
}

/** A worker command cannot run as asked: a bad argument, a process that could not start or would not die. */
export class CommandError extends BbgateError {}

const ERRNO_CODES: Record<string, ErrorCode> = {
  ECONNREFUSED: 'NET_REFUSED',
  ETIMEDOUT: 'NET_TIMEOUT',
  EHOSTUNREACH: 'NET_UNREACHABLE',
  ENETUNREACH: 'NET_UNREACHABLE',
  EADDRNOTAVAIL: 'NET_UNREACHABLE',
  ECONNRESET: 'NET_RESET',
  EPIPE: 'NET_RESET',
  ENOTFOUND: 'NET_DNS',
  EAI_AGAIN: 'NET_DNS',
};

/** Why a file could not be read, in words (an errno from Node), for messages that name the file. */
export function fileReadFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'EISDIR') return 'it is a directory';
  return e.message;
}

/**
 * A socket error (an errno from Node) as a typed error that says where we tried to go:
 * one table for every layer, so a reset reads NET_RESET whether TCP, TLS or PB saw it.
 */
export function networkError(err: unknown, where: string, otherwise: ErrorCode = 'NET_UNREACHABLE'): BbgateError {
  if (err instanceof BbgateError) return err;
  const errno = (err as NodeJS.ErrnoException).code ?? '';
  const code = ERRNO_CODES[errno] ?? otherwise;
  const what = code === 'NET_REFUSED' ? 'connection refused' : (err as Error).message;
  return new BbgateError(code, `${where}: ${what}`, { cause: err });
}

