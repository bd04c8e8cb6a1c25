// Fuzzing the PB decoder stack (Banana parser + unjelly) and whole brokers: the generators,
// mutators, checkers and runners shared by test/pb/fuzz.test.ts and fuzz/campaign.ts.
//
// Every input is rebuilt from (seed, index) alone, so a failure is reproduced by its seed
// and index, and an input that hangs a worker can still be printed by the main thread.
import { availableParallelism } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BbgateError } from '../../src/errors.js';
import { LIST, PREFIX_LIMIT, SIZE_LIMIT, STRING, VOCAB } from '../../src/pb/banana/constants.js';
import { BananaParser } from '../../src/pb/banana/parser.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPRESSION_BYTES, elementCost, type ParserLimits } from '../../src/pb/banana/scanner.js';
import { BananaWriter, encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { Broker } from '../../src/pb/broker.js';
import { COPYABLE_FAILURE, PbFailure, PY } from '../../src/pb/values/failure.js';
import { unjelly, type UnjellyContext } from '../../src/pb/jelly/decode.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { Referenceable, RemoteReference, type ReferenceOwner, type RemoteCall } from '../../src/pb/values/references.js';
import { PyFloat, Tuple } from '../../src/pb/values/values.js';
import { CallSkimmer, type CallHead } from '../../src/relay/call-skimmer.js';
import { MAX_REPR_CHARS, pyRepr, REPR_CUT } from '../../src/worker/python/repr.js';
import { memoryPair } from './memory-duplex.js';
import { int, pick, randomInt, randomValue, rng, type Rng } from './random-values.js';

/** One decode (or one broker case) slower than this, twice, is a failure. */
export const SLOW_MS = 1000;
/** Heap (of the isolate doing the work) above this is a failure. */
export const MAX_HEAP_BYTES = 512 * 1024 * 1024;
/** A worker stuck this long on one input is treated as hung and stopped. */
const HANG_MS = 5000;

export function fuzzSeed(): number {
  return Number(process.env.BBGATE_SEED ?? Date.now() % 2 ** 31);
}

function inputRng(seed: number, index: number): Rng {
  return rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

// ---- Building blocks ---------------------------------------------------------

const word = (s: string): Buffer => Buffer.from(s, 'latin1');
const unicode = (s: string): Sexp => [word('unicode'), Buffer.from(s, 'utf8')];

/** Jelly type atoms, PB commands and near misses: what makes a mutated tree reach deep code. */
const ATOMS = [
  'None', 'unicode', 'boolean', 'list', 'tuple', 'dictionary', 'set', 'frozenset', 'reference', 'dereference',
  'remote', 'local', 'unpersistable', 'persistent', COPYABLE_FAILURE, 'datetime', 'decimal', 'instance', 'class',
  'module', 'function', 'copy', 'cached', 'lcache', 'true', 'false', '', 'message', 'answer', 'error', 'decref',
  'version', '__proto__', 'constructor',
];
const SCALARS: Sexp[] = [0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 2n ** 64n, 1.5, NaN, -0, Infinity, new PyFloat(2), Buffer.alloc(0)];
/** Sizes for LIST/STRING prefixes around every limit the parser checks. */
const HUGE: bigint[] = [
  BigInt(SIZE_LIMIT), BigInt(SIZE_LIMIT + 1), 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 64n,
  (1n << BigInt(PREFIX_LIMIT * 7)) - 1n,
];
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0xff];

/** Base-128 digits, least significant first, as Banana writes a prefix. */
function digits(n: bigint): number[] {
  const out: number[] = [];
  do {
    out.push(Number(n & 127n));
    n >>= 7n;
  } while (n > 0n);
  return out;
}

function jellyBytes(value: unknown, vocab: boolean): Buffer {
  const w = new BananaWriter();
  w.vocab = vocab;
  jelly(w, value);
  return w.take();
}

/** A value's jelly tree, with every word as a plain byte string. */
function jellied(value: unknown): Sexp {
  const out: Sexp[] = [];
  const parser = new BananaParser((e) => out.push(e));
  parser.feed(jellyBytes(value, false));
  return out[0]!;
}

/**
 * Lists that each hold the previous one twice, through reference/dereference:
 * linear in bytes, exponential if anything walks it as a tree ("billion laughs").
 */
function sharedBomb(r: Rng): Sexp {
  const base = int(r, 3);
  let node: Sexp = [word('reference'), base + 1, [word('list'), unicode('xxxxxxxx')]];
  const levels = 16 + int(r, 24);
  for (let k = 2; k <= levels; k++) node = [word('reference'), base + k, [word('list'), node, [word('dereference'), base + k - 1]]];
  return node;
}

/** Nesting just below and above the parser's default depth limit. */
function deepNest(r: Rng, inner: Sexp): Sexp {
  const depth = 240 + int(r, 30);
  const jellyList = r() < 0.5;
  for (let i = 0; i < depth; i++) inner = jellyList ? [word('list'), inner] : [inner];
  return inner;
}

function failureSexp(r: Rng, value: Sexp): Sexp {
  const entries: Sexp[] = [
    [unicode('type'), r() < 0.8 ? unicode(pick(r, Object.values(PY))) : randomSexp(r, 1)],
    [unicode('value'), value],
    [unicode('parents'), [word('list'), unicode(PY.ValueError), unicode(PY.Exception)]],
    [unicode('traceback'), unicode('Traceback (most recent call last):\n')],
  ];
  return [word(COPYABLE_FAILURE), [word('dictionary'), ...entries.filter(() => r() < 0.9)]];
}

function randomSexp(r: Rng, depth: number): Sexp {
  switch (int(r, depth > 0 ? 7 : 3)) {
    case 0:
      return r() < 0.5 ? randomInt(r) : pick(r, SCALARS);
    case 1:
      return word(pick(r, ATOMS));
    case 2:
      return [word(pick(r, ATOMS))];
    case 3:
      return jellied(randomValue(r, { maxDepth: 2 }));
    case 4:
      return [word(pick(r, ATOMS)), ...Array.from({ length: int(r, 4) }, () => randomSexp(r, depth - 1))];
    case 5:
      return [word(pick(r, ['remote', 'local', 'dereference'])), r() < 0.8 ? int(r, 5) : randomSexp(r, 0)];
    default:
      return failureSexp(r, r() < 0.3 ? sharedBomb(r) : randomSexp(r, depth - 1));
  }
}

/** Edits one node of a jelly tree (in place where it can); returns the new root. */
function mutateSexp(r: Rng, root: Sexp, ops: string[]): Sexp {
  const holder: Sexp[] = [root];
  const slots: [Sexp[], number][] = [[holder, 0]];
  const walk = (list: Sexp[]): void => {
    for (let i = 0; i < list.length; i++) {
      slots.push([list, i]);
      const child = list[i]!;
      if (Array.isArray(child)) walk(child);
    }
  };
  if (Array.isArray(root)) walk(root);
  const [list, i] = pick(r, slots);
  const node = list[i]!;
  const op = int(r, 10);
  ops.push(['subtree', 'atom', 'drop', 'repeat', 'small-int', 'shared-bomb', 'deep', 'reference', 'dereference', 'failure'][op]!);
  switch (op) {
    case 0:
      list[i] = randomSexp(r, 2);
      break;
    case 1:
      if (Array.isArray(node) && node.length > 0) node[0] = word(pick(r, ATOMS));
      else list[i] = [word(pick(r, ATOMS)), node];
      break;
    case 2:
      if (list !== holder) list.splice(i, 1);
      break;
    case 3:
      if (list !== holder) list.splice(i, 0, node);
      break;
    case 4:
      list[i] = int(r, 6);
      break;
    case 5:
      list[i] = sharedBomb(r);
      break;
    case 6:
      list[i] = deepNest(r, node);
      break;
    case 7:
      list[i] = [word('reference'), int(r, 4), node];
      break;
    case 8:
      list[i] = [word('dereference'), int(r, 4)];
      break;
    default:
      list[i] = failureSexp(r, node);
  }
  return holder[0]!;
}

function randomBytes(r: Rng): Buffer {
  const b = Buffer.alloc(int(r, 257));
  for (let i = 0; i < b.length; i++) b[i] = int(r, 256);
  return b;
}

/** Random but Banana-shaped: prefixes, type bytes, and payloads of about the declared size. */
function randomTokens(r: Rng): Buffer {
  const out: number[] = [];
  const target = int(r, 300);
  while (out.length < target) {
    const n = r() < 0.8 ? int(r, 12) : int(r, 2 ** 20);
    out.push(...digits(BigInt(n)));
    const type = r() < 0.95 ? 0x80 + int(r, 8) : int(r, 256);
    out.push(type);
    if (type === STRING) for (let i = 0; i < Math.min(n, 32) + int(r, 3) - 1; i++) out.push(int(r, 256));
    if (type === 0x84) for (let i = 0; i < 8; i++) out.push(int(r, 256));
  }
  return Buffer.from(out);
}

function mutateBytes(r: Rng, bytes: Buffer, other: () => Buffer, ops: string[]): Buffer {
  let b = bytes;
  const count = 1 + int(r, 4);
  for (let k = 0; k < count; k++) {
    const at = int(r, b.length + 1);
    const insert = (xs: readonly number[]) => (b = Buffer.concat([b.subarray(0, at), Buffer.from(xs), b.subarray(at)]));
    const op = int(r, 12);
    ops.push(['flip', 'insert', 'insert-type', 'delete', 'truncate', 'splice', 'huge-length', 'long-prefix', 'deep', 'vocab', 'overwrite', 'repeat'][op]!);
    switch (op) {
      case 0:
        if (at < b.length) {
          b = Buffer.from(b);
          b[at] ^= 1 << int(r, 8);
        }
        break;
      case 1:
        insert([int(r, 256)]);
        break;
      case 2:
        insert([pick(r, INTERESTING_BYTES)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(r, 4))]);
        break;
      case 4:
        b = b.subarray(0, at);
        break;
      case 5: {
        const o = other();
        b = Buffer.concat([b.subarray(0, at), o.subarray(int(r, o.length + 1))]);
        break;
      }
      case 6:
        insert([...digits(pick(r, HUGE)), r() < 0.5 ? LIST : STRING]);
        break;
      case 7:
        insert([...Array.from({ length: PREFIX_LIMIT + int(r, 2) }, () => int(r, 128)), 0x80 + int(r, 8)]);
        break;
      case 8:
        b = Buffer.concat([Buffer.from('0180'.repeat(240 + int(r, 30)), 'hex'), b]);
        break;
      case 9:
        insert([...digits(BigInt(int(r, 34))), VOCAB]);
        break;
      case 10:
        if (at < b.length) {
          b = Buffer.from(b);
          b[at] = pick(r, INTERESTING_BYTES);
        }
        break;
      default: {
        const end = Math.min(b.length, at + 1 + int(r, 64));
        b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
      }
    }
  }
  return b;
}

