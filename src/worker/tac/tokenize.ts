// Python 3's tokenizer, for the part of the language a buildbot.tac uses: names,
// integers, strings, operators, comments, line joining and indentation. What is
// not Python is a TAC_SYNTAX error, with the message Python would give where
// that helps (notably `umask = 022`).
import { TacError } from './errors.js';

interface At {
  line: number;
  col: number;
}

export type Token =
  | (At & { type: 'NAME'; value: string })
  | (At & { type: 'INT'; value: number; text: string })
  | (At & { type: 'FLOAT'; text: string })
  | (At & { type: 'STRING'; value: string; bytes: boolean })
  | (At & { type: 'OP'; value: string })
  | (At & { type: 'NEWLINE' | 'INDENT' | 'DEDENT' | 'EOF' });

const OPERATORS = [
  '**=', '//=', '>>=', '<<=', '...',
  '->', ':=', '==', '!=', '<=', '>=', '**', '//', '<<', '>>', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@=',
  '(', ')', '[', ']', '{', '}', ',', ':', '.', ';', '@', '=', '+', '-', '*', '/', '%', '&', '|', '^', '~', '<', '>',
];
const CLOSING: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

const NAME_START = /[\p{L}\p{Nl}_]/u;
const NAME_PART = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]/u;

const INT = /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?0)*|[1-9](?:_?[0-9])*)$/;
const LEADING_ZEROS = /^0(?:_?[0-9])+$/;
const DIGITS = '[0-9](?:_?[0-9])*';
const FLOAT = new RegExp(`^(?:(?:(?:${DIGITS})?\\.${DIGITS}|${DIGITS}\\.?)(?:[eE][+-]?${DIGITS})?[jJ]?|${DIGITS}[jJ])$`);

