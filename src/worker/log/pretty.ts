/** Fields every line has, shown in the line's head or not at all. */
const HEAD = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/**
 * C0 and C1 controls and DEL: text from the network (a worker's name, a
 * peer's error) that reaches a terminal must not move its cursor, retitle it
 * or ring it, and one log line must stay one line.
 */
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * One JSON log line as a person reads it, twistd-style:
 * `2026-01-31 12:00:00.123 INFO  message key=value ...`. Lines that are not
 * pino's JSON (a crash trace on stderr, say) pass through as text. Either
 * way, control characters are shown as \xNN.
 */
export function formatLogLine(line: string): string {
  const trimmed = line.replace(/\r?\n$/, '');
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(trimmed);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${printable(trimmed)}\n`;
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${printable(trimmed)}\n`;
  }
  const time = typeof entry.time === 'string' ? entry.time.replace('T', ' ').replace(/Z$/, '') : String(entry.time ?? '');
  const level = String(entry.level ?? '').toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => `${printable(key)}=${fieldText(value)}`);
  return `${[printable(time), printable(level), printable(String(entry.msg ?? '')), ...fields].join(' ')}\n`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\x00-\x1f\x7f-\x9f]+$/.test(value) ? value : `"${printable(value.replace(/["\\]/g, '\\$&'))}"`;
  // A stack is shown as the lines it has, below the line it belongs to.
  if (typeof value === 'object' && value !== null && 'stack' in value && typeof value.stack === 'string') return `\n${value.stack.split('\n').map(printable).join('\n')}\n`;
  // JSON escapes C0 controls itself, but not DEL or C1.
  return printable(JSON.stringify(value));
}

function printable(text: string): string {
  return text.replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