/** Sizes of a random chunking of `length` bytes: sometimes byte by byte, usually a few cuts. */
function chunking(r: Rng, length: number): number[] {
  if (length === 0) return [];
  if (r() < 0.05 && length <= 2048) return new Array<number>(length).fill(1);
  const cuts = [...new Set(Array.from({ length: int(r, 8) }, () => 1 + int(r, length - 1)))].filter((c) => c < length).sort((a, b) => a - b);
  return [...cuts, length].map((c, i, all) => c - (i === 0 ? 0 : all[i - 1]!));
}

/** What one input came to: ACCEPTED, an error code, or CRASH; and a problem when a check failed. */
export interface Checked {
  outcome: string;
  problem?: string;
}

export const ACCEPTED = 'accepted';
/** The outcome of an input that made code throw something other than a BbgateError. */
export const CRASH = 'crash';

/** An input's own random stream for settings drawn after its generator's (limits, chunkings). */
function settingsRng(seed: number, index: number): Rng {
  return inputRng(~seed >>> 0, index);
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return `${String(err)} (not an Error)`;
  return (err.stack ?? `${err.name}: ${err.message}`).split('\n').slice(0, 4).join('\n    ');
}

/** What a broker does with references, without a connection: enough for unjelly's remote/local. */
const NO_OWNER: ReferenceOwner = {
  connected: true,
  callRemote: () => Promise.reject(new Error('not connected')),
  releaseRemote: () => undefined,
  onDisconnect: () => () => undefined,
};
const LOCALS = [new Referenceable(), new Referenceable(), new Referenceable()];
const CONTEXT: UnjellyContext = {
  remoteReference: (luid) => new RemoteReference(NO_OWNER, luid),
  localObject: (luid) => LOCALS[luid - 1],
};

