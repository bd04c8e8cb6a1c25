import { BbgateError } from '../errors.js';
import { BananaParser } from '../pb/banana/parser.js';
import { CallSkimmer, type CallHead } from './call-skimmer.js';

/** The login's outcome as the master gave it: it accepted or refused the worker's password. */
export type LoginOutcome = 'accepted' | 'refused';

/** The most the relay reads of the master's stream while waiting for its verdict on the password. */
const MAX_VERDICT_EXPRESSION = 1024 * 1024;

/**
 * Holds a relayed worker to the one login the relay admitted. The admission
 * judged the name in the first `root.login()`; PB lets a client call the
 * root again on the same connection, which would log in as any other worker
 * past the allow-list, so every call the worker makes is watched for the
 * connection's whole life (headers only: see CallSkimmer), and a second call
 * to the root ends the connection before it reaches the master. Until the
 * master has accepted the password the worker may make one call, `respond`;
 * the master's answer to it says whether the login counts.
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
    private readonly decided: (outcome: LoginOutcome) => void,
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

  /** What the undecided login waits for: a login that takes too long names the side that stalled. */
  get awaiting(): string {
    if (!this.loginAnswered) return 'the master\'s challenge (its answer to the login)';
    if (this.respondId === undefined) return 'the worker\'s respond() to the master\'s challenge';
    return 'the master\'s verdict on the password';
  }

  private workerCall(head: CallHead): void {
    if (head.command !== 'message') return;
    if (head.target === 'root') {
      throw new BbgateError('RELAY_DENIED', `the worker called the root object's ${head.method ?? 'unknown'}() after its login: the relay admits one login per connection`);
    }
    if (this.outcome === 'accepted') return;
    if (this.outcome === 'refused') throw new BbgateError('RELAY_DENIED', 'the worker made a call after the master refused its password');
    if (head.method !== 'respond' || this.respondId !== undefined || head.requestId === undefined) {
      throw new BbgateError('RELAY_DENIED', `the worker called ${head.method ?? 'an unknown method'}() before the master accepted its password`);
    }
    // The verdict is told apart by its request id: one the login used, or no answer at all, would blur it.
    if (head.requestId === this.loginId || head.answerRequired !== 1) {
      throw new BbgateError('RELAY_DENIED', 'the worker\'s respond() reuses its login\'s request id or asks for no answer');
    }
    this.respondId = head.requestId;
  }

  private masterReply(expr: unknown): void {
    if (this.outcome !== undefined || !Array.isArray(expr)) return;
    const command = expr[0] instanceof Uint8Array ? Buffer.from(expr[0]).toString('latin1') : '';
    if (command !== 'answer' && command !== 'error') return;
    if (expr[1] === this.loginId) {
      this.loginAnswered = true;
      return;
    }
    if (!this.loginAnswered || this.respondId === undefined || expr[1] !== this.respondId) return;
    this.outcome = command === 'answer' ? 'accepted' : 'refused';
    this.verdict = undefined;
    this.decided(this.outcome);
  }
}
