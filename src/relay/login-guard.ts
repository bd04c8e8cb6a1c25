import { BbgateError } from '../errors.js';
import { BananaParser, commandOf, decodeReply, PbFailure, PY, unjelly, type Sexp } from '../pb/index.js';
import { CallSkimmer, type CallHead } from './call-skimmer.js';

/** The login's outcome as the master gave it: it accepted or refused the worker's password. */
export type LoginOutcome = 'accepted' | 'refused';

/**
 * Why the master refused a login, as its failure says: a wrong password or unknown name (a
 * Twisted UnauthorizedLogin), a second connection for a worker that is attached and answers
 * its ping (Buildbot's worker manager raises RuntimeError("rejecting duplicate worker")), or
 * anything else (`failure` names it).
 */
export type MasterRefusal =
  | { cause: 'password' }
  | { cause: 'duplicate' }
  | { cause: 'other'; failure: string };

export type LoginVerdict = { outcome: 'accepted' } | ({ outcome: 'refused' } & MasterRefusal);

/** What a worker may send before the master's verdict, besides its one `respond` call: answers to the master's calls while it attaches the worker, and the release of references. */
const BEFORE_VERDICT = new Set(['answer', 'error', 'decref']);
/** The two commands that call a method on the peer: the relay watches both. */
const CALLS = new Set(['message', 'cachemessage']);

/** The most the relay reads of the master's stream while waiting for its verdict on the password. */
const MAX_VERDICT_EXPRESSION = 1024 * 1024;

/**
 * Holds a relayed worker to the one login the relay admitted. The admission
 * judged the name in the first `root.login()`; PB lets a client call the
 * root again on the same connection, which would log in as any other worker
 * past the allow-list, so every call the worker makes is watched for the
 * connection's whole life (headers only: see CallSkimmer), and a second call
 * to the root ends the connection before it reaches the master. Until the
 * master has accepted the password the worker may make one call, `respond`,
 * and send nothing else but answers and decrefs; the master's answer to it
 * says whether the login counts, and if not, why.
 */
export class LoginGuard {
  outcome: LoginOutcome | undefined;
  private readonly skimmer: CallSkimmer;
  private respondId: number | undefined;
  /** The master answered the login call: from then on an answer to `respond` can only be the verdict. */
  private loginAnswered = false;
  private verdict: BananaParser | undefined;

  constructor(
    vocab: boolean,
    /** The request id of the login call the relay admitted. */
    private readonly loginId: number,
    private readonly decided: (verdict: LoginVerdict) => void,
  ) {
    this.skimmer = new CallSkimmer(vocab, (head) => this.workerCall(head));
    this.verdict = new BananaParser((expr) => this.masterReply(expr), { maxExpressionBytes: MAX_VERDICT_EXPRESSION });
    this.verdict.vocab = vocab;
  }

  /** Bytes from the worker, before they go on to the master; throws (RELAY_DENIED or a BananaError) to stop them. */
  workerBytes(chunk: Buffer): void {
    this.skimmer.feed(chunk);
  }

  /** Bytes from the master, until its verdict on the password; they go on to the worker either way. */
  masterBytes(chunk: Buffer): void {
    try {
      this.verdict?.feed(chunk);
    } catch (err) {
      // The parser reads the rest of the chunk that held the verdict; after it, nothing is ours to judge.
      if (this.outcome === undefined) throw err;
    }
  }

  get watchingMaster(): boolean {
    return this.verdict !== undefined;
  }

  /** The worker has answered the master's challenge: only the master's verdict is awaited now. */
  get answeredChallenge(): boolean {
    return this.respondId !== undefined;
  }

  /** What the undecided login waits for: a login that takes too long names the side that stalled. */
  get awaiting(): string {
    if (!this.loginAnswered) return 'the master\'s challenge (its answer to the login)';
    if (!this.answeredChallenge) return 'the worker\'s respond() to the master\'s challenge';
    return 'the master\'s verdict on the password';
  }

  /**
   * A `cachemessage` calls a method as a `message` does (on a cached copy), so both are held to
   * one login. Before the verdict, only `respond` (a plain message to the challenger, which
   * is no cached object), answers, errors and decrefs go on: anything else is no part of a login.
   */
  private workerCall(head: CallHead): void {
    const command = head.command ?? 'a list without a command';
    if (!CALLS.has(command)) {
      if (this.outcome === undefined && !BEFORE_VERDICT.has(command)) {
        throw new BbgateError('RELAY_DENIED', `the worker sent "${command}" before the master accepted its password`);
      }
      return;
    }
    if (head.target === 'root') {
      throw new BbgateError('RELAY_DENIED', `the worker called the root object's ${head.method ?? 'unknown'}() after its login: the relay admits one login per connection`);
    }
    if (this.outcome === 'accepted') return;
    if (this.outcome === 'refused') throw new BbgateError('RELAY_DENIED', 'the worker made a call after the master refused its password');
    if (command !== 'message') throw new BbgateError('RELAY_DENIED', `the worker sent a ${command} before the master accepted its password`);
    if (head.method !== 'respond' || this.respondId !== undefined || head.requestId === undefined) {
      throw new BbgateError('RELAY_DENIED', `the worker called ${head.method ?? 'an unknown method'}() before the master accepted its password`);
    }
    // The verdict is told apart by its request id: one the login used, or no answer at all, would blur it.
    if (head.requestId === this.loginId || head.answerRequired !== 1) {
      throw new BbgateError('RELAY_DENIED', 'the worker\'s respond() reuses its login\'s request id or asks for no answer');
    }
    this.respondId = head.requestId;
  }

  private masterReply(expr: Sexp): void {
    if (this.outcome !== undefined) return;
    const command = commandOf(expr);
    const reply = command === 'answer' || command === 'error' ? decodeReply(expr as Sexp[]) : undefined;
    if (!reply) return;
    if (reply.requestId === this.loginId) {
      this.loginAnswered = true;
      return;
    }
    if (!this.loginAnswered || this.respondId === undefined || reply.requestId !== this.respondId) return;
    this.outcome = command === 'answer' ? 'accepted' : 'refused';
    this.verdict = undefined;
    this.decided(command === 'answer' ? { outcome: 'accepted' } : { outcome: 'refused', ...masterRefusal(reply.body) });
  }
}

/** Reads the failure the master answered `respond` with; what cannot be read is an "other" refusal, never a crash. */
export function masterRefusal(jellied: Sexp | undefined): MasterRefusal {
  let failure: unknown;
  try {
    failure = jellied === undefined ? undefined : unjelly(jellied);
  } catch (err) {
    return { cause: 'other', failure: `an unreadable failure (${(err as Error).message})` };
  }
  if (!(failure instanceof PbFailure)) return { cause: 'other', failure: 'an error that is no Twisted failure' };
  if (failure.check(PY.UnauthorizedLogin)) return { cause: 'password' };
  if (failure.type === PY.RuntimeError && failure.value === DUPLICATE_WORKER) return { cause: 'duplicate' };
  return { cause: 'other', failure: `${failure.type}: ${failure.value}` };
}

/** The text of Buildbot's refusal of a second connection for an attached worker (buildbot/worker/manager.py, protocols/base.py). */
const DUPLICATE_WORKER = 'rejecting duplicate worker';
