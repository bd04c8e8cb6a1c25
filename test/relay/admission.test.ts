// The relay's admission without sockets: every rule admitted and refused, the refusal's uniform
// text, --max-per-worker counting logins that await the master, displacement of unproven
// logins, slots given back once on every path, and the events metrics and the log observe.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkerAdmission, type AdmissionEvents, type AdmissionRefusal, type Claimant, type LoginRequest, type Slot } from '../../src/relay/admission.js';
import { reportAdmission } from '../../src/relay/admission-report.js';
import { RelayMetrics } from '../../src/relay/metrics.js';
import { AllowList, notAllowed, type AllowRule } from '../../src/relay/policy.js';

const SOMEWHERE = '192.0.2.7';

function login(worker: string, more: Partial<LoginRequest> = {}): LoginRequest {
  return { worker, address: SOMEWHERE, peer: `${SOMEWHERE}:40000`, listener: 'tcp:9989', ...more };
}

/** A connection as the ledger sees it: unproven until told otherwise; closing gives its slot back, as a connection's close does. */
class FakeClaimant implements Claimant {
  unproven = true;
  closedWith: string | undefined;
  slot: Slot | undefined;
  close(reason: string): void {
    this.closedWith ??= reason;
    this.slot?.release();
  }
}

function setup(rules: AllowRule[] = [{ pattern: '*' }], maxPerWorker = 2) {
  const events: string[] = [];
  const observer: AdmissionEvents = {
    admitted: (l, rule) => events.push(`admitted ${l.worker} from ${l.peer} by ${rule}`),
    refused: (l, r) => events.push(`refused ${l.worker} ${r.code} ${r.reason}`),
    displaced: (holder, by) => events.push(`displaced ${holder.worker} at ${holder.peer} by ${by.peer}`),
  };
  const admission = new WorkerAdmission(new AllowList(rules), maxPerWorker, observer);
  /** Admits a fresh claimant (which then holds its slot), or returns the refusal. */
  const claim = (request: LoginRequest): FakeClaimant | AdmissionRefusal => {
    const claimant = new FakeClaimant();
    const result = admission.admit(request, claimant);
    if (!result.admitted) return result.refusal;
    claimant.slot = result.slot;
    return claimant;
  };
  const admitted = (request: LoginRequest): FakeClaimant => {
    const c = claim(request);
    assert.ok(c instanceof FakeClaimant, `refused: ${JSON.stringify(c)}`);
    return c;
  };
  return { admission, events, claim, admitted };
}

describe('admission rules', () => {
  it('admits a listed name and says by which rule', () => {
    const { admission, events, admitted } = setup([{ pattern: 'build-*' }]);
    admitted(login('build-1'));
    assert.deepEqual(events, ['admitted build-1 from 192.0.2.7:40000 by build-*']);
    assert.equal(admission.holding('build-1'), 1);
  });

  it('refuses a name not on the allow-list, telling the worker only that it is not allowed', () => {
    const { admission, events, claim } = setup([{ pattern: 'build-*' }]);
    assert.deepEqual(claim(login('intruder')), {
      code: 'RELAY_DENIED',
      reason: 'not_listed',
      message: notAllowed('intruder'),
      detail: `worker "intruder" is not on this relay's allow-list`,
    });
    assert.deepEqual(events, ['refused intruder RELAY_DENIED not_listed']);
    assert.equal(admission.holding('intruder'), 0);
  });

  it('refuses a listed name from an address its rule does not allow, with the same words to the worker', () => {
    const { claim, admitted } = setup([{ pattern: 'w', from: ['10.0.0.0/8'] }]);
    assert.deepEqual(claim(login('w')), {
      code: 'RELAY_DENIED',
      reason: 'source_address',
      message: notAllowed('w'),
      detail: 'worker "w" may only connect from 10.0.0.0/8, not from 192.0.2.7',
    });
    admitted(login('w', { address: '::ffff:10.1.2.3' }));
  });

  it('certNames=1: admits a name the certificate carries, refuses another before the allow-list is asked', () => {
    const { events, claim, admitted } = setup([{ pattern: 'build-*' }]);
    admitted(login('build-1', { certificateNames: ['build-0', 'build-1'] }));
    assert.deepEqual(claim(login('build-2', { certificateNames: ['build-0', 'build-1'] })), {
      code: 'RELAY_DENIED',
      reason: 'certificate_name',
      message: notAllowed('build-2'),
      detail: 'worker "build-2" is not a name in its client certificate ("build-0", "build-1"; certNames=1)',
    });
    // Not listed either: the certificate's refusal is the one given.
    assert.deepEqual(claim(login('stranger', { certificateNames: [] })), {
      code: 'RELAY_DENIED',
      reason: 'certificate_name',
      message: notAllowed('stranger'),
      detail: 'worker "stranger" is not a name in its client certificate (which names none; certNames=1)',
    });
    assert.deepEqual(events.slice(1), ['refused build-2 RELAY_DENIED certificate_name', 'refused stranger RELAY_DENIED certificate_name']);
  });

  it('without certNames=1 a certificate is not consulted', () => {
    const { admitted } = setup();
    admitted(login('anyone'));
  });

  it('check() judges the name alone and holds nothing', () => {
    const { admission, events } = setup([{ pattern: 'a' }], 1);
    assert.deepEqual(admission.check(login('a')), { rule: 'a' });
    assert.deepEqual(admission.check(login('a')), { rule: 'a' });
    assert.equal(admission.holding('a'), 0);
    assert.deepEqual(events, []);
  });
});

