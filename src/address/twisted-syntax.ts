import { isIP } from 'node:net';
import { EndpointSyntaxError } from './syntax-error.js';
import { refuseUserInfo } from './user-info.js';

// Twisted's endpoint description syntax, shared by client strings (./client-string.ts) and the
// relay's listeners (./listener.ts): the tokenizer, the split into type and arguments, escaping.

/** A description split as Twisted's `_parse` splits it: the type, the positional arguments, the keywords. */
export interface EndpointParts {
  type: string;
  positional: string[];
  keywords: Map<string, string>;
}

interface Arg {
  text: string;
  /** Where the first unescaped `=` splits key from value, or -1 for a positional argument. */
  eq: number;
}

/**
 * Twisted's tokenizer: `:` separates arguments, the first `=` in an argument
 * splits key from value (later ones are literal), and a backslash makes the
 * next character literal. One extension: a positional argument written
 * `[IPv6]` is taken whole. Twisted splits it at its colons into pieces that
 * never make a working endpoint, so the extension gives no working string a
 * new meaning; it only refuses bracketed host names no resolver would take.
 */
function tokenize(description: string): Arg[] {
  const args: Arg[] = [];
  let text = '';
  let eq = -1;
  for (let i = 0; i < description.length; i++) {
    const ch = description[i]!;
    if (ch === '\\') {
      if (i + 1 >= description.length) throw new EndpointSyntaxError(description, `a backslash at the end escapes nothing`);
      text += description[++i];
    } else if (ch === ':') {
      args.push({ text, eq });
      text = '';
      eq = -1;
    } else if (ch === '[' && text === '' && args.length > 0) {
      const close = bracketEnd(description, i);
      text = description.slice(i + 1, close);
      i = close;
    } else {
      if (ch === '=' && eq < 0) eq = text.length;
      text += ch;
    }
  }
  args.push({ text, eq });
  return args;
}

/** The index of the `]` closing the bracketed IPv6 address that opens at `open`. */
function bracketEnd(description: string, open: number): number {
  const close = description.indexOf(']', open);
  const literal = 'write \\[ for a literal "["';
  if (close < 0) {
    throw new EndpointSyntaxError(description, `the "[" at character ${open + 1} is never closed (brackets hold an IPv6 address, as in tcp:[fd00::1]:9989; ${literal})`);
  }
  const after = description[close + 1];
  if (after !== undefined && after !== ':') {
    throw new EndpointSyntaxError(description, `"]" at character ${close + 1} must be followed by ":" or the end, not "${after}"`);
  }
  const inside = description.slice(open + 1, close);
  if (isIP(inside) !== 6) {
    throw new EndpointSyntaxError(description, `brackets hold an IPv6 address, and "${inside}" is not one (${literal})`);
  }
  return close;
}

/**
 * Splits a description into type, positional and keyword arguments as
 * Twisted's `_parse` does, except that what Twisted resolves silently (a
 * repeated key: the last wins; a keyword before the type) is an error here.
 */
export function splitEndpoint(description: string): EndpointParts {
  refuseUserInfo(description);
  const [head, ...rest] = tokenize(description);
  if (!head || rest.length === 0 || head.text === '') {
    throw new EndpointSyntaxError(description, `not a connection string: expected TYPE:ARGUMENTS, such as tcp:master.example.org:9989`);
  }
  if (head.eq >= 0) {
    throw new EndpointSyntaxError(description, `the connection type must come first, as in tcp:HOST:PORT, not "${head.text}"`);
  }
  const positional: string[] = [];
  const keywords = new Map<string, string>();
  for (const arg of rest) {
    if (arg.eq < 0) {
      positional.push(arg.text);
      continue;
    }
    const key = arg.text.slice(0, arg.eq);
    if (keywords.has(key)) throw new EndpointSyntaxError(description, `"${key}" is given twice`);
    keywords.set(key, arg.text.slice(arg.eq + 1));
  }
  // Twisted upper-cases the type before looking it up; going through upper
  // case first keeps its folding too (ſ becomes S, so "ſsl" is ssl there).
  return { type: head.text.toUpperCase().toLowerCase(), positional, keywords };
}

/** Makes a value literal inside a description (Twisted's quoteStringArgument, plus `=` for readability). */
export function escape(value: string): string {
  return value.replace(/[\\:=]/g, (c) => `\\${c}`);
}
