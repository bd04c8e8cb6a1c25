import type { Duplex } from 'node:stream';
import { BbgateError } from '../errors.js';
import {
  commandOf, decodeCall, decodeDialectChoice, decodeVersion, encodeMessage, PB_VERSION, toText, unjelly,
  writeDialectOffer, writeError, writeVersion, type PbFailure, type Sexp,
} from '../pb/index.js';
import { sniff } from './sniffer.js';

/** Why a worker's handshake failed, as metrics label it. */
export type HandshakeFailure = 'timeout' | 'protocol' | 'closed';

export class HandshakeError extends BbgateError {
  constructor(readonly reason: HandshakeFailure, message: string, options?: { cause?: unknown }) {
    super('RELAY_HANDSHAKE', message, options);
  }
}

/** What the relay learnt from a worker before dialing the master: who it is, and the bytes to replay. */
export interface WorkerHello {
  dialect: string;
  /** The worker's dialect choice, as it sent it. */
  choice: Buffer;
  /** What the worker sent after its choice up to the end of its login call: replayed to the master as it is. */
  replay: Buffer;
  /** Whatever the worker sent after its login call, unread: the relay's guard must see it before the master does. */
  rest: Buffer;
  username: string;
  /** The login call's request id: a refusal answers it. */
  requestId: number;
}

/** A login call carries one user name; anything near this size is not a handshake. */
const MAX_HELLO_BYTES = 16 * 1024;

/**
 * Offered after the dialects, so that a client can tell the relay's greeting from a master's
 * (the probe says which answered). Clients choose among the dialects they know, never this.
 */
export const RELAY_MARK = 'bbgate-relay';
const OFFER = encodeMessage(false, (w) => writeDialectOffer(w, [RELAY_MARK]));

/**
 * Plays the master's part up to the worker's login call: offers the dialects (and the relay's mark),
 * announces PB's version as Twisted's broker does once a dialect is chosen,
 * and reads the worker's choice, version and `login(username)`. The relay
 * then knows the worker's name, and the master has not been contacted yet.
 */
export async function readWorkerHello(stream: Duplex, timeoutMs: number): Promise<WorkerHello> {
  let dialect: string | undefined;
  let choiceEnd = 0;
  let versionSeen = false;
  let login: { username: string; requestId: number } | undefined;
  stream.write(OFFER);
  const { raw, end } = await sniff(stream, {
    maxBytes: MAX_HELLO_BYTES,
    timeoutMs,
    step: (expr, parser) => {
      if (dialect === undefined) {
        dialect = dialectChoice(expr);
        choiceEnd = parser.position;
        parser.vocab = dialect === 'pb';
        stream.write(encodeMessage(parser.vocab, writeVersion));
        return false;
      }
      if (!versionSeen) {
        expectVersion(expr, 'the worker');
        versionSeen = true;
        return false;
      }
      login = loginCall(expr);
      return true;
    },
    closed: () => new HandshakeError('closed', dialect === undefined
      ? 'the client closed the connection before choosing a PB dialect'
      : 'the client closed the connection before logging in'),
    timedOut: () => new HandshakeError('timeout', `the client sent no PB login within ${timeoutMs / 1000} s`),
    invalid: (err) => err instanceof HandshakeError ? err : new HandshakeError('protocol', `the client does not speak PB: ${(err as Error).message}`, { cause: err }),
    tooLarge: () => new HandshakeError('protocol', `the client sent more than ${MAX_HELLO_BYTES} bytes without a PB login`),
  });
  return { dialect: dialect!, choice: raw.subarray(0, choiceEnd), replay: raw.subarray(choiceEnd, end), rest: raw.subarray(end), ...login! };
}

function dialectChoice(expr: Sexp): string {
  const choice = decodeDialectChoice(expr);
  if (choice === undefined) {
    throw new HandshakeError('protocol', 'the client did not answer the PB dialect offer with one of the dialects offered');
  }
  return choice;
}

/** `["version", 6]`, as both sides of PB send it once the dialect is chosen. */
export function expectVersion(expr: Sexp, who: string): void {
  const announced = decodeVersion(expr);
  if (!announced) throw new HandshakeError('protocol', `${who} did not announce its PB version`);
  const { version } = announced;
  if (version !== PB_VERSION) throw new HandshakeError('protocol', `${who} speaks PB version ${String(version)}; the relay speaks ${PB_VERSION}`);
}

/** `["message", id, "root", "login", answer, ["tuple", name], kwargs]`: a Twisted cred login. */
function loginCall(expr: Sexp): { username: string; requestId: number } {
  const call = commandOf(expr) === 'message' ? decodeCall(expr as Sexp[]) : undefined;
  if (call?.target !== 'root' || call.method !== 'login') {
    throw new HandshakeError('protocol', 'the client\'s first PB call is not a login: the relay admits logins only');
  }
  let username: string | undefined;
  try {
    const values = unjelly(call.args);
    username = Array.isArray(values) && values.length === 1 ? toText(values[0]) : undefined;
  } catch (err) {
    throw new HandshakeError('protocol', `the client's login call cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (!username) throw new HandshakeError('protocol', 'the client\'s login call carries no worker name');
  return { username, requestId: call.requestId };
}

/** Answers the worker's login with `failure` and hangs up: the master never hears of it. */
export function refuseLogin(stream: Duplex, hello: WorkerHello, failure: PbFailure): void {
  stream.end(encodeMessage(hello.dialect === 'pb', (w) => writeError(w, hello.requestId, failure)));
}