// ---- The decoder stack -------------------------------------------------------

export interface DecoderInput {
  /** The generator and mutations that made it, for the report. */
  kind: string;
  bytes: Buffer;
  /** The parser's dialect: VOCAB accepted or not. */
  vocab: boolean;
  /** Unjelly with a broker-like context (remote/local resolve) or without (they are refused). */
  context: boolean;
  /** Sizes of the chunked feed. */
  chunks: number[];
  /** Unmutated encodings: must decode, and re-encode to the same bytes. */
  valid: boolean;
}

export function decoderInput(seed: number, index: number): DecoderInput {
  const r = inputRng(seed, index);
  const vocab = r() < 0.6;
  const encoding = () => jellyBytes(randomValue(r, { maxDepth: 3 }), vocab);
  const ops: string[] = [];
  let kind: string;
  let bytes: Buffer;
  let valid = false;
  const roll = r();
  if (roll < 0.1) {
    kind = 'random bytes';
    bytes = randomBytes(r);
  } else if (roll < 0.2) {
    kind = 'random tokens';
    bytes = randomTokens(r);
  } else if (roll < 0.26) {
    kind = 'valid';
    bytes = Buffer.concat(Array.from({ length: 1 + int(r, 3) }, encoding));
    valid = true;
  } else if (roll < 0.6) {
    let sexp = jellied(randomValue(r, { maxDepth: 3 }));
    for (let n = 1 + int(r, 3); n > 0; n--) sexp = mutateSexp(r, sexp, ops);
    bytes = encodeSexp(sexp, vocab);
    if (r() < 0.3) bytes = mutateBytes(r, bytes, encoding, ops);
    kind = `jelly tree: ${ops.join(', ')}`;
  } else {
    bytes = mutateBytes(r, Buffer.concat(Array.from({ length: 1 + int(r, 2) }, encoding)), encoding, ops);
    kind = `bytes: ${ops.join(', ')}`;
  }
  const parserVocab = r() < 0.9 ? vocab : !vocab;
  return { kind, bytes, vocab: parserVocab, context: r() < 0.5, chunks: chunking(r, bytes.length), valid: valid && parserVocab === vocab };
}

interface Fed {
  exprs: Sexp[];
  code?: string;
  buffered: number;
}

function feedAll(input: DecoderInput, sizes: number[], limits?: ParserLimits): Fed | string {
  const exprs: Sexp[] = [];
  const parser = new BananaParser((e) => exprs.push(e), limits);
  parser.vocab = input.vocab;
  let fed = 0;
  for (const size of sizes) {
    try {
      parser.feed(input.bytes.subarray(fed, fed + size));
    } catch (err) {
      if (err instanceof BbgateError) return { exprs, code: err.code, buffered: parser.bufferedBytes };
      return `BananaParser.feed threw ${describeError(err)}`;
    }
    fed += size;
    if (parser.bufferedBytes > fed) return `the parser buffers ${parser.bufferedBytes} bytes after being fed ${fed}`;
  }
  return { exprs, buffered: parser.bufferedBytes };
}

/** Runs one input through the decoder stack: what it came to, and what went wrong, if anything. */
export function checkDecoderInput(input: DecoderInput): Checked {
  const whole = feedAll(input, input.bytes.length > 0 ? [input.bytes.length] : []);
  if (typeof whole === 'string') return { outcome: CRASH, problem: whole };
  const values: unknown[] = [];
  let refused: string | undefined;
  for (const expr of whole.exprs) {
    try {
      values.push(unjelly(expr, input.context ? CONTEXT : undefined));
    } catch (err) {
      if (!(err instanceof BbgateError)) return { outcome: CRASH, problem: `unjelly threw ${describeError(err)}` };
      if (input.valid) return { outcome: err.code, problem: `unjelly refused a valid encoding: ${err.message}` };
      refused ??= err.code;
    }
  }
  const outcome = whole.code ?? refused ?? ACCEPTED;
  const chunked = feedAll(input, input.chunks);
  if (typeof chunked === 'string') return { outcome: CRASH, problem: chunked };
  if (whole.code !== chunked.code || whole.buffered !== chunked.buffered || !isDeepStrictEqual(whole.exprs, chunked.exprs)) {
    return { outcome, problem: `chunked feed differs from whole feed: ${whole.exprs.length} expressions, error ${whole.code}, ${whole.buffered} buffered vs ${chunked.exprs.length}, ${chunked.code}, ${chunked.buffered}` };
  }
  if (input.valid) {
    if (whole.code !== undefined || whole.buffered !== 0) return { outcome, problem: `a valid encoding did not decode: ${whole.code ?? `${whole.buffered} bytes left`}` };
    const again = Buffer.concat(values.map((v) => jellyBytes(v, input.vocab)));
    if (!again.equals(input.bytes)) return { outcome, problem: `decoded values re-encode differently: ${again.toString('hex')}` };
  }
  return { outcome };
}

