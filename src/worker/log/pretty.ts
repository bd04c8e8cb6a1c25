/** Fields every line has, shown in the line's head or not at all. */
const HEAD = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/**
 * C0 and C1 controls and DEL: text from the network (a worker's name, a
 * peer's error) that reaches a terminal must not move its cursor, retitle it
 * or ring it, and one log line must stay one line.
 */
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;

/** How pino's levels show in a text line: info, the usual, not at all (as in Twisted's logs). */
const LEVEL_TAGS: Record<string, string> = { trace: 'TRACE: ', debug: 'DEBUG: ', info: '', warn: 'WARNING: ', error: 'ERROR: ', fatal: 'FATAL: ' };

/**
 * One JSON log line as a person reads it, in the shape of buildbot-worker's
 * twistd.log: `2026-01-31 12:00:00+0000 [-] message key=value ...` (local
 * time with its offset, as Twisted writes it; warnings and errors say so
 * before the message). Lines that are not pino's JSON (a crash trace on
 * stderr, say) pass through as text. Either way, control characters are
 * shown as \xNN.
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
  const level = String(entry.level ?? '');
  const tag = Object.hasOwn(LEVEL_TAGS, level) ? LEVEL_TAGS[level]! : `${level.toUpperCase()}: `;
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => `${printable(key)}=${fieldText(value)}`);
  return `${[`${printable(twistedTime(entry.time))} [-]`, printable(tag + String(entry.msg ?? '')), ...fields].join(' ')}\n`;
}

/** An ISO time as Twisted's log shows it: local time, to the second, and the zone's offset (`2026-01-31 13:00:00+0100`). */
export function twistedTime(time: unknown): string {
  const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : undefined;
  if (!date || Number.isNaN(date.getTime())) return String(time ?? '');
  const two = (n: number) => String(n).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const zone = `${offset < 0 ? '-' : '+'}${two(Math.floor(Math.abs(offset) / 60))}${two(Math.abs(offset) % 60)}`;
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}${zone}`;
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
