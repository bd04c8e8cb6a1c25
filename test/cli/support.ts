// Shared by the test/cli suites: temp dirs, and the real buildbot-worker and Python as oracles.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { BUILDBOT_WORKER, PYTHON } from '../helpers/buildbot-master.js';
import type { Run } from '../helpers/cli.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory, removed when the suite ends. */
export function tempDir(prefix = 'bbgate-cli-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function run(command: string, args: string[], options: { cwd?: string; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout: 60_000, ...(options.cwd ? { cwd: options.cwd } : {}) }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === 'number' ? code : -1, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** The real `buildbot-worker create-worker`. */
export function pythonCreateWorker(args: string[], cwd?: string): Promise<Run> {
  return run(BUILDBOT_WORKER, ['create-worker', ...args], cwd ? { cwd } : {});
}

/**
 * Runs Python code with a JSON value on stdin (as `data`) and parses its JSON
 * output: one interpreter for many checks.
 */
export async function python<T>(code: string, data: unknown): Promise<T> {
  const r = await run(PYTHON, ['-c', `import json, sys\ndata = json.load(sys.stdin)\n${code}`], { input: JSON.stringify(data) });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** For each tac path: null if Python compiles it, else the SyntaxError's message and line. */
export function pythonCompileErrors(paths: string[]): Promise<({ msg: string; line: number } | null)[]> {
  return python(
    `out = []
for p in data:
    try:
        compile(open(p, encoding='utf-8').read(), p, 'exec')
        out.append(None)
    except SyntaxError as e:
        out.append({'msg': e.msg, 'line': e.lineno})
print(json.dumps(out))`,
    paths,
  );
}

export interface PythonWorkerCall {
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/**
 * Runs each tac in real Python with buildbot_worker.bot.Worker replaced by a
 * recorder: what buildbot-worker would construct its Worker with. An entry is
 * a string (the exception) when the tac fails to run.
 */
export function pythonWorkerCalls(paths: string[]): Promise<(PythonWorkerCall | string)[]> {
  return python(
    `import types
calls = []
class Worker:
    def __init__(self, *args, **kwargs):
        calls.append({'args': list(args), 'kwargs': kwargs})
    def setServiceParent(self, parent):
        pass
stub = types.ModuleType('buildbot_worker.bot')
stub.Worker = Worker
import buildbot_worker
sys.modules['buildbot_worker.bot'] = stub
out = []
for p in data:
    del calls[:]
    try:
        exec(compile(open(p, encoding='utf-8').read(), p, 'exec'), {'__file__': p, '__name__': '__builtin__'})
        out.append(calls[0])
    except BaseException as e:
        out.append('%s: %s' % (type(e).__name__, e))
print(json.dumps(out))`,
    paths,
  );
}
