// A CommandContext for running one command in a unit test, recording what it reports, and fake
// master-side writer/reader objects that record calls and can be made slow or failing.
import { spawnSync } from 'node:child_process';
import { PbFailure } from '../../src/pb/values/failure.js';
import { RemoteReference, type ReferenceOwner } from '../../src/pb/values/references.js';
import type { PbValue } from '../../src/pb/values/values.js';
import type { CommandContext, CommandSpec } from '../../src/worker/commands/types.js';

export const PYTHON = process.env.BBGATE_TEST_PYTHON ?? '/usr/bin/python3';

export interface Update {
  key: string;
  value: unknown;
}

export interface FakeRun {
  ctx: CommandContext;
  updates: Update[];
  warnings: string[];
  abort: AbortController;
  /** The text of every update with this key, joined. */
  text(key: string): string;
  /** The values of every update with this key. */
  values(key: string): unknown[];
}

export function fakeContext(args: Record<string, PbValue | RemoteReference | undefined>, dirs: { builderDir: string; basedir?: string }): FakeRun {
  const updates: Update[] = [];
  const warnings: string[] = [];
  const abort = new AbortController();
  const map = new Map<string, PbValue>();
  for (const [k, v] of Object.entries(args)) if (v !== undefined) map.set(k, v as PbValue);
  const ctx: CommandContext = {
    args: map,
    builderDir: dirs.builderDir,
    basedir: dirs.basedir ?? dirs.builderDir,
    environ: process.env,
    interrupted: abort.signal,
    logger: { info: () => {}, warn: (_fields, message) => warnings.push(message) },
    updates: {
      stdout: (t) => updates.push({ key: 'stdout', value: t }),
      stderr: (t) => updates.push({ key: 'stderr', value: t }),
      header: (t) => updates.push({ key: 'header', value: t }),
      log: (name, t) => updates.push({ key: 'log', value: [name, t] }),
      send: (key, value) => updates.push({ key, value }),
      backlog: () => undefined,
    },
  };
  return {
    ctx,
    updates,
    warnings,
    abort,
    text: (key) => updates.filter((u) => u.key === key).map((u) => u.value as string).join(''),
    values: (key) => updates.filter((u) => u.key === key).map((u) => u.value),
  };
}

/** Runs a command as the runner would, checking its required arguments first. */
export async function runCommand(spec: CommandSpec, run: FakeRun): Promise<void> {
  const missing = spec.required.filter((k) => !run.ctx.args.has(k));
  if (missing.length) throw new Error(`test passes no ${missing.join(', ')}`);
  await spec.run(run.ctx);
}

export interface Call {
  method: string;
  args: readonly unknown[];
  /** When the call was made (ms, performance.now()). */
  at: number;
}

export interface FakeRemoteOptions {
  /** Answer each call this many ms later (in order, as a PB peer would). */
  delayMs?: number;
  /** Answer nothing until the test calls release(): the test decides when each answer comes. */
  held?: boolean;
  /** Reject the call with this failure when it returns one. */
  failOn?: (method: string, index: number) => PbFailure | undefined;
  /** What `read` answers (for readers). */
  read?: (length: number) => PbValue;
}

export interface FakeRemote {
  ref: RemoteReference;
  calls: Call[];
  /** The most calls that were awaiting an answer at once. */
  maxOutstanding: number;
  /** How many calls await an answer now. */
  readonly outstanding: number;
  /** With `held`: answers the oldest call awaiting one. */
  release(): void;
  methods(): string[];
  /** The bytes of every write, in call order. */
  written(): Buffer;
}

export function fakeRemote(options: FakeRemoteOptions = {}): FakeRemote {
  const calls: Call[] = [];
  const heldAnswers: (() => void)[] = [];
  let outstanding = 0;
  const owner: ReferenceOwner = {
    connected: true,
    releaseRemote: () => {},
    onDisconnect: () => () => {},
    callRemote(_target, method, args) {
      const index = calls.filter((c) => c.method === method).length;
      calls.push({ method, args, at: performance.now() });
      outstanding++;
      remote.maxOutstanding = Math.max(remote.maxOutstanding, outstanding);
      const failure = options.failOn?.(method, index);
      const answer = (): PbValue => {
        if (method === 'read') return options.read ? options.read(args[0] as number) : Buffer.alloc(0);
        return null;
      };
      return new Promise<PbValue>((resolve, reject) => {
        const settle = () => {
          outstanding--;
          if (failure) reject(failure);
          else resolve(answer());
        };
        // A fixed latency: answers come back in call order, delayMs after each call.
        if (options.held) heldAnswers.push(settle);
        else if (options.delayMs) setTimeout(settle, options.delayMs);
        else queueMicrotask(settle);
      });
    },
  };
  const remote: FakeRemote = {
    calls,
    maxOutstanding: 0,
    get outstanding() {
      return outstanding;
    },
    release() {
      const settle = heldAnswers.shift();
      if (!settle) throw new Error('release(): no call awaits an answer');
      settle();
    },
    methods: () => calls.map((c) => c.method),
    written: () => Buffer.concat(calls.filter((c) => c.method === 'write').map((c) => c.args[0] as Buffer)),
    ref: new RemoteReference(owner, 1),
  };
  return remote;
}

export function masterFailure(message = 'disk full'): PbFailure {
  return new PbFailure('builtins.OSError', message);
}

/** Runs Python code with JSON on stdin, returning its JSON output. */
export function python(code: string, input: unknown): unknown {
  const result = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`python failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}
