// Banana + jelly throughput on what a Buildbot worker sends while a shell step runs (its
// `update` calls), for bbgate and for real Twisted (bench/twisted_banana.py) in the same run.
//
//   node dist/bench/banana.js [--messages N] [--seconds S]
//
// Encode: jelly + Banana of every message, through the encoder Broker.callRemote uses (writeCall).
// Decode: Banana fed in 64 KiB chunks, as from a socket, and unjelly of each call's arguments and keywords.
// Rates are bytes per CPU second of each side's process, so that a loaded machine moves them little.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { BananaParser } from '../src/pb/banana/parser.js';
import { BananaWriter, type Sexp } from '../src/pb/banana/writer.js';
import { unjelly } from '../src/pb/jelly/decode.js';
import { writeCall } from '../src/pb/messages.js';
import { Tuple, type PbValue } from '../src/pb/values/values.js';
import { PYTHON } from '../test/helpers/python.js';
import { int, pick, rng, type Rng } from '../test/helpers/random-values.js';
import { logText } from './step-log.js';
import { toTagged } from '../test/helpers/tagged.js';

const { values: options } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '3' },
  },
});
const MESSAGES = Number(options.messages);
const SECONDS = Number(options.seconds);
const CHUNK = 64 * 1024;

interface Update {
  requestId: number;
  luid: number;
  /** The call's argument tuple: `(updates,)` with `updates = [[{key: value}, 0]]`, as buildbot-worker sends it. */
  args: Tuple<unknown>;
}

// ---- A deterministic update stream ------------------------------------------

/** Mostly small chunks, some up to the 64 KiB buildbot-worker reads at once. */
function chunkLength(r: Rng): number {
  const roll = r();
  if (roll < 0.5) return 80 + int(r, 2000);
  if (roll < 0.8) return 2048 + int(r, 14 * 1024);
  return 16 * 1024 + int(r, 48 * 1024);
}

function header(r: Rng): string {
  const target = pick(r, ['all', 'check', 'install']);
  return [
    `make -j8 ${target}`,
    ` in dir /home/buildbot/worker/linux-x86_64/build (timeout 1200 secs)`,
    ` watching logfiles {}`,
    ` argv: [b'make', b'-j8', b'${target}']`,
    ` environment:`,
    `  HOME=/home/buildbot`,
    `  LANG=C.UTF-8`,
    `  PATH=/usr/local/bin:/usr/bin:/bin`,
    `  PWD=/home/buildbot/worker/linux-x86_64/build`,
    ` using PTY: False`,
    '',
  ].join('\n');
}

/** Steps one after another: a header, stdout and some stderr, then rc and elapsed. */
function updateStream(count: number): Update[] {
  const r = rng(20240501);
  const updates: Update[] = [];
  let requestId = 100;
  let luid = 7;
  const push = (key: string, value: unknown) => {
    if (updates.length < count) updates.push({ requestId: requestId++, luid, args: Tuple.from([[[{ [key]: value }, 0]]]) });
  };
  while (updates.length < count) {
    push('header', header(r));
    for (let n = 20 + int(r, 40); n > 0; n--) push(r() < 0.9 ? 'stdout' : 'stderr', logText(r, chunkLength(r)));
    push('rc', int(r, 5) === 0 ? 2 : 0);
    push('elapsed', 1 + int(r, 600) + 0.125 + r() / 2);
    luid++;
  }
  return updates;
}

// ---- bbgate -----------------------------------------------------------------------

function encode(updates: Update[]): Buffer[] {
  const w = new BananaWriter();
  w.vocab = true;
  const out: Buffer[] = [];
  for (const u of updates) {
    writeCall(w, u.requestId, u.luid, 'update', u.args, {});
    out.push(w.take());
  }
  return out;
}

/** Hands each call's arguments to `onCall`, which may drop them as a broker serving the call would. */
function decode(stream: Buffer, onCall: (args: PbValue, kwargs: PbValue) => void): void {
  const parser = new BananaParser((expr) => {
    const message = expr as Sexp[];
    onCall(unjelly(message[5]!), unjelly(message[6]!));
  });
  parser.vocab = true;
  for (let i = 0; i < stream.length; i += CHUNK) parser.feed(stream.subarray(i, i + CHUNK));
}

