/**
 * The relay's allow-list: which worker names may log in through it, and from where.
 *
 * Patterns are globs over the whole worker name, case-sensitive because Buildbot worker names
 * are: `*` (any run of characters, `/` included: worker names are not paths, so there is no
 * separator for it to stop at), `?` (one character), `[abc]`, `[a-z]`, `[!a-z]` (one character
 * in or not in the set), and `\` making the next character literal (`\*`, `\[`, `\@`).
 */
import { BlockList, isIP } from 'node:net';
import { BbgateError } from '../errors.js';

export interface AllowRule {
  /** An exact worker name or a glob. */
  pattern: string;
  /** IPv4/IPv6 CIDRs or plain addresses the worker may connect from; absent: anywhere. */
  from?: string[];
}

/**
 * `message` is what the client is told, and says only that the name is not allowed: the same
 * for every reason, so that a stranger learns nothing of the policy (which names exist, from
 * where they may connect). `detail` says why, for the relay's own log.
 */
export type AllowListVerdict =
  | { allowed: true; rule: string }
  | { allowed: false; reason: 'not_listed' | 'source_address'; message: string; detail: string };

/** The one answer to a worker that may not log in, whatever the reason. */
export function notAllowed(name: string): string {
  return `worker ${JSON.stringify(name)} is not allowed to log in through this relay`;
}

type Token =
  | { kind: 'star' }
  | { kind: 'one'; accepts: (codePoint: number) => boolean };

interface CompiledRule {
  text: string;
  tokens: Token[];
  from?: AddressSet;
}

export class AllowList {
  private readonly rules: CompiledRule[];

  constructor(rules: AllowRule[]) {
    this.rules = rules.map(compileRule);
  }

  /** A name may match several rules; it is admitted if any of them admits its address. */
  check(name: string, address: string): AllowListVerdict {
    const peer = plainAddress(address);
    const sources: string[] = [];
    const codePoints = Array.from(name, (c) => c.codePointAt(0) as number);
    for (const rule of this.rules) {
      if (!globMatches(rule.tokens, codePoints)) continue;
      if (!rule.from || rule.from.has(peer)) return { allowed: true, rule: rule.text };
      sources.push(...rule.from.text);
    }
    const quoted = JSON.stringify(name);
    const message = notAllowed(name);
    if (sources.length === 0) {
      return { allowed: false, reason: 'not_listed', message, detail: `worker ${quoted} is not on this relay's allow-list` };
    }
    return {
      allowed: false,
      reason: 'source_address',
      message,
      detail: `worker ${quoted} may only connect from ${[...new Set(sources)].join(' or ')}, not from ${peer || 'an unknown address'}`,
    };
  }
}

/**
 * The --allow flag: `NAME_OR_GLOB` or `NAME_OR_GLOB@CIDR[,CIDR...]`. The first `@` not escaped
 * by a backslash splits the two, so a name containing `@` is written `name\@host`.
 */
export function parseAllowRule(text: string): AllowRule {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '@') {
      return { pattern: text.slice(0, i), from: text.slice(i + 1).split(',').map((s) => s.trim()) };
    }
  }
  return { pattern: text };
}

function compileRule(rule: AllowRule): CompiledRule {
  const text = rule.from ? `${rule.pattern}@${rule.from.join(',')}` : rule.pattern;
  const fail = (problem: string): never => {
    throw new BbgateError('RELAY_CONFIG', `allow rule ${JSON.stringify(text)}: ${problem}`);
  };
  if (rule.pattern === '') fail('empty worker name pattern');
  const tokens = compileGlob(rule.pattern, fail);
  if (!rule.from) return { text, tokens };
  if (rule.from.length === 0) fail('empty list of source addresses (leave it out to allow any address)');
  return { text, tokens, from: new AddressSet(rule.from, fail) };
}

/**
 * IPv4 and IPv6 addresses and CIDRs, as an allow rule's `@` sources and a listener's proxyFrom=
 * write them. `fail` is called with the problem in the first entry that is neither.
 */
export class AddressSet {
  private readonly sources = new BlockList();

  constructor(readonly text: string[], fail: (problem: string) => never) {
    for (const source of text) addSource(this.sources, source, fail);
  }

