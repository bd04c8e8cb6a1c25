import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { VERSION } from '../version.js';
import type { CommandLogger } from './commands/types.js';

export interface InfoSource {
  basedir: string;
  numcpus?: number;
  deleteLeftoverDirs: boolean;
  environ: NodeJS.ProcessEnv;
  commands: Map<string, string>;
  osRelease?: string;
  logger: CommandLogger;
}

/** The version the master records: BUILDBOT_VERSION when set (as buildbot-worker honours it), else bbgate's. */
export function workerVersion(environ: NodeJS.ProcessEnv): string {
  return environ.BUILDBOT_VERSION ?? `bbgate ${VERSION}`;
}

/**
 * The dict getWorkerInfo answers, built in buildbot-worker's order: every file
 * in info/, then os_* keys from /etc/os-release, then the fixed keys. A
 * malformed os-release line is skipped with a warning (buildbot-worker raises,
 * which fails the login).
 */
export async function workerInfo(source: InfoSource): Promise<Map<string, unknown>> {
  const info = new Map<string, unknown>();
  const infoDir = join(source.basedir, 'info');
  const entries = await readdir(infoDir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.isFile()) info.set(entry.name, await readFile(join(infoDir, entry.name), 'utf8'));
  }
  const osRelease = await readFile(source.osRelease ?? '/etc/os-release', 'utf8').catch(() => '');
  for (const line of osRelease.split('\n')) {
    const text = line.trim();
    if (!text || text.startsWith('#')) continue;
    const eq = text.indexOf('=');
    if (eq < 0) {
      source.logger.warn({ line: text }, 'skipping a malformed /etc/os-release line');
      continue;
    }
    const value = text.slice(eq + 1).replace(/^"+|"+$/g, '');
    if (value) info.set(`os_${text.slice(0, eq).toLowerCase()}`, value);
  }
  info.set('environ', new Map(Object.entries(source.environ).filter((e): e is [string, string] => e[1] !== undefined)));
  info.set('system', 'posix');
  info.set('basedir', source.basedir);
  info.set('numcpus', source.numcpus ?? cpus().length);
  info.set('version', workerVersion(source.environ));
  info.set('worker_commands', source.commands);
  info.set('delete_leftover_dirs', source.deleteLeftoverDirs ? 1 : 0);
  return info;
}