// ---- The Banana parser alone, with its limits ------------------------------------

export interface BananaInput extends DecoderInput {
  limits: Required<ParserLimits>;
}

/** The decoder's inputs, with limits that are sometimes small enough for them to matter. */
export function bananaInput(seed: number, index: number): BananaInput {
  const input = decoderInput(seed, index);
  const r = settingsRng(seed, index);
  return {
    ...input,
    limits: {
      maxDepth: r() < 0.3 ? 1 + int(r, 40) : DEFAULT_MAX_DEPTH,
      maxExpressionBytes: r() < 0.4 ? 64 + int(r, 8192) : DEFAULT_MAX_EXPRESSION_BYTES,
    },
  };
}

/** The least an expression can have been charged: every element at its canonical size, at least MIN_ELEMENT_COST. */
function leastCost(expr: Sexp, vocab: boolean): number {
  if (!Array.isArray(expr)) return elementCost(encodeSexp(expr, vocab).length);
  let cost = elementCost(digits(BigInt(expr.length)).length + 1);
  for (const item of expr) cost += leastCost(item, vocab);
  return cost;
}

/** Lists open at once while the parser reads `expr`: an empty list is complete as it starts, and opens none. */
function depthOf(expr: Sexp): number {
  if (!Array.isArray(expr) || expr.length === 0) return 0;
  let deepest = 0;
  for (const item of expr) deepest = Math.max(deepest, depthOf(item));
  return 1 + deepest;
}

/**
 * The parser alone: only BananaErrors, the same result whole and chunked, and
 * nothing delivered beyond its limits (depth, and the expression budget with
 * each element charged at least MIN_ELEMENT_COST).
 */
export function checkBananaInput(input: BananaInput): Checked {
  const whole = feedAll(input, input.bytes.length > 0 ? [input.bytes.length] : [], input.limits);
  if (typeof whole === 'string') return { outcome: CRASH, problem: whole };
  const outcome = whole.code ?? ACCEPTED;
  for (const expr of whole.exprs) {
    if (depthOf(expr) > input.limits.maxDepth) return { outcome, problem: `an expression nested ${depthOf(expr)} deep was delivered (limit ${input.limits.maxDepth})` };
    const cost = leastCost(expr, input.vocab);
    if (cost > input.limits.maxExpressionBytes) return { outcome, problem: `an expression costing at least ${cost} was delivered (limit ${input.limits.maxExpressionBytes})` };
  }
  const chunked = feedAll(input, input.chunks, input.limits);
  if (typeof chunked === 'string') return { outcome: CRASH, problem: chunked };
  if (whole.code !== chunked.code || whole.buffered !== chunked.buffered || !isDeepStrictEqual(whole.exprs, chunked.exprs)) {
    return { outcome, problem: `chunked feed differs from whole feed: ${whole.exprs.length} expressions, error ${whole.code}, ${whole.buffered} buffered vs ${chunked.exprs.length}, ${chunked.code}, ${chunked.buffered}` };
  }
  return { outcome };
}

// ---- Unjelly alone, on jelly trees -------------------------------------------------

export interface JellyInput {
  kind: string;
  sexp: Sexp;
  context: boolean;
  /** An unmutated encoding of a value: must unjelly, and jelly back to the same tree. */
  valid: boolean;
}

export function jellyInput(seed: number, index: number): JellyInput {
  const r = inputRng(seed, index);
  const ops: string[] = [];
  const roll = r();
  let sexp: Sexp;
  let kind: string;
  if (roll < 0.15) {
    sexp = jellied(randomValue(r, { maxDepth: 3 }));
    kind = 'valid';
  } else if (roll < 0.35) {
    sexp = randomSexp(r, 3);
    kind = 'random tree';
  } else {
    sexp = jellied(randomValue(r, { maxDepth: 3 }));
    for (let n = 1 + int(r, 4); n > 0; n--) sexp = mutateSexp(r, sexp, ops);
    kind = `mutated: ${ops.join(', ')}`;
  }
  return { kind, sexp, context: r() < 0.5, valid: kind === 'valid' };
}

/**
 * Unjelly alone: only BbgateErrors; valid trees come back as they went; and
 * whatever it builds, the worker's Python-style repr of it (command headers)
 * stays within MAX_REPR_CHARS, shared references and cycles included.
 */
export function checkJellyInput(input: JellyInput): Checked {
  let value: unknown;
  try {
    value = unjelly(input.sexp, input.context ? CONTEXT : undefined);
  } catch (err) {
    if (!(err instanceof BbgateError)) return { outcome: CRASH, problem: `unjelly threw ${describeError(err)}` };
    return { outcome: err.code, problem: input.valid ? `unjelly refused a valid tree: ${err.message}` : undefined };
  }
  if (input.valid && !isDeepStrictEqual(jellied(value), input.sexp)) return { outcome: ACCEPTED, problem: 'a valid tree does not jelly back to itself' };
  let repr: string;
  try {
    repr = pyRepr(value);
  } catch (err) {
    return { outcome: CRASH, problem: `pyRepr threw ${describeError(err)}` };
  }
  if (repr.length > MAX_REPR_CHARS + REPR_CUT.length) return { outcome: ACCEPTED, problem: `pyRepr built ${repr.length} characters` };
  return { outcome: ACCEPTED };
}

