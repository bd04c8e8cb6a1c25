import { PyFloat, Tuple, isIntegral } from '../../pb/values.js';

/**
 * Python's repr() and str() for the values that appear in buildbot-worker's
 * headers (`argv: [b'make', b'all']`, `watching logfiles {'log': 'out.txt'}`).
 * Users and scripts read these lines, so they are spelled as Python spells them.
 */

// Python's str.isprintable(): everything but the Unicode "Other" and "Separator" categories, except the space.
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

const SHORT_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Python's choice: single quotes, unless the text has some and no double quotes. */
function quoteFor(hasSingle: boolean, hasDouble: boolean): string {
  return hasSingle && !hasDouble ? '"' : "'";
}

export function reprText(text: string): string {
  const quote = quoteFor(text.includes("'"), text.includes('"'));
  let out = quote;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote) out += `\\${ch}`;
    else if (SHORT_ESCAPES[ch] !== undefined) out += SHORT_ESCAPES[ch];
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      out += cp < 0x100 ? `\\x${hex(cp, 2)}` : cp < 0x10000 ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}

export function reprBytes(bytes: Uint8Array): string {
  const quote = quoteFor(bytes.includes(0x27), bytes.includes(0x22));
  const quoteByte = quote.charCodeAt(0);
  let out = 'b' + quote;
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    if (b === quoteByte) out += `\\${ch}`;
    else if (SHORT_ESCAPES[ch] !== undefined) out += SHORT_ESCAPES[ch];
    else if (b < 0x20 || b >= 0x7f) out += `\\x${hex(b, 2)}`;
    else out += ch;
  }
  return out + quote;
}

/** repr(float): the shortest round-tripping digits, in exponent form below 1e-4 and from 1e16 on. */
export function reprFloat(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = n.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const sign = n < 0 ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
    return `${sign}${digits[0]}${rest}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const whole = digits.padEnd(exp + 1, '0');
  return `${sign}${whole.slice(0, exp + 1)}.${whole.slice(exp + 1) || '0'}`;
}

function reprItems(items: Iterable<unknown>): string {
  return Array.from(items, pyRepr).join(', ');
}

function reprEntries(entries: Iterable<[unknown, unknown]>): string {
  return Array.from(entries, ([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ');
}

export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return isIntegral(value) ? value.toString() : reprFloat(value);
  if (value instanceof PyFloat) return reprFloat(value.value);
  if (typeof value === 'string') return reprText(value);
  if (value instanceof Uint8Array) return reprBytes(value);
  if (value instanceof Tuple) return value.length === 1 ? `(${pyRepr(value[0])},)` : `(${reprItems(value)})`;
  if (Array.isArray(value)) return `[${reprItems(value)}]`;
  if (value instanceof Map) return `{${reprEntries(value)}}`;
  if (typeof value === 'object' && value.constructor === Object) return `{${reprEntries(Object.entries(value))}}`;
  return `<${(value as object).constructor?.name ?? typeof value} object>`;
}

/** Python's str(): text as it is, everything else as its repr. */
export function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

// shlex.quote's safe characters, ASCII only as in Python.
const SHELL_UNSAFE = /[^\w@%+=:,./-]/;

/** shlex.quote, except that the empty string shows as "" (buildbot-worker's shell_quote). */
export function shellQuote(arg: string): string {
  if (arg === '') return '""';
  if (!SHELL_UNSAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'"'"'`)}'`;
}