describe('--max-per-worker', () => {
  it('counts logins still awaiting the master, and refuses past the limit with the count', () => {
    const { admission, events, claim, admitted } = setup(undefined, 2);
    const first = admitted(login('w'));
    const second = admitted(login('w'));
    first.unproven = false;
    second.unproven = false;
    assert.deepEqual(claim(login('w')), {
      code: 'RELAY_LIMIT',
      reason: 'worker_limit',
      message: 'worker "w" already has 2 connections through this relay (the limit is 2)',
      detail: 'worker "w" already has 2 connections through this relay (the limit is 2)',
    });
    assert.equal(admission.holding('w'), 2);
    assert.equal(events.at(-1), 'refused w RELAY_LIMIT worker_limit');
    assert.equal(first.closedWith, undefined);
  });

  it('says "1 connection" at a limit of one, and counts each name apart', () => {
    const { claim, admitted } = setup(undefined, 1);
    admitted(login('w')).unproven = false;
    admitted(login('v')).unproven = false;
    assert.equal((claim(login('w')) as AdmissionRefusal).message, 'worker "w" already has 1 connection through this relay (the limit is 1)');
  });

  it('a released slot is free again; releasing twice frees one slot, not another\'s', () => {
    const { admission, admitted, claim } = setup(undefined, 2);
    const a = admitted(login('w'));
    const b = admitted(login('w'));
    a.unproven = b.unproven = false;
    a.slot!.release();
    a.slot!.release();
    assert.equal(admission.holding('w'), 1);
    const c = admitted(login('w'));
    c.unproven = false;
    assert.equal(admission.holding('w'), 2);
    assert.equal((claim(login('w')) as AdmissionRefusal).code, 'RELAY_LIMIT');
    b.slot!.release();
    c.slot!.release();
    assert.equal(admission.holding('w'), 0);
  });

  it('a refused login holds no slot', () => {
    const { admission, claim, admitted } = setup([{ pattern: 'w', from: ['10.0.0.0/8'] }], 1);
    claim(login('w'));
    assert.equal(admission.holding('w'), 0);
    admitted(login('w', { address: '10.0.0.1' }));
  });
});

