// The statements and expressions a buildbot.tac is made of: imports,
// assignments, calls, attribute access, subscripts, literals and lists, `if`
// blocks with comparisons, `in`, `is`, `not`, `and`, `or`, `for` loops over a
// list, `del`: what `create-worker` writes and what the container images' tacs,
// configured from the environment, use. Other valid Python is
// TAC_UNSUPPORTED, named; broken Python is TAC_SYNTAX.
import { TacError } from './errors.js';
import { tokenize, type Token } from './tokenize.js';

export type Expr =
  | { k: 'const'; value: string | number | boolean | null; line: number }
  | { k: 'bytes'; line: number }
  | { k: 'name'; id: string; line: number }
  | { k: 'attr'; obj: Expr; name: string; line: number }
  | { k: 'call'; fn: Expr; args: Expr[]; kwargs: { name: string; value: Expr }[]; line: number }
  | { k: 'subscript'; obj: Expr; index: Expr; line: number }
  | { k: 'list'; items: Expr[]; line: number }
  | { k: 'compare'; op: CompareOp; left: Expr; right: Expr; line: number }
  | { k: 'not'; operand: Expr; line: number }
  /** `a or b or c`: one node for the whole chain, as Python's BoolOp, so that no chain is deeper than its operators' precedence. */
  | { k: 'boolop'; op: 'and' | 'or'; values: Expr[]; line: number };

export type CompareOp = '==' | '!=' | 'in' | 'not in' | 'is' | 'is not';

/** What an assignment or `del` may name: a variable, or an item (`os.environ[name]`). */
export type Target = { k: 'name'; id: string; line: number } | { k: 'subscript'; obj: Expr; index: Expr; line: number };

export interface Alias {
  name: string;
  as?: string;
}

export type Stmt =
  | { k: 'import'; modules: Alias[]; line: number }
  | { k: 'from'; module: string; names: Alias[]; line: number }
  | { k: 'assign'; target: Target; value: Expr; line: number }
  | { k: 'del'; targets: Target[]; line: number }
  | { k: 'for'; target: string; iter: Expr; body: Stmt[]; orelse: Stmt[]; line: number }
  | { k: 'break' | 'continue'; line: number }
  | { k: 'expr'; value: Expr; line: number }
  | { k: 'if'; branches: { test: Expr; body: Stmt[] }[]; orelse: Stmt[]; line: number }
  | { k: 'pass'; line: number };

const KEYWORDS = new Set([
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del', 'elif', 'else', 'except',
  'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try',
  'while', 'with', 'yield',
]);

/** Statements Python refuses outside a function (or loop), which a tac, having no functions, cannot hold there. */
const OUT_OF_PLACE: Record<string, string> = {
  return: "'return' outside function",
  yield: "'yield' outside function",
  await: "'await' outside function",
};
const OUTSIDE_LOOP: Record<string, string> = {
  break: "'break' outside loop",
  continue: "'continue' not properly in loop",
};

/**
 * How deeply expressions and blocks may nest. Python's own parser stops near
 * 200 parentheses; a tac needs a handful. The bound keeps a hostile or broken
 * file from exhausting the stack.
 */
const MAX_NESTING = 100;

/** Operators Python would accept after an operand, which bbgate does not evaluate. */
const BINARY = new Set(['+', '-', '*', '/', '//', '%', '**', '@', '&', '|', '^', '<<', '>>', '<', '>', '<=', '>=']);
const BINARY_WORDS = new Set(['and', 'or', 'in', 'is', 'not', 'if']);
const COMPARISONS = new Set(['==', '!=', '<', '>', '<=', '>=']);
const AUGMENTED = new Set(['+=', '-=', '*=', '/=', '//=', '%=', '**=', '@=', '&=', '|=', '^=', '<<=', '>>=']);

export function parseTacSource(source: string, file: string): Stmt[] {
  return new Parser(tokenize(source, file), file).module();
}

