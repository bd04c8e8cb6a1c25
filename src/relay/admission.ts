/**
 * Who may log in through the relay, and how many at once per worker name: a listener's
 * certNames=1, the allow-list, then --max-per-worker with its ledger of slots. Bookkeeping only:
 * no sockets, clock, metrics or log. The relay's metrics and log observe its events, and a
 * connection answers the worker with the refusal it is handed.
 */
import { notAllowed, type AllowList } from './policy.js';

/** A login as the relay sees it once the worker has named itself. */
export interface LoginRequest {
  worker: string;
  /** The address its socket reports (or a PROXY header named): what allow rules' sources match. */
  address: string;
  /** HOST:PORT, for whoever observes the events. */
  peer: string;
  listener: string;
  /** The names its client certificate gives it, on a listener with certNames=1; absent elsewhere. */
  certificateNames?: string[];
}

/** What holds a slot: the ledger asks whether it has proven itself, and ends it when displaced. */
export interface Claimant {
  /** It has not shown that it knows the password: a newer login for the same name may take its slot. */
  readonly unproven: boolean;
  close(reason: string): void;
}

export type DenialReason = 'not_listed' | 'source_address' | 'certificate_name' | 'worker_limit';

/**
 * `message` is what the worker is told: for RELAY_DENIED the same whatever the reason, so that a
 * stranger learns nothing of the policy. `detail` says why, for the relay's own log.
 */
export interface AdmissionRefusal {
  code: 'RELAY_DENIED' | 'RELAY_LIMIT';
  reason: DenialReason;
  message: string;
  detail: string;
}

/** A place held under a limit (here one of a name's --max-per-worker); release gives it back once, however often it is called. */
export interface Slot {
  release(): void;
}

export type AdmissionResult =
  | { admitted: true; rule: string; slot: Slot }
  | { admitted: false; refusal: AdmissionRefusal };

/** What the relay's metrics and log observe. */
export interface AdmissionEvents {
  admitted(login: LoginRequest, rule: string): void;
  refused(login: LoginRequest, refusal: AdmissionRefusal): void;
  /** `holder` lost its slot to `by` (it had not answered the master's challenge) and is being closed. */
  displaced(holder: LoginRequest, by: LoginRequest): void;
}

interface Holder {
  login: LoginRequest;
  claimant: Claimant;
}

export class WorkerAdmission {
  /** Slots held per worker name, oldest first; a name holding none has no entry. */
  private readonly ledger = new Map<string, Holder[]>();

  constructor(
    private readonly allowList: AllowList,
    private readonly maxPerWorker: number,
    private readonly events: AdmissionEvents,
  ) {}

  /**
   * The certificate's names, the allow-list, then the per-worker limit. A refusal leaves the
   * ledger as it was; an admission holds a slot until it is released.
   */
  admit(login: LoginRequest, claimant: Claimant): AdmissionResult {
    const checked = this.check(login);
    if ('refusal' in checked) return this.refuse(login, checked.refusal);
    const claimed = this.claim(login, claimant);
    if ('refusal' in claimed) return this.refuse(login, claimed.refusal);
    this.events.admitted(login, checked.rule);
    return { admitted: true, rule: checked.rule, slot: claimed.slot };
  }

  /** Slots `worker` holds now. */
  holding(worker: string): number {
    return this.ledger.get(worker)?.length ?? 0;
  }

  /** Whether the name may log in from there at all; the ledger is not consulted. */
  check(login: LoginRequest): { rule: string } | { refusal: AdmissionRefusal } {
    const { worker, certificateNames: names } = login;
    if (names && !names.includes(worker)) {
      const listed = names.length ? names.map((n) => JSON.stringify(n)).join(', ') : 'which names none';
      const detail = `worker ${JSON.stringify(worker)} is not a name in its client certificate (${listed}; certNames=1)`;
      return { refusal: { code: 'RELAY_DENIED', reason: 'certificate_name', message: notAllowed(worker), detail } };
    }
    const verdict = this.allowList.check(worker, login.address);
    if (!verdict.allowed) return { refusal: { code: 'RELAY_DENIED', reason: verdict.reason, message: verdict.message, detail: verdict.detail } };
    return { rule: verdict.rule };
  }

  /**
   * Takes one of the name's --max-per-worker slots, or says why not. Logins still awaiting the
   * master count, so that 300 `login(name)` calls cannot hold 300 master connections; but a slot
   * held by a login that has not answered the master's challenge (anyone can name a worker) goes
   * to the newer login, the oldest such first, so that clients that only name a worker cannot
   * lock it out: a real worker answers its challenge within a round trip. Only logins that
   * answered (the master is judging a password) and logged-in workers keep theirs.
   */
  claim(login: LoginRequest, claimant: Claimant): { slot: Slot } | { refusal: AdmissionRefusal } {
    const { worker } = login;
    const held = this.ledger.get(worker) ?? [];
    if (held.length >= this.maxPerWorker) {
      const squatter = held.find((h) => h.claimant.unproven);
      if (!squatter) {
        const live = held.length;
        const message = `worker "${worker}" already has ${live} connection${live === 1 ? '' : 's'} through this relay (the limit is ${this.maxPerWorker})`;
        return { refusal: { code: 'RELAY_LIMIT', reason: 'worker_limit', message, detail: message } };
      }
      // Its slot is free before it is told, so the ledger stays right whatever closing it does.
      this.remove(squatter);
      this.events.displaced(squatter.login, login);
      squatter.claimant.close(`displaced by a newer login for worker "${worker}" from ${login.peer}: it had not answered the master's challenge (--max-per-worker ${this.maxPerWorker})`);
    }
    const holder: Holder = { login, claimant };
    this.ledger.set(worker, [...(this.ledger.get(worker) ?? []), holder]);
    return { slot: { release: () => this.remove(holder) } };
  }

  private refuse(login: LoginRequest, refusal: AdmissionRefusal): AdmissionResult {
    this.events.refused(login, refusal);
    return { admitted: false, refusal };
  }

  private remove(holder: Holder): void {
    const { worker } = holder.login;
    const left = (this.ledger.get(worker) ?? []).filter((h) => h !== holder);
    if (left.length) this.ledger.set(worker, left);
    else this.ledger.delete(worker);
  }
}
