import { PyFloat, Tuple, isIntegral } from '../../pb/values/values.js';

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

/**
 * The longest repr bbgate builds. Headers and error messages show values a
 * master sent, and jelly's shared references let a few hundred bytes stand
 * for a tree of billions of nodes (a 780-byte chain made a 335-million-character
 * string); Python would build all of it, bbgate stops here and says so.
 */
export const MAX_REPR_CHARS = 64 * 1024;

/** Ends a repr that reached MAX_REPR_CHARS (a cut string may also end in an open quote). */
export const REPR_CUT = `...[cut at ${MAX_REPR_CHARS} characters]`;

/** Thrown inside ReprBuilder when the output is full; never leaves pyRepr. */
class ReprFull {}

/**
 * Python's repr of nested containers: a container already being printed
 * further up (a cycle) shows as `[...]`, `(...)` or `{...}`, as Python's
 * Py_ReprEnter makes it; a container shared but not cyclic prints in full
 * each time, as in Python, which the length cap bounds.
 */
class ReprBuilder {
  private readonly parts: string[] = [];
  private length = 0;
  /** Containers on the path from the root to the value being printed. */
  private readonly open = new Set<object>();

  constructor(private readonly max: number) {}

  build(value: unknown): string {
    try {
      this.value(value);
    } catch (err) {
      if (!(err instanceof ReprFull)) throw err;
      this.parts.push(REPR_CUT);
    }
    return this.parts.join('');
  }

  private add(text: string): void {
    if (this.length + text.length > this.max) {
      this.parts.push(text.slice(0, this.max - this.length));
      throw new ReprFull();
    }
    this.parts.push(text);
    this.length += text.length;
  }

  private value(value: unknown): void {
    if (value instanceof Tuple) return this.container(value, '(', ')', () => this.items(value, value.length === 1 ? ',' : ''));
    if (Array.isArray(value)) return this.container(value, '[', ']', () => this.items(value, ''));
    if (value instanceof Map) return this.container(value, '{', '}', () => this.entries(value));
    if (typeof value === 'object' && value !== null && value.constructor === Object) {
      return this.container(value, '{', '}', () => this.entries(Object.entries(value)));
    }
    this.add(reprScalar(value));
  }

  private container(value: object, opening: string, closing: string, body: () => void): void {
    if (this.open.has(value)) return this.add(`${opening}...${closing}`);
    this.open.add(value);
    this.add(opening);
    body();
    this.add(closing);
    this.open.delete(value);
  }

  private items(items: Iterable<unknown>, trailer: string): void {
    let first = true;
    for (const item of items) {
      if (!first) this.add(', ');
      first = false;
      this.value(item);
    }
    this.add(trailer);
  }

  private entries(entries: Iterable<[unknown, unknown]>): void {
    let first = true;
    for (const [k, v] of entries) {
      if (!first) this.add(', ');
      first = false;
      this.value(k);
      this.add(': ');
      this.value(v);
    }
  }
}

function reprScalar(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return isIntegral(value) ? value.toString() : reprFloat(value);
  if (value instanceof PyFloat) return reprFloat(value.value);
  if (typeof value === 'string') return reprText(value);
  if (value instanceof Uint8Array) return reprBytes(value);
  return `<${(value as object).constructor?.name ?? typeof value} object>`;
}

/** Python's repr(), cycles shown as Python shows them and the length capped at MAX_REPR_CHARS. */
export function pyRepr(value: unknown): string {
  return new ReprBuilder(MAX_REPR_CHARS).build(value);
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
