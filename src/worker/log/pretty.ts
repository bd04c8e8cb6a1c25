/** Fields every line has, shown in the line's head or not at all. */
const HEAD = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/**
 * One JSON log line as a person reads it, twistd-style:
 * `2026-01-31 12:00:00.123 INFO  message key=value ...`. Lines that are not
 * pino's JSON (a crash trace on stderr, say) pass through as they are.
 */
export function formatLogLine(line: string): string {
  const trimmed = line.replace(/\r?\n$/, '');
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(trimmed);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${trimmed}\n`;
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${trimmed}\n`;
  }
  const time = typeof entry.time === 'string' ? entry.time.replace('T', ' ').replace(/Z$/, '') : String(entry.time ?? '');
  const level = String(entry.level ?? '').toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  return `${[time, level, String(entry.msg ?? ''), ...fields].join(' ')}\n`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'object' && value !== null && 'stack' in value && typeof value.stack === 'string') return `\n${value.stack}\n`;
  return JSON.stringify(value);
}
