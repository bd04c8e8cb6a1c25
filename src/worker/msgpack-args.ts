import { Tuple, type PbValue } from '../pb/index.js';

/**
 * The msgpack master resolves every path itself (against the basedir the
 * worker reported) and sends them under names of its own; the command layer
 * takes PB's names, joined to a builder directory. Renamed back, with the
 * basedir as the builder directory, an absolute path stays what the master
 * made it (Python's join lets an absolute component win).
 */
const RENAMED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  mkdir: { paths: 'dir' },
  rmdir: { paths: 'dir' },
  cpdir: { from_path: 'fromdir', to_path: 'todir' },
  stat: { path: 'file' },
  listdir: { path: 'dir' },
  upload_file: { path: 'workersrc' },
  upload_directory: { path: 'workersrc' },
  download_file: { path: 'workerdest' },
};

/**
 * start_command's `args` as the command layer reads them. Tuples arrive as
 * lists over msgpack, so a shell argv item `['obfuscated', real, fake]` is
 * made the tuple PB would have carried: the secret stays out of the log.
 */
export function commandArgs(command: string, args: ReadonlyMap<string, PbValue>): Map<string, PbValue> {
  const renamed = RENAMED[command] ?? {};
  const out = new Map<string, PbValue>();
  for (const [key, value] of args) if (!Object.values(renamed).includes(key)) out.set(key, value);
  for (const [from, to] of Object.entries(renamed)) {
    if (!args.has(from)) continue;
    out.delete(from);
    out.set(to, args.get(from)!);
  }
  const argv = out.get('command');
  if (command === 'shell' && Array.isArray(argv)) out.set('command', argv.map(obfuscated));
  return out;
}

function obfuscated(item: PbValue): PbValue {
  return Array.isArray(item) && item.length === 3 && item[0] === 'obfuscated' ? Tuple.from(item) : item;
}