describe('displacement of logins that have not answered the master\'s challenge', () => {
  it('the newer login takes the oldest unproven slot; the displaced one is closed and told why', () => {
    const { admission, events, admitted } = setup(undefined, 2);
    const oldest = admitted(login('w', { peer: '192.0.2.1:1' }));
    const proven = admitted(login('w', { peer: '192.0.2.2:2' }));
    proven.unproven = false;
    const newer = admitted(login('w', { peer: '192.0.2.3:3' }));
    assert.equal(oldest.closedWith, 'displaced by a newer login for worker "w" from 192.0.2.3:3: it had not answered the master\'s challenge (--max-per-worker 2)');
    assert.equal(proven.closedWith, undefined);
    assert.equal(newer.closedWith, undefined);
    assert.equal(admission.holding('w'), 2);
    assert.deepEqual(events.slice(2), ['displaced w at 192.0.2.1:1 by 192.0.2.3:3', 'admitted w from 192.0.2.3:3 by *']);
  });

  it('a flood of logins that only name a worker never holds more than the limit, and the real one gets in', () => {
    const { admission, admitted } = setup(undefined, 1);
    const squatters = Array.from({ length: 30 }, () => admitted(login('w')));
    assert.equal(admission.holding('w'), 1);
    assert.equal(squatters.filter((s) => s.closedWith !== undefined).length, 29);
    const real = admitted(login('w'));
    assert.ok(squatters.at(-1)!.closedWith);
    real.unproven = false;
    assert.equal(admission.holding('w'), 1);
  });

  it('the ledger is right even when the displaced one does not give its slot back, or fails to close', () => {
    const { admission, admitted } = setup(undefined, 1);
    const silent = admitted(login('w'));
    silent.slot = undefined; // closes without releasing
    const next = admitted(login('w'));
    assert.ok(silent.closedWith);
    assert.equal(admission.holding('w'), 1);
    next.close = () => {
      throw new Error('boom');
    };
    const claimant = new FakeClaimant();
    assert.throws(() => admission.admit(login('w'), claimant), /boom/);
    // The displaced slot was freed first; the login whose admission threw holds none.
    assert.equal(admission.holding('w'), 0);
  });

  it('a late release of a displaced slot frees nothing of the newer login\'s', () => {
    const { admission, admitted } = setup(undefined, 1);
    const old = admitted(login('w'));
    const oldSlot = old.slot!;
    old.slot = undefined;
    admitted(login('w')).unproven = false;
    oldSlot.release();
    assert.equal(admission.holding('w'), 1);
  });
});

describe('what metrics and the log observe', () => {
  async function sample(metrics: RelayMetrics, labels: { result: string; reason: string }): Promise<number> {
    const { values } = await metrics.logins.get();
    return values.find((v) => v.labels.result === labels.result && v.labels.reason === labels.reason)?.value ?? 0;
  }

  it('each event is one counter and at most one log line, with the fields the relay logs', async () => {
    const metrics = new RelayMetrics(() => ({ toMaster: 0, toWorker: 0 }));
    const lines: { level: string; fields: object; message: string }[] = [];
    const log = (level: string) => (fields: object, message: string) => void lines.push({ level, fields, message });
    const admission = new WorkerAdmission(new AllowList([{ pattern: 'w' }]), 1, reportAdmission(metrics, { info: log('info'), warn: log('warn'), error: log('error') }));
    const first = new FakeClaimant();
    const a = admission.admit(login('w', { peer: 'a:1' }), first);
    assert.ok(a.admitted);
    first.slot = a.slot;
    admission.admit(login('w', { peer: 'b:2' }), new FakeClaimant());
    admission.admit(login('x'), new FakeClaimant());
    assert.equal(await sample(metrics, { result: 'admitted', reason: 'allowed' }), 2);
    assert.equal(await sample(metrics, { result: 'displaced', reason: 'newer_login' }), 1);
    assert.equal(await sample(metrics, { result: 'denied', reason: 'not_listed' }), 1);
    assert.deepEqual(lines, [
      { level: 'info', fields: { worker: 'w', peer: 'a:1', listener: 'tcp:9989', rule: 'w' }, message: 'worker admitted' },
      { level: 'warn', fields: { worker: 'w', peer: 'a:1', listener: 'tcp:9989', by: 'b:2' }, message: 'login displaced by a newer one for the same worker' },
      { level: 'info', fields: { worker: 'w', peer: 'b:2', listener: 'tcp:9989', rule: 'w' }, message: 'worker admitted' },
    ]);
  });
});