// ---- The relay's call skimmer, against the parser --------------------------------------

/** What the skimmer should report for one decoded expression: the first five elements when they are small scalars. */
export function expectedHead(expr: Sexp): CallHead | undefined {
  if (!Array.isArray(expr) || expr.length === 0) return undefined;
  const word = (v: Sexp | undefined) => (v instanceof Uint8Array && v.length <= 64 ? Buffer.from(v).toString('latin1') : undefined);
  // The parser decodes integers as numbers while they are exact; -0 can only be a float.
  const int = (v: Sexp | undefined) => (typeof v === 'number' && Number.isSafeInteger(v) && !Object.is(v, -0) ? v : undefined);
  const head: CallHead = {};
  const [command, requestId, target, method, answerRequired] = expr;
  if (word(command) !== undefined) head.command = word(command)!;
  if (int(requestId) !== undefined) head.requestId = int(requestId)!;
  const t = word(target) ?? int(target);
  if (t !== undefined) head.target = t;
  if (word(method) !== undefined) head.method = word(method)!;
  if (int(answerRequired) !== undefined) head.answerRequired = int(answerRequired)!;
  return head;
}

/**
 * The skimmer, differentially: on the parser's inputs and limits it must refuse
 * with the parser's error code and report the head of every expression the
 * parser delivered before that, in any chunking.
 */
export function checkSkimmerInput(input: BananaInput): Checked {
  const parsed = feedAll(input, input.bytes.length > 0 ? [input.bytes.length] : [], input.limits);
  if (typeof parsed === 'string') return { outcome: CRASH, problem: parsed };
  const heads: CallHead[] = [];
  const skimmer = new CallSkimmer(input.vocab, (head) => heads.push({ ...head }), input.limits);
  let code: string | undefined;
  let fed = 0;
  try {
    for (const size of input.chunks) {
      skimmer.feed(input.bytes.subarray(fed, fed + size));
      fed += size;
    }
  } catch (err) {
    if (!(err instanceof BbgateError)) return { outcome: CRASH, problem: `CallSkimmer.feed threw ${describeError(err)}` };
    code = err.code;
  }
  const outcome = code ?? ACCEPTED;
  if (code !== parsed.code) return { outcome, problem: `the skimmer ${code ? `refused with ${code}` : 'accepted'}, the parser ${parsed.code ? `refused with ${parsed.code}` : 'accepted'}` };
  const expected = parsed.exprs.map(expectedHead).filter((h): h is CallHead => h !== undefined);
  if (!isDeepStrictEqual(heads, expected)) return { outcome, problem: `the skimmer reported heads ${JSON.stringify(heads)}, the parser decoded ${JSON.stringify(expected)}` };
  return { outcome };
}

// ---- Brokers -----------------------------------------------------------------

class FuzzObject extends Referenceable {
  remote_echo(call: RemoteCall): unknown {
    return [call.args, call.kwargs];
  }
  remote_fail(): never {
    throw new Error('a local method failed');
  }
  remote_ref(): FuzzObject {
    return new FuzzObject();
  }
  remote_later(call: RemoteCall): Promise<unknown> {
    return new Promise((resolve) => setImmediate(() => resolve(call.args)));
  }
  remote_reject(): Promise<never> {
    return new Promise((_, reject) => setImmediate(() => reject(new Error('a local method failed later'))));
  }
}

const METHODS = ['echo', 'fail', 'ref', 'later', 'reject', 'nosuch', 'remoteMethod', 'constructor', ''];

export interface BrokerInput {
  kind: string;
  role: 'client' | 'server';
  dialect: 'pb' | 'none';
  handshake: Buffer;
  traffic: Buffer;
  chunks: number[];
  /** Methods the broker calls on the peer's root before the traffic, so answers and errors find requests pending. */
  calls: string[];
  /** Close the broker ourselves after this chunk (-1: never). */
  closeAfter: number;
  maxDepth: number;
}

function pbCommand(r: Rng): Sexp {
  const id = (): Sexp => (r() < 0.85 ? 1 + int(r, 4) : pick(r, SCALARS));
  switch (int(r, 12)) {
    case 0:
    case 1:
    case 2:
    case 3: {
      const args = Tuple.from(Array.from({ length: int(r, 3) }, () => randomValue(r, { maxDepth: 2 })));
      const kwargs = new Map(Array.from({ length: int(r, 2) }, () => [pick(r, ['a', 'b', 'mind']), randomValue(r, { maxDepth: 1 })]));
      const target = r() < 0.7 ? word('root') : id();
      const method = r() < 0.9 ? word(pick(r, METHODS)) : randomSexp(r, 0);
      return [word('message'), id(), target, method, r() < 0.8 ? 1 : 0, jellied(args), jellied(kwargs)];
    }
    case 4:
    case 5:
      return [word('answer'), id(), jellied(randomValue(r, { maxDepth: 2 }))];
    case 6:
      return [word('error'), id(), r() < 0.7 ? failureSexp(r, unicode('boom')) : jellied(randomValue(r, { maxDepth: 2 }))];
    case 7:
      return [word('decref'), id()];
    case 8:
      return [word('version'), r() < 0.7 ? 6 : randomInt(r)];
    case 9:
      return [word('cachemessage'), id(), id(), word('m'), int(r, 2), jellied(Tuple.from([])), jellied(new Map())];
    case 10:
      return [word(pick(r, ['didNotUnderstand', 'decache', 'uncache', 'login', 'none'])), id()];
    default:
      return randomSexp(r, 2);
  }
}

