// shlex.quote's safe characters, ASCII only as in Python.
const SHELL_UNSAFE = /[^\w@%+=:,./-]/;

/** shlex.quote, except that the empty string shows as "" (buildbot-worker's shell_quote). */
export function shellQuote(arg: string): string {
  if (arg === '') return '""';
  if (!SHELL_UNSAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'"'"'`)}'`;
}