const STRING_START = /^([rRbBuUfF]{0,2})('''|"""|'|")/;
const STRING_PREFIXES = new Set(['', 'r', 'u', 'b', 'br', 'rb', 'f', 'fr', 'rf']);
const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

export function tokenize(source: string, file: string): Token[] {
  return new Tokenizer(source, file).run();
}

class Tokenizer {
  private readonly tokens: Token[] = [];
  private i = 0;
  private line = 1;
  private lineStart = 0;
  private readonly indents = [0];
  /** Open brackets, innermost last: inside them newlines and indentation do not count. */
  private readonly open: (At & { ch: string })[] = [];

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  run(): Token[] {
    const { src } = this;
    let atLineStart = true;
    while (this.i < src.length) {
      if (atLineStart && this.open.length === 0) {
        if (this.indentation()) atLineStart = false;
        continue;
      }
      const ch = src[this.i]!;
      if (ch === ' ' || ch === '\t' || ch === '\f') {
        this.i++;
      } else if (ch === '#') {
        this.skipComment();
      } else if (ch === '\n' || ch === '\r') {
        if (this.open.length === 0) {
          this.push({ type: 'NEWLINE', ...this.at() });
          atLineStart = true;
        }
        this.newline();
      } else if (ch === '\\') {
        if (!this.isNewline(this.i + 1)) throw this.syntax('unexpected character after line continuation character');
        this.i++;
        this.newline();
      } else if (this.string()) {
        // consumed
      } else if (NAME_START.test(ch)) {
        const start = this.at();
        let j = this.i + 1;
        while (j < src.length && NAME_PART.test(src[j]!)) j++;
        this.push({ type: 'NAME', value: src.slice(this.i, j), ...start });
        this.i = j;
      } else if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(src[this.i + 1] ?? ''))) {
        this.number();
      } else {
        this.operator();
      }
    }
    if (this.open.length > 0) {
      const o = this.open[this.open.length - 1]!;
      throw new TacError('TAC_SYNTAX', this.file, o.line, `"${o.ch}" was never closed`);
    }
    const last = this.tokens[this.tokens.length - 1];
    const end = this.at();
    if (last && last.type !== 'NEWLINE' && last.type !== 'DEDENT') this.push({ type: 'NEWLINE', ...end });
    while (this.indents.length > 1) {
      this.indents.pop();
      this.push({ type: 'DEDENT', ...end });
    }
    this.push({ type: 'EOF', ...end });
    return this.tokens;
  }

  private push(t: Token): void {
    this.tokens.push(t);
  }

  private at(): At {
    return { line: this.line, col: this.i - this.lineStart + 1 };
  }

  private syntax(what: string, line = this.line): TacError {
    return new TacError('TAC_SYNTAX', this.file, line, what);
  }

  private isNewline(j: number): boolean {
    return this.src[j] === '\n' || this.src[j] === '\r';
  }

  /** Consumes one newline (\n, \r\n or \r) at `i`. */
  private newline(): void {
    if (this.src[this.i] === '\r' && this.src[this.i + 1] === '\n') this.i++;
    this.i++;
    this.line++;
    this.lineStart = this.i;
  }

  private skipComment(): void {
    while (this.i < this.src.length && !this.isNewline(this.i)) this.i++;
  }

  /**
   * Measures the indentation of a line (tabs to the next multiple of 8, as
   * Python does) and emits INDENT/DEDENT. Returns false for a blank or
   * comment-only line, which Python ignores, after consuming it.
   */
  private indentation(): boolean {
    const { src } = this;
    let width = 0;
    while (this.i < src.length) {
      const ch = src[this.i];
      if (ch === ' ') width++;
      else if (ch === '\t') width = (Math.floor(width / 8) + 1) * 8;
      else if (ch === '\f') width = 0;
      else break;
      this.i++;
    }
    if (this.i >= src.length) return false;
    if (src[this.i] === '#') this.skipComment();
    if (this.i >= src.length) return false;
    if (this.isNewline(this.i)) {
      this.newline();
      return false;
    }
    const top = this.indents[this.indents.length - 1]!;
    if (width > top) {
      this.indents.push(width);
      this.push({ type: 'INDENT', ...this.at() });
    } else {
      while (width < this.indents[this.indents.length - 1]!) {
        this.indents.pop();
        this.push({ type: 'DEDENT', ...this.at() });
      }
      if (width !== this.indents[this.indents.length - 1]) throw this.syntax('unindent does not match any outer indentation level');
    }
    return true;
  }

  private number(): void {
    const { src } = this;
    const start = this.at();
    let j = this.i;
    while (j < src.length) {
      const c = src[j]!;
      const sign = (c === '+' || c === '-') && /^[0-9][0-9_.]*[eE]$/.test(src.slice(this.i, j));
      if (/[0-9a-zA-Z_.]/.test(c) || sign) j++;
      else break;
    }
    const text = src.slice(this.i, j);
    this.i = j;
    if (INT.test(text)) {
      const value = Number(BigInt(text.replace(/_/g, '')));
      if (!Number.isSafeInteger(value)) throw new TacError('TAC_UNSUPPORTED', this.file, start.line, `the integer ${text} is too large for bbgate`);
      this.push({ type: 'INT', value, text, ...start });
    } else if (LEADING_ZEROS.test(text)) {
      throw this.syntax(`${text}: leading zeros in decimal integer literals are not permitted${this.octalHint(text)}`);
    } else if (FLOAT.test(text)) {
      this.push({ type: 'FLOAT', text, ...start });
    } else {
      throw this.syntax(`invalid number ${text}`);
    }
  }

  /** `umask = 022` is what `buildbot-worker create-worker --umask=022` writes: say so, and how to fix it. */
  private octalHint(text: string): string {
    const digits = text.replace(/_/g, '').replace(/^0+/, '') || '0';
    const fix = /^[0-7]+$/.test(digits) ? `; for octal write 0o${digits}` : '';
    const prev = this.tokens.slice(-2);
    const umask = prev[0]?.type === 'NAME' && prev[0].value === 'umask' && prev[1]?.type === 'OP' && prev[1].value === '=';
    return fix + (umask ? ` (buildbot-worker create-worker --umask=${text} writes this line; bbgate create-worker writes 0o${digits})` : '');
  }

  private operator(): void {
    const start = this.at();
    const op = OPERATORS.find((o) => this.src.startsWith(o, this.i));
    if (!op) {
      const cp = this.src.codePointAt(this.i)!;
      throw this.syntax(`invalid character U+${cp.toString(16).toUpperCase().padStart(4, '0')} at column ${start.col}`);
    }
    if (op === '(' || op === '[' || op === '{') this.open.push({ ch: op, ...start });
    const opener = CLOSING[op];
    if (opener !== undefined) {
      const o = this.open.pop();
      if (!o) throw this.syntax(`unmatched "${op}"`);
      if (o.ch !== opener) throw this.syntax(`closing "${op}" does not match opening "${o.ch}" on line ${o.line}`);
    }
    this.push({ type: 'OP', value: op, ...start });
    this.i += op.length;
  }

  /** Reads a string literal if one starts here; returns false otherwise. */
  private string(): boolean {
    const m = STRING_START.exec(this.src.slice(this.i, this.i + 5));
    if (!m || !STRING_PREFIXES.has(m[1]!.toLowerCase())) return false;
    const prefix = m[1]!.toLowerCase();
    const quote = m[2]!;
    const start = this.at();
    if (prefix.includes('f')) throw new TacError('TAC_UNSUPPORTED', this.file, start.line, 'f-strings are not supported: write the string out');
    const raw = prefix.includes('r');
    const bytes = prefix.includes('b');
    const triple = quote.length === 3;
    const { src } = this;
    this.i += m[0].length;
    let out = '';
    for (;;) {
      if (this.i >= src.length) {
        throw this.syntax(triple ? 'unterminated triple-quoted string literal' : 'unterminated string literal', start.line);
      }
      if (src.startsWith(quote, this.i)) {
        this.i += quote.length;
        break;
      }
      const c = src[this.i]!;
      if (this.isNewline(this.i)) {
        if (!triple) throw this.syntax('unterminated string literal', start.line);
        out += '\n';
        this.newline();
      } else if (c === '\\') {
        out += raw ? this.rawEscape() : this.escape(bytes);
      } else {
        if (bytes && c > '\x7f') throw this.syntax('bytes can only contain ASCII literal characters');
        out += c;
        this.i++;
      }
    }
    this.push({ type: 'STRING', value: out, bytes, ...start });
    return true;
  }

  /** In a raw string a backslash stays, and keeps the next character (even a quote) from ending the string. */
  private rawEscape(): string {
    this.i++;
    if (this.i >= this.src.length) return '\\';
    if (this.isNewline(this.i)) {
      this.newline();
      return '\\\n';
    }
    return '\\' + this.src[this.i++];
  }

  private escape(bytes: boolean): string {
    const { src } = this;
    const next = src[this.i + 1];
    if (next === undefined) {
      this.i++;
      return '';
    }
    if (this.isNewline(this.i + 1)) {
      this.i++;
      this.newline();
      return '';
    }
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      this.i += 2;
      return simple;
    }
    if (/[0-7]/.test(next)) {
      const digits = /^[0-7]{1,3}/.exec(src.slice(this.i + 1))![0];
      this.i += 1 + digits.length;
      return String.fromCodePoint(parseInt(digits, 8));
    }
    const widths: Record<string, number> = bytes ? { x: 2 } : { x: 2, u: 4, U: 8 };
    const width = widths[next];
    if (width !== undefined) {
      const hex = src.slice(this.i + 2, this.i + 2 + width);
      if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) throw this.syntax(`truncated \\${next} escape in a string`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw this.syntax(`illegal Unicode character \\${next} escape in a string`);
      this.i += 2 + width;
      return String.fromCodePoint(cp);
    }
    if (next === 'N' && !bytes) {
      if (src[this.i + 2] !== '{') throw this.syntax('malformed \\N character escape in a string');
      throw new TacError('TAC_UNSUPPORTED', this.file, this.line, '\\N{...} escapes are not supported: write the character itself');
    }
    // Python keeps an unknown escape as it is (with a DeprecationWarning).
    this.i += 2;
    return '\\' + next;
  }
}
