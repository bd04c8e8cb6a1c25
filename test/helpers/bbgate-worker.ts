// A bbgate worker running in the test process against a (real) master, with its log lines kept.
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEndpoint } from '../../src/address/connection-string.js';
import { parseProxySetting } from '../../src/address/proxy-setting.js';
import type { WorkerConfig } from '../../src/worker/config.js';
import { runWorker } from '../../src/worker/run.js';

export interface TestWorker {
  basedir: string;
  lines: string[];
  /** Resolves with the first log line that matches (already logged or future). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, as `bbgate stop` would send; resolves with the exit status. */
  stop(): Promise<number>;
  /** Delivers a signal to the worker (SIGHUP asks for a graceful shutdown with allow_shutdown='signal'). */
  signal(name: NodeJS.Signals): void;
  exited: Promise<number>;
}

/** `connection` and `proxyConnectionString` are parsed here, as readTac parses a tac's. */
export async function startTestWorker(config: Partial<WorkerConfig> & { connection: string; workername: string; password: string }): Promise<TestWorker> {
  const basedir = config.basedir ?? (await mkdtemp(join(tmpdir(), 'bbgate-worker-')));
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  const record = (level: string) => (fields: object, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
    for (const w of [...watchers]) w();
  };
  const signals = new EventEmitter();
  const exited = runWorker(
    {
      keepalive: 600,
      maxdelay: 2,
      deleteLeftoverDirs: false,
      protocol: 'pb',
      usePTY: false,
      endpoint: parseEndpoint(config.connection),
      ...(config.proxyConnectionString !== undefined ? { proxy: parseProxySetting(config.proxyConnectionString) } : {}),
      ...config,
      basedir,
    },
    { info: record('info'), warn: record('warn'), error: record('error') },
    signals,
  );
  return {
    basedir,
    lines,
    exited,
    waitForLog(re, timeoutMs = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => re.test(l));
          if (hit) {
            clearTimeout(timer);
            watchers.delete(check);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    signal(name) {
      signals.emit(name);
    },
    async stop() {
      signals.emit('SIGTERM');
      const status = await exited;
      if (!config.basedir) await rm(basedir, { recursive: true, force: true });
      return status;
    },
  };
}
