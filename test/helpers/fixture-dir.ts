import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/fixtures/master, found from this module (dist/test/helpers/...) or the cwd. */
export function fixtureDir(): string {
  const env = process.env.BBGATE_MASTER_FIXTURE_DIR;
  if (env) return env;
  const starts = [path.dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    for (let d = start; ; d = path.dirname(d)) {
      const cand = path.join(d, 'test', 'fixtures', 'master');
      if (existsSync(path.join(cand, 'master.cfg'))) return cand;
      if (path.dirname(d) === d) break;
    }
  }
  throw new Error('cannot find test/fixtures/master (set BBGATE_MASTER_FIXTURE_DIR)');
}
