import { resolve } from 'node:path';

/** A master-given value: a string, a list of path entries (joined with `:`), or null to remove the variable. */
export type EnvValue = string | readonly string[] | null;

export type EnvChanges = ReadonlyMap<string, EnvValue>;

// Only the braced form: a bare $NAME is left for the child's shell, as buildbot-worker leaves it.
const REFERENCE = /\$\{([0-9a-zA-Z_]*)\}/g;

/**
 * The child's environment: the worker's own, with the master's changes applied
 * and `${NAME}` in the master's values replaced from the worker's environment.
 *
 * PYTHONPATH keeps the worker's value after the master's, as buildbot-worker
 * intends; unlike 3.7 (which appends `:${PYTHONPATH}` unconditionally) no
 * trailing `:` is left when the worker has none, because an empty entry puts
 * the current directory on sys.path. A null PYTHONPATH removes it (3.7 crashes).
 */
export function buildEnvironment(base: NodeJS.ProcessEnv, changes: EnvChanges | null | undefined, workdir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined) env[key] = value;
  }
  const expand = (text: string): string => text.replace(REFERENCE, (_, name: string) => base[name] ?? '');
  for (const [key, value] of changes ?? []) {
    if (value === null) {
      delete env[key];
      continue;
    }
    let text = expand(typeof value === 'string' ? value : value.join(':'));
    if (key === 'PYTHONPATH' && base.PYTHONPATH) text += `:${base.PYTHONPATH}`;
    env[key] = text;
  }
  env.PWD = resolve(workdir);
  return env;
}
