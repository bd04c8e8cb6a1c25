// The long fuzzing campaign (npm run fuzz): test/pb/fuzz.test.ts's generators and checks, run
// until time is up, decoders and brokers on worker threads. It lives outside
// test/ because `node --test dist/test/` runs every .js file under a directory named "test".
//
//   node dist/fuzz/campaign.js [--seconds N] [--seed S] [--workers K]
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { formatFailure, fuzz, fuzzSeed, type FuzzReport } from '../test/helpers/fuzz.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string' },
    workers: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const seed = values.seed === undefined ? fuzzSeed() : Number(values.seed);
const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
if (!(seconds > 0) || !Number.isInteger(seed) || !Number.isInteger(workers) || workers < 1) {
  console.error('usage: node dist/fuzz/campaign.js [--seconds N] [--seed S] [--workers K]');
  process.exit(2);
}

console.log(`fuzzing for ${seconds} s, seed ${seed} (--seed ${seed} repeats it), ${workers} decoder workers and one broker worker`);
const started = performance.now();
let decoded = 0;
let brokered = 0;
const progress = setInterval(() => {
  const s = (performance.now() - started) / 1000;
  console.log(`${s.toFixed(0)} s: ${decoded} decoder inputs (${(decoded / s).toFixed(0)}/s), ${brokered} broker cases (${(brokered / s).toFixed(0)}/s)`);
}, 10_000);
const [decoders, brokers] = await Promise.all([
  fuzz('decoder', { seed, seconds, workers, onProgress: (n) => (decoded = n) }),
  fuzz('broker', { seed, seconds, workers: 1, onProgress: (n) => (brokered = n) }),
]);
clearInterval(progress);

const summary = (what: string, r: FuzzReport) =>
  `${what}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${(r.inputs / r.seconds).toFixed(0)} inputs/s), ` +
  `slowest ${r.slowestMs.toFixed(1)} ms, heap up to ${(r.maxHeapBytes / 2 ** 20).toFixed(0)} MiB, ${r.failures.length + r.moreFailures} failures`;
console.log(summary('decoder stack', decoders));
console.log(summary('brokers', brokers));
const failures = [...decoders.failures, ...brokers.failures];
for (const f of failures) console.log(`\nFAILURE ${formatFailure(f)}`);
const more = decoders.moreFailures + brokers.moreFailures;
if (more > 0) console.log(`\n... and ${more} more failures`);
process.exitCode = failures.length > 0 ? 1 : 0;