  /** A peer as a socket reports it: IPv4-mapped IPv6 matches IPv4 entries, and what is no IP matches nothing. */
  has(address: string): boolean {
    const peer = plainAddress(address);
    const family = isIP(peer);
    return family !== 0 && this.sources.check(peer, family === 4 ? 'ipv4' : 'ipv6');
  }
}

function addSource(sources: BlockList, source: string, fail: (problem: string) => never): void {
  if (source === '') fail('empty source address');
  const slash = source.indexOf('/');
  const address = slash < 0 ? source : source.slice(0, slash);
  const family = isIP(address);
  if (family === 0 || address.includes('%')) fail(`${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (slash < 0) {
    sources.addAddress(address, type);
    return;
  }
  const prefixText = source.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText)) fail(`${JSON.stringify(prefixText)} is not a prefix length (0-${max})`);
  const prefix = Number(prefixText);
  if (prefix > max) fail(`prefix length ${prefix} is too long for an ${family === 4 ? 'IPv4' : 'IPv6'} address (0-${max})`);
  // Host bits below the prefix are ignored (10.1.2.3/8 is 10.0.0.0/8), as BlockList and iptables do.
  sources.addSubnet(address, prefix, type);
}

/** Sockets on a dual-stack listener report IPv4 peers as ::ffff:a.b.c.d; rules and messages use a.b.c.d. */
export function plainAddress(address: string): string {
  const unzoned = address.replace(/%.*$/s, '');
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(unzoned) ? unzoned.slice(7) : unzoned;
}

const BACKSLASH = 0x5c;
const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BANG = 0x21;
const DASH = 0x2d;

function compileGlob(pattern: string, fail: (problem: string) => never): Token[] {
  const chars = Array.from(pattern, (c) => c.codePointAt(0) as number);
  const tokens: Token[] = [];
  let i = 0;
  const literal = (): number => {
    if (chars[i] === BACKSLASH) {
      i++;
      if (i === chars.length) fail('pattern ends with a lone "\\"');
    }
    return chars[i++] as number;
  };
  while (i < chars.length) {
    const c = chars[i];
    if (c === STAR) {
      i++;
      // Runs of * are one *: fewer backtracking points, same meaning.
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === QUESTION) {
      i++;
      tokens.push({ kind: 'one', accepts: () => true });
    } else if (c === OPEN) {
      const start = i++;
      const negated = chars[i] === BANG;
      if (negated) i++;
      const ranges: [number, number][] = [];
      while (i < chars.length && chars[i] !== CLOSE) {
        const lo = literal();
        let hi = lo;
        if (chars[i] === DASH && i + 1 < chars.length && chars[i + 1] !== CLOSE) {
          i++;
          hi = literal();
          if (hi < lo) {
            const [a, b] = [String.fromCodePoint(lo), String.fromCodePoint(hi)];
            fail(`character range ${a}-${b} is backwards (did you mean ${b}-${a}?)`);
          }
        }
        ranges.push([lo, hi]);
      }
      if (i === chars.length) fail(`"[" at position ${start + 1} is never closed by "]" (write \\[ for a literal "[")`);
      if (ranges.length === 0) fail(`empty character class "${String.fromCodePoint(...chars.slice(start, i + 1))}" (write \\] for a literal "]")`);
      i++;
      tokens.push({ kind: 'one', accepts: (cp) => ranges.some(([lo, hi]) => cp >= lo && cp <= hi) !== negated });
    } else {
      const cp = literal();
      tokens.push({ kind: 'one', accepts: (x) => x === cp });
    }
  }
  return tokens;
}

/**
 * Iterative glob matching that backtracks only to the most recent `*`: a later star can absorb
 * anything an earlier one could, so earlier choices never need revisiting. That bounds the
 * work by name length × pattern length, whatever name a worker sends.
 */
function globMatches(tokens: Token[], name: number[]): boolean {
  let t = 0;
  let n = 0;
  let starToken = -1;
  let starName = 0;
  while (n < name.length) {
    const token = tokens[t];
    if (token?.kind === 'star') {
      starToken = t++;
      starName = n;
    } else if (token?.accepts(name[n] as number)) {
      t++;
      n++;
    } else if (starToken >= 0) {
      t = starToken + 1;
      n = ++starName;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}
