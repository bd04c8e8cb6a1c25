import { isIP } from 'node:net';
import { BbgateError } from '../errors.js';

/** A parsed `tcp:` client endpoint, Twisted's grammar. */
export interface TcpEndpoint {
  type: 'tcp';
  host: string;
  port: number;
  /** Connect timeout in seconds (Twisted's default is 30). */
  timeout: number;
  bindAddress?: string;
}

export type Endpoint = TcpEndpoint;

export class EndpointSyntaxError extends BbgateError {
  constructor(message: string) {
    super('ENDPOINT_SYNTAX', message);
  }
}

interface Parts {
  type: string;
  positional: string[];
  keywords: Map<string, string>;
}

/**
 * Splits a Twisted endpoint description: `type:arg:key=value…`, where `:`
 * separates arguments, the first `=` splits a keyword from its value, and a
 * backslash makes the next character literal (`\:` inside IPv6 addresses).
 */
export function splitEndpoint(description: string): Parts {
  const args: { text: string; eq: number }[] = [];
  let text = '';
  let eq = -1;
  for (let i = 0; i < description.length; i++) {
    const ch = description[i]!;
    if (ch === '\\') {
      if (i + 1 >= description.length) throw new EndpointSyntaxError(`"${description}": a backslash at the end escapes nothing`);
      text += description[++i];
    } else if (ch === ':') {
      args.push({ text, eq });
      text = '';
      eq = -1;
    } else {
      if (ch === '=' && eq < 0) eq = text.length;
      text += ch;
    }
  }
  args.push({ text, eq });
  const [head, ...rest] = args;
  if (!head || rest.length === 0 || head.text === '') {
    throw new EndpointSyntaxError(`"${description}" is not a connection string: expected TYPE:ARGUMENTS, such as tcp:master.example.org:9989`);
  }
  const positional: string[] = [];
  const keywords = new Map<string, string>();
  for (const arg of rest) {
    if (arg.eq < 0) {
      if (keywords.size > 0) throw new EndpointSyntaxError(`"${description}": positional argument "${arg.text}" after keyword arguments`);
      positional.push(arg.text);
      continue;
    }
    const key = arg.text.slice(0, arg.eq);
    if (keywords.has(key)) throw new EndpointSyntaxError(`"${description}": "${key}" is given twice`);
    keywords.set(key, arg.text.slice(arg.eq + 1));
  }
  return { type: head.text.toLowerCase(), positional, keywords };
}

const TCP_KEYS = ['host', 'port', 'timeout', 'bindAddress'];

/** Parses a client connection string into an endpoint, or throws EndpointSyntaxError naming what is wrong. */
export function parseEndpoint(description: string): Endpoint {
  const { type, positional, keywords } = splitEndpoint(description);
  if (type !== 'tcp') {
    throw new EndpointSyntaxError(`"${description}": connection type "${type}" is not supported by this version of bbgate (supported: tcp)`);
  }
  for (const key of keywords.keys()) {
    if (!TCP_KEYS.includes(key)) {
      throw new EndpointSyntaxError(`"${description}": unknown key "${key}" for tcp (allowed: ${TCP_KEYS.join(', ')})`);
    }
  }
  const order = ['host', 'port'].filter((k) => !keywords.has(k));
  if (positional.length > order.length) {
    throw new EndpointSyntaxError(`"${description}": too many positional arguments (tcp takes HOST:PORT)`);
  }
  positional.forEach((value, i) => keywords.set(order[i]!, value));
  const host = keywords.get('host');
  if (!host) throw new EndpointSyntaxError(`"${description}": no host (write tcp:HOST:PORT or tcp:host=HOST:port=PORT)`);
  const port = integer(description, 'port', keywords.get('port'), 1, 65535);
  if (port === undefined) throw new EndpointSyntaxError(`"${description}": no port (write tcp:HOST:PORT)`);
  const timeout = integer(description, 'timeout', keywords.get('timeout'), 1, 86400) ?? 30;
  const bindAddress = keywords.get('bindAddress');
  if (bindAddress !== undefined && !isIP(bindAddress)) {
    throw new EndpointSyntaxError(`"${description}": bindAddress "${bindAddress}" is not an IP address`);
  }
  return { type: 'tcp', host, port, timeout, ...(bindAddress ? { bindAddress } : {}) };
}

function integer(description: string, key: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new EndpointSyntaxError(`"${description}": ${key} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

/** The endpoint as a connection string, escaped so that parseEndpoint gives it back. */
export function formatEndpoint(e: Endpoint): string {
  const esc = (s: string) => s.replace(/[\\:=]/g, (c) => `\\${c}`);
  return `tcp:host=${esc(e.host)}:port=${e.port}:timeout=${e.timeout}${e.bindAddress ? `:bindAddress=${esc(e.bindAddress)}` : ''}`;
}