/** Banana framing alone: expressions are built and dropped, nothing is unjellied. */
function frame(stream: Buffer): void {
  const parser = new BananaParser(() => undefined);
  parser.vocab = true;
  for (let i = 0; i < stream.length; i += CHUNK) parser.feed(stream.subarray(i, i + CHUNK));
}

/**
 * Bytes per CPU second (user + system, every thread of this process) over whole passes, repeated
 * for at least `seconds` of CPU time: CPU time, unlike the clock, barely moves when other
 * processes share the machine. Twisted's side is timed the same way (time.process_time).
 */
function rate(run: () => unknown, bytes: number, seconds: number): number {
  let passes = 0;
  const started = process.cpuUsage();
  for (;;) {
    run();
    passes++;
    const used = process.cpuUsage(started);
    const elapsed = (used.user + used.system) / 1e6;
    if (elapsed >= seconds) return (passes * bytes) / elapsed;
  }
}

// ---- The run ---------------------------------------------------------------------------

/**
 * The stream must decode to what was encoded. Each call is compared as it
 * arrives and dropped: keeping them all makes V8 pretenure unjelly's
 * containers, which halves every decode measured afterwards.
 */
function checkDecode(updates: Update[], stream: Buffer): void {
  let i = 0;
  decode(stream, (args) => {
    if (!isDeepStrictEqual(toTagged(args), toTagged(updates[i]!.args))) throw new Error(`bbgate decodes update ${i} differently`);
    i++;
  });
  if (i !== updates.length) throw new Error(`bbgate decoded ${i} of ${updates.length} updates`);
}

const updates = updateStream(MESSAGES);
const stream = Buffer.concat(encode(updates));
checkDecode(updates, stream);

const dir = mkdtempSync(join(tmpdir(), 'bbgate-bench-'));
let twisted: { bytes: number; identical: boolean; encode: number; decode: number; frame: number };
try {
  const messages = join(dir, 'messages.json');
  const ours = join(dir, 'stream.bin');
  writeFileSync(messages, JSON.stringify(updates.map((u) => [u.requestId, u.luid, toTagged(u.args)])));
  writeFileSync(ours, stream);
  const script = fileURLToPath(new URL('../../bench/twisted_banana.py', import.meta.url));
  twisted = JSON.parse(execFileSync(PYTHON, [script, messages, ours, String(SECONDS)], { encoding: 'utf8', maxBuffer: 1 << 20 })) as typeof twisted;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Warm up, so the figures are the steady state a long-running worker sees.
rate(() => encode(updates), stream.length, 1);
const drop = () => undefined;
rate(() => decode(stream, drop), stream.length, 1);
rate(() => frame(stream), stream.length, 1);
const ours = {
  encode: rate(() => encode(updates), stream.length, SECONDS),
  decode: rate(() => decode(stream, drop), stream.length, SECONDS),
  frame: rate(() => frame(stream), stream.length, SECONDS),
};

const mb = (bytesPerSecond: number) => (bytesPerSecond / 1e6).toFixed(1).padStart(11);
const times = (x: number) => `${x.toFixed(1)}×`.padStart(11);
console.log(`Buildbot update stream: ${updates.length} messages, ${(stream.length / 1e6).toFixed(1)} MB` +
  ` (Twisted's encoding ${twisted.identical ? 'is byte for byte identical' : 'DIFFERS'})`);
console.log(`${''.padEnd(16)}  encode MB/s  decode MB/s  (framing only)   (MB per CPU second)`);
console.log(`${'bbgate (Node)'.padEnd(16)}  ${mb(ours.encode)}  ${mb(ours.decode)}  ${mb(ours.frame)}`);
console.log(`${'Twisted (Python)'.padEnd(16)}  ${mb(twisted.encode)}  ${mb(twisted.decode)}  ${mb(twisted.frame)}`);
console.log(`${'ratio'.padEnd(16)}  ${times(ours.encode / twisted.encode)}  ${times(ours.decode / twisted.decode)}  ${times(ours.frame / twisted.frame)}`);
if (!twisted.identical || twisted.bytes !== stream.length) process.exitCode = 1;
