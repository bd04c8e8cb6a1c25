// Fuzzing with seeded random and mutated inputs: the decoder stack (Banana parser + unjelly),
// each on its own, and the relay's skimmer (against the parser) must refuse bad input only with
// BbgateErrors, quickly and in bounded memory, and a broker must survive or close with a typed
// reason. Set BBGATE_SEED to repeat a run; the generators and checks are in test/helpers/fuzz.ts,
// the long campaign is fuzz/campaign.ts (npm run fuzz).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFailure, fuzz, fuzzSeed, MAX_HEAP_BYTES, type FuzzReport } from '../helpers/fuzz.js';

const seed = fuzzSeed();

function assertClean(report: FuzzReport, inputs: number): void {
  if (report.failures.length > 0) {
    assert.fail(`seed ${seed}: ${report.failures.length + report.moreFailures} failing inputs\n\n${report.failures.map(formatFailure).join('\n\n')}`);
  }
  assert.equal(report.inputs, inputs, `seed ${seed}: the run stopped early`);
  assert.ok(report.maxHeapBytes < MAX_HEAP_BYTES);
}

describe(`fuzzing (BBGATE_SEED=${seed})`, () => {
  it('decodes 100,000 random and mutated inputs, whole and chunked, with only typed errors', async () => {
    assertClean(await fuzz('decoder', { seed, inputs: 100_000, workers: 2, maxFailures: 5 }), 100_000);
  });

  it('parses 20,000 inputs under random limits with only typed errors, delivering nothing beyond the limits', async () => {
    assertClean(await fuzz('banana', { seed, inputs: 20_000, workers: 2, maxFailures: 5 }), 20_000);
  });

  it('unjellies 5,000 random and mutated jelly trees with only typed errors, their repr within its cap', async () => {
    assertClean(await fuzz('jelly', { seed, inputs: 5000, workers: 2, maxFailures: 5 }), 5000);
  });

  it('skims 20,000 inputs to the parser\'s verdict and the heads of what it decodes', async () => {
    assertClean(await fuzz('skimmer', { seed, inputs: 20_000, workers: 2, maxFailures: 5 }), 20_000);
  });

  it('keeps client and server brokers running or closed with a typed reason under mutated PB traffic', async () => {
    assertClean(await fuzz('broker', { seed, inputs: 3000, workers: 2, maxFailures: 5 }), 3000);
  });
});
