// Python's str where it differs from JavaScript's: whitespace is str.isspace()'s
// (JavaScript's \s lacks U+0085 and U+001C..U+001F and has U+FEFF), int()'s is
// that without U+001C..U+001F, and int() reads any Unicode decimal digit.

/** The characters str.isspace() is true for but U+001C..U+001F (bidi class WS, B or S, or category Zs): int()'s whitespace. */
const INT_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** str.isspace()'s characters: strip() and split() take these. */
const SPACE = `[${INT_SPACE}\\x1c-\\x1f]`;
const IS_SPACE = new RegExp(`^${SPACE}$`);
const RUN = new RegExp(`${SPACE}+`);

/** str.strip(), lstrip() and rstrip() without arguments (a loop: /\s+$/ takes quadratic time on a long run of spaces inside a string). */
export function pythonStrip(s: string, side: 'both' | 'left' | 'right' = 'both'): string {
  let start = 0;
  let end = s.length;
  // Every whitespace character is in the BMP: one UTF-16 unit.
  if (side !== 'right') while (start < end && IS_SPACE.test(s[start]!)) start++;
  if (side !== 'left') while (end > start && IS_SPACE.test(s[end - 1]!)) end--;
  return s.slice(start, end);
}

/** str.split: on runs of whitespace without empty strings when `sep` is None, else on each `sep`. */
export function pythonSplit(s: string, sep: string | null, maxsplit: number): string[] {
  const limit = maxsplit < 0 ? Infinity : maxsplit;
  const out: string[] = [];
  if (sep === null) {
    let rest = pythonStrip(s, 'left');
    while (rest !== '' && out.length < limit) {
      const m = RUN.exec(rest);
      if (!m) break;
      out.push(rest.slice(0, m.index));
      rest = pythonStrip(rest.slice(m.index + m[0].length), 'left');
    }
    if (rest !== '') out.push(rest);
    return out;
  }
  let rest = s;
  while (out.length < limit) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

const DECIMAL = /^\p{Nd}$/u;
/** int() turns non-ASCII whitespace into spaces, then skips ASCII whitespace, which lacks U+001C..U+001F. */
const INT = new RegExp(`^[${INT_SPACE}]*([+-]?)(\\p{Nd}(?:_?\\p{Nd})*)[${INT_SPACE}]*$`, 'u');

/**
 * int(s) with base 10: whitespace around, a sign, Unicode decimal digits with
 * single underscores between them. The digits as ASCII with their sign, or
 * undefined where Python raises ValueError.
 */
export function pythonIntDigits(s: string): string | undefined {
  const m = INT.exec(s);
  if (!m) return undefined;
  let digits = '';
  for (const ch of m[2]!) if (ch !== '_') digits += String(decimalValue(ch));
  return `${m[1]}${digits}`;
}

/** A decimal digit's value: Unicode puts each script's digits 0 to 9 in a row, so it is the offset from the row's start. */
function decimalValue(ch: string): number {
  const cp = ch.codePointAt(0)!;
  let start = cp;
  while (DECIMAL.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}