export function brokerInput(seed: number, index: number): BrokerInput {
  const r = inputRng(seed, index);
  const role = r() < 0.5 ? 'client' : 'server';
  // A bbgate client picks "pb" from the offer; a bbgate server takes what we choose.
  const spoken = role === 'client' || r() < 0.8 ? 'pb' : 'none';
  const vocab = spoken === 'pb';
  const ops: string[] = [];
  let handshake: Buffer = Buffer.concat([
    role === 'client' ? encodeSexp([word('pb'), word('none')]) : encodeSexp(word(spoken)),
    encodeSexp([word('version'), 6], vocab),
  ]);
  const commands = Array.from({ length: 1 + int(r, 8) }, () => {
    const command = pbCommand(r);
    return r() < 0.3 ? mutateSexp(r, command, ops) : command;
  });
  let traffic: Buffer = Buffer.concat(commands.map((c) => encodeSexp(c, vocab)));
  if (r() < 0.5) traffic = mutateBytes(r, traffic, () => encodeSexp(pbCommand(r), vocab), ops);
  if (r() < 0.05) {
    handshake = mutateBytes(r, handshake, () => encodeSexp(pbCommand(r)), ops);
    ops.push('(in the handshake)');
  }
  const chunks = chunking(r, traffic.length);
  return {
    kind: ops.length > 0 ? `mutated: ${ops.join(', ')}` : 'well-formed commands',
    role,
    dialect: spoken,
    handshake,
    traffic,
    chunks,
    calls: Array.from({ length: int(r, 4) }, () => pick(r, ['x', 'y'])),
    closeAfter: r() < 0.1 ? int(r, chunks.length + 1) : -1,
    maxDepth: r() < 0.2 ? 2 + int(r, 40) : 256,
  };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a broker may send after the handshake: each command's length and which elements are jelly. */
const OUTGOING = new Map<string, [number, number[]]>([
  ['version', [2, []]], ['message', [7, [5, 6]]], ['answer', [3, [2]]], ['error', [3, [2]]], ['decref', [2, []]],
]);

/** Checks that what a broker wrote is PB it could itself read back. */
function checkBrokerOutput(bytes: Buffer): string | undefined {
  const exprs: Sexp[] = [];
  const parser = new BananaParser((e) => exprs.push(e));
  parser.vocab = true;
  try {
    parser.feed(bytes);
  } catch (err) {
    return `the broker wrote bytes that do not parse: ${describeError(err)}`;
  }
  if (parser.bufferedBytes > 0) return 'the broker wrote an incomplete expression';
  // The first expression is the dialect offer (server) or choice (client).
  for (const expr of exprs.slice(1)) {
    const command = Array.isArray(expr) && expr[0] instanceof Uint8Array ? Buffer.from(expr[0]).toString('latin1') : undefined;
    const shape = command === undefined ? undefined : OUTGOING.get(command);
    if (!shape || (expr as Sexp[]).length !== shape[0]) return `the broker wrote a malformed command: ${encodeSexp(expr).toString('hex')}`;
    for (const i of shape[1]) {
      try {
        const value = unjelly((expr as Sexp[])[i]!, { remoteReference: (luid) => new RemoteReference(NO_OWNER, luid), localObject: () => new Referenceable() });
        if (command === 'error' && !(value instanceof PbFailure)) return 'the broker sent an error that is not a CopyableFailure';
      } catch (err) {
        return `the broker wrote a ${command} it cannot unjelly itself: ${describeError(err)}`;
      }
    }
  }
  return undefined;
}

/** Drives one broker through a handshake and the input's traffic; returns what went wrong, if anything. */
export async function checkBrokerInput(input: BrokerInput): Promise<Checked> {
  const [near, far] = memoryPair();
  const written: Buffer[] = [];
  far.on('data', (d: Buffer) => written.push(d));
  const broker = new Broker(near, { role: input.role, root: new FuzzObject(), limits: { maxDepth: input.maxDepth } });
  const rejected = (err: unknown) => (err instanceof BbgateError ? undefined : `a call was rejected with ${describeError(err)}`);
  far.write(input.handshake);
  await turn();
  await turn();
  // Like login(), call only once the dialect is agreed: before that the broker would write ahead of its handshake.
  const calls = broker.dialect === undefined ? [] : input.calls.map((method) => broker.rootObject().callRemote(method, [1]).then(() => undefined, rejected));
  let fed = 0;
  let localClose = false;
  for (let i = 0; i <= input.chunks.length; i++) {
    if (i === input.closeAfter) {
      localClose = true;
      void broker.close();
    }
    if (i === input.chunks.length) break;
    far.write(input.traffic.subarray(fed, fed + input.chunks[i]!));
    fed += input.chunks[i]!;
    await turn();
  }
  for (let i = 0; i < 4; i++) await turn();
  // After our own close() the broker may still answer the peer and fail writing after end():
  // a reason that is ours, not the peer's.
  const untyped = () => !localClose && !(broker.closeReason instanceof BbgateError);
  let problem: string | undefined;
  if (near.destroyed && broker.connected) problem = 'the stream was destroyed but the broker still says it is connected';
  else if (!broker.connected && untyped()) problem = `the broker closed with an untyped reason: ${describeError(broker.closeReason)}`;
  problem ??= checkBrokerOutput(Buffer.concat(written));
  const reason = broker.closeReason;
  const outcome = broker.connected ? 'still connected' : reason instanceof BbgateError ? reason.code : localClose ? 'closed by us' : CRASH;
  near.destroy();
  far.destroy();
  for (let i = 0; i < 10 && broker.connected; i++) await turn();
  if (broker.connected) return { outcome, problem: problem ?? 'the broker is still connected after its stream was destroyed' };
  if (untyped()) problem ??= `the broker ended with an untyped reason: ${describeError(broker.closeReason)}`;
  for (const callProblem of await Promise.all(calls)) problem ??= callProblem;
  return { outcome, problem };
}

// ---- Runners -------------------------------------------------------------------

interface Target<I> {
  input(seed: number, index: number): I;
  check(input: I): Checked | Promise<Checked>;
  /** The input as a report shows it. */
  describe(input: I): { kind: string; setting: string; hex: string };
}

const describeBananaInput = (input: BananaInput) => ({
  kind: input.kind,
  setting: `vocab ${input.vocab}, maxDepth ${input.limits.maxDepth}, maxExpressionBytes ${input.limits.maxExpressionBytes}, chunks [${input.chunks.join(', ')}]`,
  hex: input.bytes.toString('hex'),
});

const decoderSetting = (input: DecoderInput) =>
  `vocab ${input.vocab}, unjelly ${input.context ? 'with' : 'without'} a context, chunks [${input.chunks.join(', ')}]`;

const TARGETS = {
  banana: {
    input: bananaInput,
    check: checkBananaInput,
    describe: describeBananaInput,
  } satisfies Target<BananaInput>,
  jelly: {
    input: jellyInput,
    check: checkJellyInput,
    describe: (input) => ({
      kind: input.kind,
      setting: `unjelly ${input.context ? 'with' : 'without'} a context; the hex is the tree's Banana encoding`,
      hex: encodedOrNot(input.sexp),
    }),
  } satisfies Target<JellyInput>,
  skimmer: {
    input: bananaInput,
    check: checkSkimmerInput,
    describe: describeBananaInput,
  } satisfies Target<BananaInput>,
  decoder: {
    input: decoderInput,
    check: checkDecoderInput,
    describe: (input) => ({
      kind: input.kind,
      setting: decoderSetting(input),
      hex: input.bytes.toString('hex'),
    }),
  } satisfies Target<DecoderInput>,
  broker: {
    input: brokerInput,
    check: checkBrokerInput,
    describe: (input) => ({
      kind: input.kind,
      setting: `role ${input.role}, dialect ${input.dialect}, calls [${input.calls.join(', ')}], close after chunk ${input.closeAfter}, ` +
        `maxDepth ${input.maxDepth}, handshake ${input.handshake.toString('hex')}, traffic chunks [${input.chunks.join(', ')}]`,
      hex: input.traffic.toString('hex'),
    }),
  } satisfies Target<BrokerInput>,
};

export type TargetName = keyof typeof TARGETS;
export const TARGET_NAMES = Object.keys(TARGETS) as TargetName[];

function encodedOrNot(sexp: Sexp): string {
  try {
    return encodeSexp(sexp).toString('hex');
  } catch (err) {
    return `(cannot be encoded: ${describeError(err)})`;
  }
}

/** Runs one input in this thread, as a failure report names it: what `--replay` does. */
export async function replay(name: TargetName, seed: number, index: number): Promise<Checked & { input: FuzzFailure }> {
  const target: Target<unknown> = TARGETS[name];
  const input = target.input(seed, index);
  const checked = await target.check(input);
  return { ...checked, input: failure(name, seed, index, checked.problem ?? '(none)', input) };
}

export interface FuzzFailure {
  seed: number;
  index: number;
  target: TargetName;
  kind: string;
  problem: string;
  /** How to feed `hex`: dialect, chunking, role. */
  setting: string;
  hex: string;
}

export interface FuzzReport {
  inputs: number;
  seconds: number;
  failures: FuzzFailure[];
  /** Failures beyond those kept in `failures`. */
  moreFailures: number;
  slowestMs: number;
  maxHeapBytes: number;
  /** How many inputs came to each outcome: accepted, an error code, or crash. */
  outcomes: Record<string, number>;
}

export interface RunOptions {
  seed: number;
  /** Stop after this many inputs, or after `seconds`, whichever comes first. */
  inputs?: number;
  seconds?: number;
  /** Worker threads (default: one per core). */
  workers?: number;
  /** Stop once this many failures were found. */
  maxFailures?: number;
  /** Called now and then with the inputs done so far. */
  onProgress?: (done: number) => void;
}

export function formatFailure(f: FuzzFailure): string {
  return `BBGATE_SEED=${f.seed}, ${f.target} input #${f.index} (${f.kind}): ${f.problem}\n  ${f.setting}\n  hex: ${f.hex}`;
}

function failure(name: TargetName, seed: number, index: number, problem: string, input?: unknown): FuzzFailure {
  const target: Target<unknown> = TARGETS[name];
  return { seed, index, target: name, problem, ...target.describe(input ?? target.input(seed, index)) };
}

class Collector {
  readonly failures: FuzzFailure[] = [];
  moreFailures = 0;
  constructor(private readonly max: number) {}
  add(f: FuzzFailure): void {
    if (this.failures.length < this.max) this.failures.push(f);
    else this.moreFailures++;
  }
  get full(): boolean {
    return this.failures.length >= this.max;
  }
}

/** Worker state in shared memory: [stop flag, index being checked (-1: none), inputs done]. */
const STOP = 0;
const CURRENT = 1;
const DONE = 2;

interface Job {
  target: TargetName;
  seed: number;
  first: number;
  stride: number;
  limit: number;
  state: SharedArrayBuffer;
}

type WorkerMessage =
  | { type: 'failure'; failure: FuzzFailure }
  | { type: 'done'; slowestMs: number; maxHeapBytes: number; outcomes: Record<string, number> };

async function fuzzWorker(job: Job): Promise<void> {
  const target: Target<unknown> = TARGETS[job.target];
  const state = new Int32Array(job.state);
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  // Whatever escapes from an event handler (a broker's) lands here, charged to the running input.
  const escaped: unknown[] = [];
  process.on('uncaughtException', (err) => escaped.push(err));
  process.on('unhandledRejection', (err) => escaped.push(err));
  let slowestMs = 0;
  let maxHeapBytes = 0;
  const outcomes = new Map<string, number>();
  for (let index = job.first; index < job.limit && Atomics.load(state, STOP) === 0; index += job.stride) {
    const input = target.input(job.seed, index);
    Atomics.store(state, CURRENT, index);
    const start = performance.now();
    const checked = await target.check(input);
    let problem = checked.problem;
    let ms = performance.now() - start;
    outcomes.set(checked.outcome, (outcomes.get(checked.outcome) ?? 0) + 1);
    if (!problem && ms > SLOW_MS) {
      // Being descheduled or a GC pause can make any input slow once; a slow input is slow again.
      const retry = performance.now();
      problem = (await target.check(input)).problem;
      ms = Math.min(ms, performance.now() - retry);
      if (!problem && ms > SLOW_MS) problem = `took ${ms.toFixed(0)} ms (the faster of two runs)`;
    }
    Atomics.store(state, CURRENT, -1);
    slowestMs = Math.max(slowestMs, ms);
    if (escaped.length > 0) problem ??= `uncaught exception or unhandled rejection: ${describeError(escaped[0])}`;
    escaped.length = 0;
    if (Atomics.add(state, DONE, 1) % 64 === 0) {
      const heap = process.memoryUsage().heapUsed;
      maxHeapBytes = Math.max(maxHeapBytes, heap);
      if (heap > MAX_HEAP_BYTES) problem ??= `heap at ${(heap / 2 ** 20).toFixed(0)} MiB after this input`;
    }
    if (problem) post({ type: 'failure', failure: failure(job.target, job.seed, index, problem, input) });
  }
  post({ type: 'done', slowestMs, maxHeapBytes, outcomes: Object.fromEntries(outcomes) });
}

if (!isMainThread && (workerData as { bbgateFuzz?: Job } | null)?.bbgateFuzz) {
  await fuzzWorker((workerData as { bbgateFuzz: Job }).bbgateFuzz);
}

/**
 * Fuzzes one target on worker threads, the inputs dealt out by index. The main
 * thread only watches: a worker stuck on one input is stopped and the input
 * (rebuilt from its seed and index) reported, so even an endless loop ends the
 * run with a reproducer.
 */
export async function fuzz(name: TargetName, options: RunOptions): Promise<FuzzReport> {
  const { seed } = options;
  const count = options.workers ?? availableParallelism();
  const limit = options.inputs ?? 2 ** 31 - 1;
  const deadline = performance.now() + (options.seconds ?? Infinity) * 1000;
  const collector = new Collector(options.maxFailures ?? 20);
  const started = performance.now();
  let slowestMs = 0;
  let maxHeapBytes = 0;
  const outcomes: Record<string, number> = {};
  const runs = Array.from({ length: count }, (_, w) => {
    const state = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    state[CURRENT] = -1;
    const job: Job = { target: name, seed, first: w, stride: count, limit, state: state.buffer as SharedArrayBuffer };
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { bbgateFuzz: job },
      execArgv: [],
      // A runaway allocation kills the worker (reported below), not the whole process.
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    const exited = new Promise<void>((resolve) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'failure') collector.add(m.failure);
        else {
          slowestMs = Math.max(slowestMs, m.slowestMs);
          maxHeapBytes = Math.max(maxHeapBytes, m.maxHeapBytes);
          for (const [outcome, n] of Object.entries(m.outcomes)) outcomes[outcome] = (outcomes[outcome] ?? 0) + n;
        }
      });
      worker.on('error', (err) => {
        const index = Atomics.load(state, CURRENT);
        const problem = `the worker died: ${describeError(err)}`;
        collector.add(index >= 0 ? failure(name, seed, index, problem) : { seed, index, target: name, kind: 'between inputs', problem, setting: '', hex: '' });
      });
      worker.on('exit', () => resolve());
    });
    return { worker, state, exited, watched: -1, since: performance.now() };
  });
  const done = () => runs.reduce((n, run) => n + Atomics.load(run.state, DONE), 0);
  const stopAll = () => runs.forEach((run) => Atomics.store(run.state, STOP, 1));
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const run of runs) {
      const current = Atomics.load(run.state, CURRENT);
      if (current !== run.watched) {
        run.watched = current;
        run.since = now;
      } else if (current >= 0 && now - run.since > HANG_MS) {
        collector.add(failure(name, seed, current, `still running after ${HANG_MS} ms (its worker was stopped)`));
        run.watched = -1;
        stopAll();
        void run.worker.terminate();
      }
    }
    if (now > deadline || collector.full) stopAll();
    options.onProgress?.(done());
  }, 250);
  try {
    await Promise.all(runs.map((run) => run.exited));
  } finally {
    clearInterval(watchdog);
  }
  return {
    inputs: done(),
    seconds: (performance.now() - started) / 1000,
    failures: collector.failures,
    moreFailures: collector.moreFailures,
    slowestMs,
    maxHeapBytes,
    outcomes,
  };
}
