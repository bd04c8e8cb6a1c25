// Runs the built `bbgate` command as a user would, with no proxy settings leaking in from the
// environment unless a test passes them.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

const PROXY_VARS = /^(https?|all|no)_proxy$/i;

/** This process's environment without proxy settings, plus `env`: what a `bbgate` child process gets. */
export function bbgateEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PROXY_VARS.test(k)));
  return { ...clean, ...env };
}

export function bbgate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60000, env: bbgateEnv(env) }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

export interface ProbeJson {
  ok: boolean;
  steps: { step: string; ok: boolean; ms: number; code?: string; message: string; hint?: string; warnings?: string[] }[];
}
