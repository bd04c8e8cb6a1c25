// The long fuzzing campaign (npm run fuzz): test/helpers/fuzz.ts's generators and checks, run
// for a count of inputs (or a time) per target, on worker threads. It lives outside test/
// because `node --test dist/test/` runs every .js file under a directory named "test".
//
//   node dist/fuzz/campaign.js [--inputs N | --seconds S] [--targets banana,jelly,skimmer] [--seed S] [--workers K]
//   node dist/fuzz/campaign.js --seed S --replay TARGET:INDEX
//
// Targets: banana (the parser alone, with small limits too), jelly (unjelly alone, and the
// worker's repr of what it builds), skimmer (the relay's skimmer against the parser), decoder
// (parser + unjelly, whole and chunked) and broker (whole brokers under mutated PB traffic).
// For each target it prints the inputs, the time, every distinct outcome (accepted, or the
// error code the input was refused with) and the crashes: exceptions that are not BbgateErrors.
// Every failure is printed with the command that replays it.
import { availableParallelism, cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { CRASH, formatFailure, fuzz, fuzzSeed, replay, TARGET_NAMES, type FuzzFailure, type FuzzReport, type TargetName } from '../test/helpers/fuzz.js';

const USAGE = 'usage: node dist/fuzz/campaign.js [--inputs N | --seconds S] [--targets a,b,...] [--seed S] [--workers K] [--replay TARGET:INDEX]';
const DEFAULT_TARGETS: TargetName[] = ['banana', 'jelly', 'skimmer'];

const { values } = parseArgs({
  options: {
    inputs: { type: 'string' },
    seconds: { type: 'string' },
    targets: { type: 'string' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    replay: { type: 'string' },
  },
});

function usage(problem: string): never {
  console.error(`${problem}\n${USAGE}\ntargets: ${TARGET_NAMES.join(', ')}`);
  process.exit(2);
}

const isTarget = (name: string): name is TargetName => (TARGET_NAMES as string[]).includes(name);
const seed = values.seed === undefined ? fuzzSeed() : Number(values.seed);
if (!Number.isInteger(seed)) usage('--seed must be an integer');

if (values.replay !== undefined) {
  const [name = '', indexText = ''] = values.replay.split(':');
  const index = Number(indexText);
  if (!isTarget(name) || !Number.isInteger(index) || index < 0) usage('--replay takes TARGET:INDEX, as a failure report prints it');
  const checked = await replay(name, seed, index);
  console.log(`${name} input #${index} of seed ${seed}: outcome ${checked.outcome}, ${checked.problem ? `FAILS: ${checked.problem}` : 'passes'}`);
  console.log(`  ${checked.input.kind}\n  ${checked.input.setting}\n  hex: ${checked.input.hex}`);
  process.exit(checked.problem ? 1 : 0);
}

const targets = values.targets === undefined ? DEFAULT_TARGETS : values.targets.split(',');
const unknown = targets.filter((t) => !isTarget(t));
if (unknown.length > 0) usage(`unknown target ${unknown.join(', ')}`);
const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
const inputs = values.inputs === undefined ? (seconds === undefined ? 1_000_000 : undefined) : Number(values.inputs);
const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
if (seconds !== undefined && !(seconds > 0)) usage('--seconds must be positive');
if (inputs !== undefined && !(Number.isInteger(inputs) && inputs > 0)) usage('--inputs must be a positive integer');
if (!Number.isInteger(workers) || workers < 1) usage('--workers must be a positive integer');

const budget = [inputs === undefined ? undefined : `${inputs} inputs`, seconds === undefined ? undefined : `${seconds} s`].filter(Boolean).join(' or ');
console.log(`fuzzing ${targets.join(', ')}: ${budget} each, seed ${seed}, ${workers} worker threads`);
console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);

const failures: FuzzFailure[] = [];
let more = 0;
for (const name of targets as TargetName[]) {
  const started = performance.now();
  const progress = setInterval(() => console.log(`  ${name}: ${done} inputs after ${((performance.now() - started) / 1000).toFixed(0)} s`), 30_000);
  let done = 0;
  const report = await fuzz(name, { seed, inputs, seconds, workers, onProgress: (n) => (done = n) });
  clearInterval(progress);
  console.log(summary(name, report));
  failures.push(...report.failures);
  more += report.moreFailures;
}

function summary(name: string, r: FuzzReport): string {
  const outcomes = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]);
  const crashes = (r.outcomes[CRASH] ?? 0) + r.failures.filter((f) => f.problem.startsWith('the worker died')).length;
  return `${name}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${(r.inputs / r.seconds).toFixed(0)}/s), ` +
    `${outcomes.length} distinct outcomes, ${crashes} crashes, ${r.failures.length + r.moreFailures} failures; ` +
    `slowest input ${r.slowestMs.toFixed(1)} ms, heap up to ${(r.maxHeapBytes / 2 ** 20).toFixed(0)} MiB\n` +
    `  outcomes: ${outcomes.map(([outcome, n]) => `${outcome} ${n}`).join(', ')}`;
}

for (const f of failures) {
  console.log(`\nFAILURE ${formatFailure(f)}\n  replay: node dist/fuzz/campaign.js --seed ${f.seed} --replay ${f.target}:${f.index}`);
}
if (more > 0) console.log(`\n... and ${more} more failures`);
console.log(`\nseed ${seed}: node dist/fuzz/campaign.js --seed ${seed} ${inputs === undefined ? '' : `--inputs ${inputs} `}${seconds === undefined ? '' : `--seconds ${seconds} `}--targets ${targets.join(',')} repeats this run`);
process.exitCode = failures.length + more > 0 ? 1 : 0;