class Parser {
  private pos = 0;
  private loops = 0;
  private depth = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly file: string,
  ) {}

  module(): Stmt[] {
    const body: Stmt[] = [];
    while (this.peek().type !== 'EOF') body.push(...this.statement());
    return body;
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'EOF') this.pos++;
    return t;
  }

  private isOp(value: string, t = this.peek()): boolean {
    return t.type === 'OP' && t.value === value;
  }

  private isName(value: string, t = this.peek()): boolean {
    return t.type === 'NAME' && t.value === value;
  }

  private syntax(what: string, t = this.peek()): TacError {
    return new TacError('TAC_SYNTAX', this.file, t.line, what);
  }

  private unsupported(what: string, t = this.peek()): TacError {
    return new TacError('TAC_UNSUPPORTED', this.file, t.line, `${what}: bbgate reads a buildbot.tac without running Python, and understands assignments, imports, calls, lists, \`if\` blocks, \`for\` loops over lists and \`del\``);
  }

  private expectOp(value: string, what: string): Token {
    if (!this.isOp(value)) throw this.syntax(`expected "${value}" ${what}, found ${describe(this.peek())}`);
    return this.next();
  }

  private statement(): Stmt[] {
    const t = this.peek();
    if (t.type === 'INDENT') throw this.syntax('unexpected indent');
    if (t.type === 'NAME') {
      if (t.value === 'if') return [this.ifStatement()];
      if (t.value === 'elif' || t.value === 'else') throw this.syntax(`"${t.value}" without an "if"`);
      if (t.value === 'for') return [this.forStatement()];
      const misplaced = OUT_OF_PLACE[t.value];
      if (misplaced) throw this.syntax(misplaced);
      if (['while', 'def', 'class', 'try', 'with', 'async', 'global', 'nonlocal', 'assert', 'raise'].includes(t.value)) {
        throw this.unsupported(`"${t.value}" statements are not supported`);
      }
    }
    return this.simpleStatements();
  }

  private simpleStatements(): Stmt[] {
    const stmts = [this.simpleStatement()];
    while (this.isOp(';')) {
      this.next();
      if (this.peek().type === 'NEWLINE') break;
      stmts.push(this.simpleStatement());
    }
    const t = this.peek();
    if (t.type !== 'NEWLINE' && t.type !== 'EOF') throw this.syntax(`invalid syntax at ${describe(t)}`);
    this.next();
    return stmts;
  }

  private simpleStatement(): Stmt {
    const t = this.peek();
    if (this.isName('import')) return this.importStatement();
    if (this.isName('from')) return this.fromStatement();
    if (this.isName('pass') || this.isName('break') || this.isName('continue')) {
      const word = text(t) as 'pass' | 'break' | 'continue';
      const outside = OUTSIDE_LOOP[word];
      if (this.loops === 0 && outside) throw this.syntax(outside);
      this.next();
      return { k: word, line: t.line };
    }
    if (this.isName('del')) return this.delStatement();
    const target = this.expression();
    const after = this.peek();
    if (this.isOp('=')) {
      this.next();
      const assigned = this.target(target, t, 'assign to');
      const value = this.expression();
      if (this.isOp('=')) throw this.unsupported('chained assignments (a = b = ...) are not supported');
      if (assigned.k === 'name') this.endOfAssignment(assigned.id, value);
      return { k: 'assign', target: assigned, value, line: t.line };
    }
    if (after.type === 'OP' && AUGMENTED.has(after.value)) throw this.unsupported(`"${after.value}" assignments are not supported`, after);
    if (this.isOp(',')) throw this.unsupported('tuples (a, b) are not supported', after);
    if (this.isOp(':') && target.k === 'name') throw this.unsupported('annotated assignments (name: type = ...) are not supported', after);
    return { k: 'expr', value: target, line: t.line };
  }

  /**
   * buildbot-worker create-worker pastes --proxy-connection-string into the
   * tac without quotes, giving `proxy_connection_string = tcp:host:port`; say
   * so rather than just "invalid syntax". Only the first word is quoted back,
   * since the rest may hold credentials.
   */
  private endOfAssignment(target: string, value: Expr): void {
    const t = this.peek();
    if (t.type === 'NEWLINE' || t.type === 'EOF' || this.isOp(';')) return;
    if (value.k === 'name' && t.type === 'OP' && (t.value === ':' || t.value === '//')) {
      throw this.syntax(
        `"${target} = ${value.id}${t.value}...": the value is not quoted; a connection string must be a Python string, such as '${value.id}:...' (buildbot-worker create-worker writes --proxy-connection-string without quotes; bbgate create-worker quotes it)`,
      );
    }
    if (this.isOp(',')) throw this.unsupported('tuples (a, b) are not supported', t);
    throw this.syntax(`invalid syntax at ${describe(t)}`);
  }

  /** An expression that may be assigned to or deleted, as Python decides it. */
  private target(e: Expr, t: Token, verb: 'assign to' | 'delete'): Target {
    if (e.k === 'name' || e.k === 'subscript') return e;
    if (e.k === 'attr') throw this.unsupported(`${verb === 'delete' ? 'deleting' : 'assigning to'} an attribute (.${e.name}) is not supported`, t);
    if (e.k === 'list') throw this.unsupported(`${verb === 'delete' ? 'deleting' : 'assigning to'} a list of names is not supported`, t);
    throw this.syntax(`cannot ${verb} ${e.k === 'call' ? 'a function call' : e.k === 'const' || e.k === 'bytes' ? 'a literal' : 'an expression'}`, t);
  }

  private delStatement(): Stmt {
    const keyword = this.next();
    const targets: Target[] = [];
    do {
      if (targets.length > 0) this.next();
      const t = this.peek();
      targets.push(this.target(this.expression(), t, 'delete'));
    } while (this.isOp(','));
    return { k: 'del', targets, line: keyword.line };
  }

  private forStatement(): Stmt {
    const keyword = this.next();
    const t = this.peek();
    const target = this.name('a name after "for"');
    if (this.isOp(',')) throw this.unsupported('unpacking in a "for" (for a, b in ...) is not supported', t);
    if (!this.isName('in')) {
      if (this.isOp('.') || this.isOp('[')) throw this.unsupported('a "for" target other than a plain name is not supported', t);
      throw this.syntax(`expected "in" after "for ${target}", found ${describe(this.peek())}`);
    }
    this.next();
    const iter = this.expression();
    if (this.isOp(',')) throw this.unsupported('tuples (a, b) are not supported');
    this.expectOp(':', 'after the "for" clause');
    this.loops++;
    const body = this.suite(keyword);
    this.loops--;
    let orelse: Stmt[] = [];
    if (this.isName('else')) {
      const e = this.next();
      this.expectOp(':', 'after "else"');
      orelse = this.suite(e);
    }
    return { k: 'for', target, iter, body, orelse, line: keyword.line };
  }

  private dottedName(): string {
    const parts = [this.name('a module name')];
    while (this.isOp('.')) {
      this.next();
      parts.push(this.name('a module name'));
    }
    return parts.join('.');
  }

  private name(what: string): string {
    const t = this.peek();
    if (t.type !== 'NAME' || KEYWORDS.has(t.value)) throw this.syntax(`expected ${what}, found ${describe(t)}`);
    this.next();
    return t.value;
  }

  private alias(name: string): Alias {
    if (!this.isName('as')) return { name };
    this.next();
    return { name, as: this.name('a name after "as"') };
  }

  private importStatement(): Stmt {
    const line = this.next().line;
    const modules = [this.alias(this.dottedName())];
    while (this.isOp(',')) {
      this.next();
      modules.push(this.alias(this.dottedName()));
    }
    return { k: 'import', modules, line };
  }

  private fromStatement(): Stmt {
    const line = this.next().line;
    if (this.isOp('.') || this.isOp('...')) throw this.unsupported('relative imports are not supported');
    const module = this.dottedName();
    if (!this.isName('import')) throw this.syntax(`expected "import" after "from ${module}", found ${describe(this.peek())}`);
    this.next();
    if (this.isOp('*')) throw this.unsupported(`"from ${module} import *" is not supported: import the names you use`);
    const parenthesised = this.isOp('(');
    if (parenthesised) this.next();
    const names = [this.alias(this.name('a name to import'))];
    while (this.isOp(',')) {
      this.next();
      if (parenthesised && this.isOp(')')) break;
      names.push(this.alias(this.name('a name to import')));
    }
    if (parenthesised) this.expectOp(')', `to close "from ${module} import ("`);
    return { k: 'from', module, names, line };
  }

  private ifStatement(): Stmt {
    const line = this.peek().line;
    const branches: { test: Expr; body: Stmt[] }[] = [];
    let orelse: Stmt[] = [];
    do {
      const keyword = this.next();
      const test = this.expression();
      this.expectOp(':', `after the condition of "${text(keyword)}"`);
      branches.push({ test, body: this.suite(keyword) });
    } while (this.isName('elif'));
    if (this.isName('else')) {
      const keyword = this.next();
      this.expectOp(':', 'after "else"');
      orelse = this.suite(keyword);
    }
    return { k: 'if', branches, orelse, line };
  }

  private suite(keyword: Token): Stmt[] {
    if (this.peek().type !== 'NEWLINE') return this.simpleStatements();
    this.next();
    if (this.peek().type !== 'INDENT') {
      throw this.syntax(`expected an indented block after "${text(keyword)}" on line ${keyword.line}`);
    }
    this.next();
    this.nest();
    const body: Stmt[] = [];
    while (this.peek().type !== 'DEDENT' && this.peek().type !== 'EOF') body.push(...this.statement());
    this.next();
    this.depth--;
    return body;
  }

  private nest(): void {
    if (++this.depth > MAX_NESTING) throw this.unsupported(`nesting deeper than ${MAX_NESTING} levels is not supported`);
  }

  /** Python's `or` / `and` / `not` / one comparison, with its precedence; a chain (a < b < c) is refused. */
  private expression(): Expr {
    this.nest();
    const e = this.orTest();
    this.depth--;
    return e;
  }

  private orTest(): Expr {
    return this.boolOp('or', () => this.andTest());
  }

  private andTest(): Expr {
    return this.boolOp('and', () => this.notTest());
  }

  /** Operands separated by `op`: the operand itself when there is one. */
  private boolOp(op: 'and' | 'or', operand: () => Expr): Expr {
    const first = operand();
    if (!this.isName(op)) return first;
    const line = this.peek().line;
    const values = [first];
    while (this.isName(op)) {
      this.next();
      values.push(operand());
    }
    return { k: 'boolop', op, values, line };
  }

  private notTest(): Expr {
    if (this.isName('not')) {
      const t = this.next();
      this.nest();
      const operand = this.notTest();
      this.depth--;
      return { k: 'not', operand, line: t.line };
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.unary();
    const op = this.compareOp();
    if (!op) {
      this.refuseOperator();
      return left;
    }
    const right = this.unary();
    if (this.compareOp(true)) throw this.unsupported('chained comparisons (a < b < c) are not supported');
    this.refuseOperator();
    return { k: 'compare', op: op.op, left, right, line: op.line };
  }

  /** Consumes a supported comparison operator (or, with `peekOnly`, says whether one follows). */
  private compareOp(peekOnly = false): { op: CompareOp; line: number } | undefined {
    const t = this.peek();
    let op: CompareOp | undefined;
    let width = 1;
    if (t.type === 'OP' && COMPARISONS.has(t.value)) {
      if (t.value !== '==' && t.value !== '!=') {
        if (peekOnly) return { op: '==', line: t.line };
        throw this.unsupported(`the operator "${t.value}" is not supported`);
      }
      op = t.value;
    } else if (this.isName('in')) {
      op = 'in';
    } else if (this.isName('is')) {
      op = this.isName('not', this.peek(1)) ? 'is not' : 'is';
      width = op === 'is' ? 1 : 2;
    } else if (this.isName('not') && this.isName('in', this.peek(1))) {
      op = 'not in';
      width = 2;
    }
    if (!op) return undefined;
    if (!peekOnly) for (let i = 0; i < width; i++) this.next();
    return { op, line: t.line };
  }

  private refuseOperator(): void {
    const t = this.peek();
    if ((t.type === 'OP' && (BINARY.has(t.value) || t.value === '==' || t.value === '!=')) || (t.type === 'NAME' && BINARY_WORDS.has(t.value) && t.value !== 'and' && t.value !== 'or')) {
      throw this.unsupported(`the operator "${t.value}" is not supported`);
    }
  }

  private unary(): Expr {
    const t = this.peek();
    if (this.isOp('-') || this.isOp('+')) {
      this.next();
      this.nest();
      const operand = this.unary();
      this.depth--;
      if (operand.k === 'const' && typeof operand.value === 'number') {
        return { ...operand, value: text(t) === '-' ? -operand.value : operand.value, line: t.line };
      }
      throw this.unsupported(`the operator "${text(t)}" is supported only before a number`, t);
    }
    if (this.isOp('~') || this.isName('await')) throw this.unsupported(`the operator "${text(t)}" is not supported`);
    return this.postfix();
  }

  /** Calls, attributes and subscripts after an atom: each is a level of nesting (evaluating them recurses). */
  private postfix(): Expr {
    let e = this.atom();
    const depth = this.depth;
    for (;;) {
      const t = this.peek();
      if (this.isOp('(') || this.isOp('.') || this.isOp('[')) this.nest();
      if (this.isOp('(')) {
        e = this.call(e);
      } else if (this.isOp('.')) {
        this.next();
        const name = this.name('an attribute name after "."');
        e = { k: 'attr', obj: e, name, line: t.line };
      } else if (this.isOp('[')) {
        const open = this.next();
        if (this.isOp(']')) throw this.syntax('invalid syntax at "]"');
        if (this.isOp(':')) throw this.unsupported('slices (x[a:b]) are not supported');
        const index = this.expression();
        if (this.isOp(':')) throw this.unsupported('slices (x[a:b]) are not supported');
        if (this.isOp(',')) throw this.unsupported('tuples (a, b) are not supported');
        this.expectOp(']', `to close the "[" on line ${open.line}`);
        e = { k: 'subscript', obj: e, index, line: open.line };
      } else {
        this.depth = depth;
        return e;
      }
    }
  }

  private call(fn: Expr): Expr {
    const open = this.next();
    const args: Expr[] = [];
    const kwargs: { name: string; value: Expr }[] = [];
    while (!this.isOp(')')) {
      if (this.isOp('*') || this.isOp('**')) throw this.unsupported('*args and **kwargs are not supported');
      const t = this.peek();
      if (t.type === 'NAME' && !KEYWORDS.has(t.value) && this.isOp('=', this.peek(1))) {
        this.next();
        this.next();
        if (kwargs.some((kw) => kw.name === t.value)) throw this.syntax(`keyword argument repeated: ${t.value}`, t);
        kwargs.push({ name: t.value, value: this.expression() });
      } else {
        const arg = this.expression();
        if (kwargs.length > 0) throw this.syntax('positional argument follows keyword argument', t);
        args.push(arg);
      }
      if (this.isName('for')) throw this.unsupported('generator expressions are not supported');
      if (!this.isOp(',')) break;
      this.next();
    }
    this.expectOp(')', `to close the call opened on line ${open.line}`);
    return { k: 'call', fn, args, kwargs, line: open.line };
  }

  private atom(): Expr {
    const t = this.peek();
    switch (t.type) {
      case 'NAME':
        this.next();
        if (t.value === 'None') return { k: 'const', value: null, line: t.line };
        if (t.value === 'True' || t.value === 'False') return { k: 'const', value: t.value === 'True', line: t.line };
        if (t.value === 'lambda' || t.value === 'yield') throw this.unsupported(`"${t.value}" is not supported`, t);
        if (KEYWORDS.has(t.value)) throw this.syntax(`invalid syntax at "${t.value}"`, t);
        return { k: 'name', id: t.value, line: t.line };
      case 'INT':
        this.next();
        return { k: 'const', value: t.value, line: t.line };
      case 'FLOAT':
        throw this.unsupported(`floating-point numbers (${t.text}) are not supported: write a whole number`);
      case 'STRING':
        return this.strings();
      case 'OP':
        if (t.value === '(') return this.parenthesised();
        if (t.value === '[') return this.list();
        if (t.value === '{') throw this.unsupported('dicts and sets are not supported');
        if (t.value === '...') throw this.unsupported('Ellipsis is not supported');
        throw this.syntax(`invalid syntax at ${describe(t)}`);
      default:
        throw this.syntax(`invalid syntax: expected a value, found ${describe(t)}`);
    }
  }

  private list(): Expr {
    const open = this.next();
    const items: Expr[] = [];
    while (!this.isOp(']')) {
      if (this.isOp('*')) throw this.unsupported('*unpacking is not supported');
      items.push(this.expression());
      if (this.isName('for')) throw this.unsupported('list comprehensions are not supported');
      if (!this.isOp(',')) break;
      this.next();
    }
    this.expectOp(']', `to close the "[" on line ${open.line}`);
    return { k: 'list', items, line: open.line };
  }

  /** Adjacent literals are one string, as in Python. */
  private strings(): Expr {
    const first = this.peek() as Token & { type: 'STRING' };
    let value = '';
    while (this.peek().type === 'STRING') {
      const t = this.next() as Token & { type: 'STRING' };
      if (t.bytes !== first.bytes) throw this.syntax('cannot mix bytes and nonbytes literals', t);
      value += t.value;
    }
    return first.bytes ? { k: 'bytes', line: first.line } : { k: 'const', value, line: first.line };
  }

  private parenthesised(): Expr {
    const open = this.next();
    if (this.isOp(')')) throw this.unsupported('tuples are not supported', open);
    const e = this.expression();
    if (this.isOp(',')) throw this.unsupported('tuples are not supported', open);
    if (this.isName('for')) throw this.unsupported('generator expressions are not supported');
    this.expectOp(')', `to close the "(" on line ${open.line}`);
    return e;
  }
}

/** The text of a name or operator token. */
function text(t: Token): string {
  return t.type === 'NAME' || t.type === 'OP' ? t.value : '';
}

function describe(t: Token): string {
  switch (t.type) {
    case 'NAME':
      return `"${t.value}"`;
    case 'INT':
    case 'FLOAT':
      return t.text;
    case 'STRING':
      return 'a string';
    case 'OP':
      return `"${t.value}"`;
    case 'NEWLINE':
      return 'the end of the line';
    case 'EOF':
      return 'the end of the file';
    default:
      return t.type === 'INDENT' ? 'an indent' : 'a dedent';
  }
}
