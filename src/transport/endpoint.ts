import { isIP } from 'node:net';
import { BbgateError } from '../errors.js';
import { redactCredentials } from '../redact.js';
import { hostPort } from './host-port.js';

/** A parsed `tcp:` client endpoint, Twisted's grammar. */
export interface TcpEndpoint {
  type: 'tcp';
  host: string;
  port: number;
  /** Connect timeout in seconds (Twisted's default is 30). */
  timeout: number;
  bindAddress?: string;
}

/** A parsed `tls:` or `ssl:` client endpoint: TCP, then TLS over it. */
export interface TlsEndpoint {
  type: 'tls';
  host: string;
  port: number;
  timeout: number;
  bindAddress?: string;
  /** What the certificate is checked against and what SNI carries; for tls: the host, for ssl: hostname=. */
  serverName?: string;
  /** Directory of CA certificates (tls: trustRoots=, ssl: caCertsDir=); absent → the platform store. */
  trustRoots?: string;
  /** Client certificate PEM path (tls: certificate=, ssl: certKey=). */
  certificate?: string;
  /** Client key PEM path; if absent while certificate is set, the certificate file must also hold the key. */
  privateKey?: string;
  /**
   * 'full' = chain + hostname (all tls:, and ssl: with hostname=); 'chain' = chain only
   * (ssl: caCertsDir= without hostname=); 'none' = nothing verified (ssl: with neither).
   */
  verify: 'full' | 'chain' | 'none';
  /** Which syntax it came from, for messages. */
  syntax: 'tls' | 'ssl';
  /** Dangerous-but-legal settings (the ssl: traps), to be logged and shown by the probe. */
  warnings: string[];
}

interface WsCommon {
  type: 'ws';
  host: string;
  /** Default 80 for ws://, 443 for wss://. */
  port: number;
  /** What the upgrade request asks for: the URL's path (at least "/") and its query string. */
  path: string;
  /** Seconds for the connect, the TLS handshake and the upgrade, each (default 30). */
  timeout: number;
  bindAddress?: string;
}

/**
 * A parsed `ws://` or `wss://` URL: TCP (or a CONNECT tunnel), TLS for wss://,
 * then an HTTP upgrade to WebSocket, for relays reachable only over HTTP(S).
 * wss:// always verifies chain and name, as tls: does.
 */
export type WsEndpoint =
  | (WsCommon & { secure: false } & { [K in TlsField]?: never })
  | (WsCommon & Pick<TlsEndpoint, TlsField> & { secure: true; serverName: string; verify: 'full'; warnings: string[] });

/** What only wss:// has; typed `never` on ws:// so that code reading them off any endpoint but tcp: still compiles. */
type TlsField = 'serverName' | 'trustRoots' | 'certificate' | 'privateKey';

export type Endpoint = TcpEndpoint | TlsEndpoint | WsEndpoint;

/**
 * A connection string that does not parse: `"DESCRIPTION": PROBLEM`, where the
 * description is quoted with its user info hidden (see ../redact.ts). Taking
 * the description apart from the problem is what keeps every message to that.
 */
export class EndpointSyntaxError extends BbgateError {
  constructor(description: string, problem: string) {
    super('ENDPOINT_SYNTAX', `"${redactCredentials(description)}": ${problem}`);
  }
}

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

const IPV6_HINT = 'an IPv6 address must escape each ":" (host=fd00\\:\\:1) or, positionally, be bracketed (tcp:[fd00::1]:9989)';

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

/** Keys whose values are file paths, the one place an "@" belongs in a description: listeners' too. */
const FILE_KEYS = new Set(['trustRoots', 'certificate', 'privateKey', 'caCertsDir', 'certKey', 'extraCertChain']);

const USER_INFO_PROBLEM =
  'a user name or password does not belong in a connection string (it would end up in logs): the worker logs in with its worker name and password, and a proxy\'s credentials go in the proxy setting as http://USER:PASSWORD@HOST:PORT';

/**
 * Whether any of a description's arguments (`KEY=VALUE` or positional) holds
 * an "@" outside a file's path: `USER:PASSWORD@HOST`, a URL's habit. An "@" has
 * no place in a host, port, address or number. Parsers ask this before
 * anything else, so that no later message quotes a piece of the password.
 */
function carriesUserInfo(args: string[]): boolean {
  return args.some((arg) => arg.includes('@') && !(arg.includes('=') && FILE_KEYS.has(arg.slice(0, arg.indexOf('=')))));
}

function refuseUserInfo(description: string): void {
  // Split leniently at unescaped ":" (tokenize's own errors would quote what they stop at).
  if (carriesUserInfo(description.match(/(?:\\[\s\S]|[^:\\])+/g) ?? [])) throw new EndpointSyntaxError(description, USER_INFO_PROBLEM);
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

type TypeName = 'tcp' | 'tls' | 'ssl';

interface Syntax {
  type: TypeName;
  keys: readonly string[];
  usage: string;
  /**
   * tcp: and ssl: (Twisted's _parseClientTCP) give positional arguments to
   * whichever of host, port no keyword named; tls: is a Python signature
   * that binds them to host, port in order, so a keyword cannot repeat one.
   */
  fillsFreeSlots: boolean;
}

const CONNECTION_KEYS = ['host', 'port', 'timeout', 'bindAddress'];

const SYNTAXES: Record<TypeName, Syntax> = {
  tcp: { type: 'tcp', keys: CONNECTION_KEYS, usage: 'tcp:HOST:PORT or tcp:host=HOST:port=PORT', fillsFreeSlots: true },
  tls: {
    type: 'tls',
    keys: [...CONNECTION_KEYS, 'trustRoots', 'certificate', 'privateKey'],
    usage: 'tls:HOST:PORT[:trustRoots=DIR] or tls:host=HOST:port=PORT',
    fillsFreeSlots: false,
  },
  ssl: {
    type: 'ssl',
    keys: [...CONNECTION_KEYS, 'caCertsDir', 'hostname', 'certKey', 'privateKey'],
    usage: 'ssl:host=HOST:port=PORT:caCertsDir=DIR:hostname=NAME',
    fillsFreeSlots: true,
  },
};

/** Keys that belong to another syntax, with what to write instead. */
const MISPLACED_KEYS: Record<string, Partial<Record<TypeName, string>>> = {
  trustRoots: { ssl: 'ssl: calls it caCertsDir=', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT:trustRoots=DIR' },
  caCertsDir: { tls: 'tls: calls it trustRoots=', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT:trustRoots=DIR' },
  certificate: { ssl: 'ssl: calls it certKey=', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT:certificate=PEM' },
  certKey: { tls: 'tls: calls it certificate=', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT:certificate=PEM' },
  hostname: { tls: 'tls: checks the certificate against HOST itself', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT' },
};

/** Parses a client connection string into an endpoint, or throws EndpointSyntaxError naming what is wrong. */
export function parseEndpoint(description: string): Endpoint {
  if (WS_URL.test(description)) return parseWebSocketUrl(description);
  const parts = splitEndpoint(description);
  const syntax = Object.hasOwn(SYNTAXES, parts.type) ? SYNTAXES[parts.type as TypeName] : undefined;
  if (!syntax) throw unsupportedType(description, parts);
  if (syntax.type === 'tls' && parts.keywords.has('endpoint')) {
    throw new EndpointSyntaxError(
      description,
      `endpoint= (a nested endpoint to reach HOST through) is not supported; bbgate connects tls: straight to HOST:PORT (to go through an HTTP proxy, use bbgate's proxy settings, not a nested endpoint)`,
    );
  }
  const values = bindArguments(description, parts, syntax);
  if (syntax.type === 'tcp') return { type: 'tcp', ...connection(description, values, syntax) };
  return syntax.type === 'tls' ? tlsEndpoint(description, values) : sslEndpoint(description, values);
}

function unsupportedType(description: string, parts: EndpointParts): EndpointSyntaxError {
  if (parts.positional[0]?.startsWith('//')) {
    return new EndpointSyntaxError(
      description,
      `a URL, not a connection string: give the master's PB port (often 9989, not the web port) as tcp:HOST:PORT, or tls:HOST:PORT:trustRoots=DIR for TLS`,
    );
  }
  if (parts.type === 'ws' || parts.type === 'wss') {
    return new EndpointSyntaxError(description, `a WebSocket endpoint is a URL: write ${parts.type}://HOST[:PORT]/PATH`);
  }
  return new EndpointSyntaxError(description, `connection type "${parts.type}" is not supported by this version of bbgate (supported: tcp, tls, ssl, ws://, wss://)`);
}

/** Every argument by its key name, positional ones included; rejects unknown keys, empty values and clashes. */
function bindArguments(description: string, { positional, keywords }: EndpointParts, syntax: Syntax): Map<string, string> {
  for (const key of keywords.keys()) {
    if (!syntax.keys.includes(key)) throw unknownKey(description, key, syntax);
  }
  const empty = positional.indexOf('');
  if (empty >= 0) {
    throw new EndpointSyntaxError(description, `positional argument ${empty + 1} is empty (two ":" in a row, or one at the end); ${IPV6_HINT}`);
  }
  for (const [key, value] of keywords) {
    if (value === '') throw new EndpointSyntaxError(description, `${key}= is empty (give a value or leave the key out)`);
  }
  const slots = syntax.fillsFreeSlots ? ['host', 'port'].filter((k) => !keywords.has(k)) : ['host', 'port'];
  if (positional.length > slots.length) throw tooManyPositional(description, syntax, slots, positional);
  const values = new Map(keywords);
  positional.forEach((value, i) => {
    const key = slots[i]!;
    if (values.has(key)) {
      throw new EndpointSyntaxError(
        description,
        `${key} is given twice, as ${key}= and as positional argument ${i + 1} "${value}" (${syntax.type}: binds positional arguments to HOST:PORT in that order; write ${syntax.usage})`,
      );
    }
    values.set(key, value);
  });
  return values;
}

function unknownKey(description: string, key: string, syntax: Syntax): EndpointSyntaxError {
  const sameButCase = syntax.keys.find((k) => k.toLowerCase() === key.toLowerCase());
  const hint = sameButCase ? `keys are case-sensitive: did you mean "${sameButCase}"?` : MISPLACED_KEYS[key]?.[syntax.type];
  return new EndpointSyntaxError(description, `unknown key "${key}" for ${syntax.type} (allowed: ${syntax.keys.join(', ')})${hint ? `; ${hint}` : ''}`);
}

function tooManyPositional(description: string, syntax: Syntax, slots: string[], positional: string[]): EndpointSyntaxError {
  const takes =
    slots.length === 2 ? 'HOST:PORT' : slots.length === 1 ? `only ${slots[0]!.toUpperCase()}, as ${slots[0] === 'host' ? 'port' : 'host'}= is given` : 'none, as host= and port= are given';
  // Three or more arguments led by one like "fd00" are most likely an IPv6 address split at its colons.
  const ipv6 = positional.length > 2 && /^[0-9a-f]{1,4}$/i.test(positional[0]!) ? `; ${IPV6_HINT}` : '';
  return new EndpointSyntaxError(description, `too many positional arguments (${syntax.type} takes ${takes}; give the rest as key=value${ipv6})`);
}

/** The TCP part every syntax shares. */
function connection(description: string, values: Map<string, string>, syntax: Syntax): Omit<TcpEndpoint, 'type'> {
  const host = values.get('host');
  if (host === undefined) throw new EndpointSyntaxError(description, `no host (write ${syntax.usage})`);
  if (host.startsWith('[') && host.endsWith(']')) {
    throw new EndpointSyntaxError(description, `host "${host}" has brackets, which are not part of an address; write host=${escape(host.slice(1, -1))}`);
  }
  const port = integer(description, 'port', values.get('port'), 1, 65535);
  if (port === undefined) throw new EndpointSyntaxError(description, `no port (write ${syntax.usage})`);
  const timeout = integer(description, 'timeout', values.get('timeout'), 1, 86400) ?? 30;
  const bindAddress = values.get('bindAddress');
  if (bindAddress !== undefined && !isIP(bindAddress)) {
    throw new EndpointSyntaxError(description, `bindAddress "${bindAddress}" is not an IP address`);
  }
  return { host, port, timeout, ...(bindAddress !== undefined ? { bindAddress } : {}) };
}

function integer(description: string, key: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new EndpointSyntaxError(description, `${key} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

/** Twisted would silently drop a key without its certificate; here it is an error, since the user meant something. */
function requireCertificate(description: string, certificateKey: string, certificate: string | undefined, privateKey: string | undefined): void {
  if (privateKey !== undefined && certificate === undefined) {
    throw new EndpointSyntaxError(description, `privateKey= needs ${certificateKey}= (the client certificate it belongs to)`);
  }
}

/** The optional fields that are set, so that a parsed endpoint has no keys holding undefined. */
export function present<T extends Record<string, string | undefined>>(fields: T): Partial<Record<keyof T, string>> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, string>>;
}

function tlsEndpoint(description: string, values: Map<string, string>): TlsEndpoint {
  const base = connection(description, values, SYNTAXES.tls);
  const certificate = values.get('certificate');
  const privateKey = values.get('privateKey');
  requireCertificate(description, 'certificate', certificate, privateKey);
  return {
    type: 'tls',
    ...base,
    serverName: base.host,
    ...present({ trustRoots: values.get('trustRoots'), certificate, privateKey }),
    verify: 'full',
    syntax: 'tls',
    warnings: [],
  };
}

function sslEndpoint(description: string, values: Map<string, string>): TlsEndpoint {
  const base = connection(description, values, SYNTAXES.ssl);
  const certificate = values.get('certKey');
  const privateKey = values.get('privateKey');
  requireCertificate(description, 'certKey', certificate, privateKey);
  const serverName = values.get('hostname');
  const trustRoots = values.get('caCertsDir');
  // As Twisted: hostname= switches to its checked client options (trust roots
  // default to the platform's); without it, only a caCertsDir= enables checks.
  const verify = serverName !== undefined ? 'full' : trustRoots !== undefined ? 'chain' : 'none';
  return {
    type: 'tls',
    ...base,
    ...present({ serverName, trustRoots, certificate, privateKey }),
    verify,
    syntax: 'ssl',
    warnings: SSL_WARNINGS[verify],
  };
}

const SSL_WARNINGS: Record<TlsEndpoint['verify'], string[]> = {
  full: [],
  chain: [
    'ssl: with caCertsDir= but without hostname= checks the certificate chain but not the name in it: any certificate those CAs issued can impersonate the master; add hostname=MASTER or use tls:HOST:PORT:trustRoots=DIR',
  ],
  none: ['ssl: without caCertsDir= verifies nothing: anyone can impersonate the master; use tls:HOST:PORT:trustRoots=DIR'],
};

const WS_URL = /^wss?:\/\//i;
const WS_USAGE = 'ws://HOST[:PORT]/PATH, or wss://HOST[:PORT]/PATH for TLS';
const WS_KEYS = ['timeout', 'bindAddress'];
const WSS_KEYS = [...WS_KEYS, 'trustRoots', 'certificate', 'privateKey'];
/** Twisted's ssl: names, which people carry over. */
const WSS_MISPLACED: Record<string, string> = {
  caCertsDir: 'wss:// calls it trustRoots=',
  certKey: 'wss:// calls it certificate=',
  hostname: 'wss:// checks the certificate against HOST itself',
};

/**
 * `ws://HOST[:PORT]/PATH[?QUERY][#OPTIONS]` and the same with wss://. The
 * path and query go to the server in the upgrade request; bbgate's own
 * options go in the fragment (`#trustRoots=DIR&timeout=30`), which by the
 * rules of URLs is never sent anywhere.
 */
function parseWebSocketUrl(description: string): WsEndpoint {
  const url = splitWebSocketUrl(description, (secure) => (secure ? WSS_KEYS : WS_KEYS), unknownOption);
  const { secure, host, options } = url;
  const port = url.port === undefined ? (secure ? 443 : 80) : integer(description, 'port', url.port, 1, 65535)!;
  const path = url.path + url.query;
  const timeout = integer(description, 'timeout', options.get('timeout'), 1, 86400) ?? 30;
  const bindAddress = options.get('bindAddress');
  if (bindAddress !== undefined && !isIP(bindAddress)) {
    throw new EndpointSyntaxError(description, `bindAddress "${bindAddress}" is not an IP address`);
  }
  const common = { type: 'ws' as const, host, port, path, timeout, ...present({ bindAddress }) };
  if (!secure) return { ...common, secure: false };
  const certificate = options.get('certificate');
  const privateKey = options.get('privateKey');
  requireCertificate(description, 'certificate', certificate, privateKey);
  return {
    ...common,
    secure: true,
    serverName: host,
    ...present({ trustRoots: options.get('trustRoots'), certificate, privateKey }),
    verify: 'full',
    warnings: [],
  };
}

/** A ws:// or wss:// URL in parts, as both of its readers take it: a worker's connection string and a relay's listener. */
export interface WebSocketUrl {
  secure: boolean;
  host: string;
  /** As written, if written. */
  port: string | undefined;
  /** At least "/"; still percent-encoded. */
  path: string;
  /** "?…", or "" for none. */
  query: string;
  /** bbgate's options after "#", percent-decoded. */
  options: Map<string, string>;
}

/**
 * Splits `ws[s]://HOST[:PORT]/PATH[?QUERY][#KEY=VALUE&…]`, refusing credentials, a path that is
 * not printable ASCII, and options that are not `allowed` (`unknown` says why, to the reader's
 * taste). Parsed by hand rather than with WHATWG's URL, which quietly repairs what should be
 * refused (`ws:///pb` is host "pb" there), rewrites hosts and paths, and reads "+" as a space.
 */
export function splitWebSocketUrl(
  description: string,
  allowed: (secure: boolean) => readonly string[],
  unknown: (description: string, key: string, secure: boolean) => EndpointSyntaxError,
): WebSocketUrl {
  // Every string that starts with ws:// or wss:// (the callers' test) matches.
  const [, scheme, authority, pathPart, query = '', fragment] = /^(wss?):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(?:#(.*))?$/is.exec(description)!;
  const secure = scheme!.toLowerCase() === 'wss';
  // Any "@" before the options (not only one in the host part: a password holding a "/" would
  // otherwise be read as host, port and path, and quoted back in the error about them), or in an
  // option that is not a file's path.
  const hash = description.indexOf('#');
  if (carriesUserInfo(hash < 0 ? [description] : [description.slice(0, hash), ...description.slice(hash + 1).split('&')])) {
    throw new EndpointSyntaxError(
      description,
      `a user name or password does not belong in the URL (bbgate would not send it, and it would end up in logs): the worker logs in with its worker name and password, and a proxy's credentials go in the proxy setting (an "@" in the path is written %40)`,
    );
  }
  const [host, port] = splitAuthority(description, authority!);
  const path = pathPart || '/';
  if (!/^[\x21-\x7e]*$/.test(path + query)) {
    throw new EndpointSyntaxError(description, `the path holds a space or a character outside printable ASCII; percent-encode it (a space is %20)`);
  }
  const options = fragmentOptions(description, fragment ?? '', allowed(secure), (key) => unknown(description, key, secure));
  return { secure, host, port, path, query, options };
}

/** HOST, [IPv6], HOST:PORT or [IPv6]:PORT; the port as written, if any. */
function splitAuthority(description: string, authority: string): [string, string | undefined] {
  if (authority === '') throw new EndpointSyntaxError(description, `no host (write ${WS_USAGE})`);
  if (authority.startsWith('[')) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(authority);
    if (!match) throw new EndpointSyntaxError(description, `a bracketed host must be [IPv6] or [IPv6]:PORT, as in ws://[fd00::1]:8080/pb`);
    if (isIP(match[1]!) !== 6) throw new EndpointSyntaxError(description, `brackets hold an IPv6 address, and "${match[1]}" is not one`);
    return [match[1]!, match[2]];
  }
  const [host, port, ...more] = authority.split(':');
  if (more.length > 0) {
    const example = isIP(authority) === 6 ? `[${authority}]` : '[fd00::1]:8080';
    throw new EndpointSyntaxError(description, `the host has more than one ":"; an IPv6 address must be in brackets, as in ws://${example}/pb`);
  }
  if (!/^[\p{L}\p{N}._-]+$/u.test(host!)) throw new EndpointSyntaxError(description, `"${host}" is not a host name or IP address`);
  return [host!, port];
}

/** The `#key=value&key=value` options, percent-decoded; unknown, repeated and empty ones are errors. */
function fragmentOptions(description: string, fragment: string, allowed: readonly string[], unknown: (key: string) => EndpointSyntaxError): Map<string, string> {
  const options = new Map<string, string>();
  if (fragment === '') return options;
  for (const item of fragment.split('&')) {
    const eq = item.indexOf('=');
    if (item === '') throw new EndpointSyntaxError(description, `an empty option after "#" (two "&" in a row, or one at the end)`);
    if (eq < 0) throw new EndpointSyntaxError(description, `"${item}" after "#" is not KEY=VALUE (bbgate's options go after "#" as key=value, joined by "&")`);
    const key = item.slice(0, eq);
    if (!allowed.includes(key)) throw unknown(key);
    if (options.has(key)) throw new EndpointSyntaxError(description, `"${key}" is given twice`);
    const raw = item.slice(eq + 1);
    if (raw === '') throw new EndpointSyntaxError(description, `${key}= is empty (give a value or leave the key out)`);
    try {
      options.set(key, decodeURIComponent(raw));
    } catch {
      throw new EndpointSyntaxError(description, `${key}= has a "%" that is not followed by two hex digits (write a literal "%" as %25)`);
    }
  }
  return options;
}

function unknownOption(description: string, key: string, secure: boolean): EndpointSyntaxError {
  const allowed = secure ? WSS_KEYS : WS_KEYS;
  const sameButCase = WSS_KEYS.find((k) => k.toLowerCase() === key.toLowerCase());
  const hint =
    sameButCase && sameButCase !== key
      ? `keys are case-sensitive: did you mean "${sameButCase}"?`
      : WSS_KEYS.includes(key)
        ? `${key}= is for TLS: write wss://`
        : WSS_MISPLACED[key];
  const scheme = secure ? 'wss://' : 'ws://';
  return new EndpointSyntaxError(description, `unknown option "${key}" for ${scheme} (allowed after "#": ${allowed.join(', ')})${hint ? `; ${hint}` : ''}`);
}

/** The URL parseWebSocketUrl gives back this endpoint from: every option spelt out in the fragment. */
function formatWebSocketUrl(e: WsEndpoint): string {
  const options: [string, string | number | undefined][] = [['timeout', e.timeout], ['bindAddress', e.bindAddress]];
  if (e.secure) options.push(['trustRoots', e.trustRoots], ['certificate', e.certificate], ['privateKey', e.privateKey]);
  // Only what would end or split an option, or not survive in a URL, is encoded; paths stay readable.
  const fragment = options
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v).replace(/[%&#\s]/g, (c) => encodeURIComponent(c))}`)
    .join('&');
  return `${webSocketUrl(e)}#${fragment}`;
}

/** The URL the upgrade goes to: the endpoint without bbgate's options, which stay on this machine. */
export function webSocketUrl(e: WsEndpoint): string {
  return `${e.secure ? 'wss' : 'ws'}://${hostPort(e.host, e.port)}${e.path}`;
}

/** Makes a value literal inside a description (Twisted's quoteStringArgument, plus `=` for readability). */
function escape(value: string): string {
  return value.replace(/[\\:=]/g, (c) => `\\${c}`);
}

/** The endpoint as a connection string, escaped so that parseEndpoint gives it back. */
export function formatEndpoint(e: Endpoint): string {
  if (e.type === 'ws') return formatWebSocketUrl(e);
  const common: [string, string | number | undefined][] = [['host', e.host], ['port', e.port], ['timeout', e.timeout], ['bindAddress', e.bindAddress]];
  const fields: [string, string | number | undefined][] =
    e.type === 'tcp'
      ? common
      : e.syntax === 'tls'
        ? [...common, ['trustRoots', e.trustRoots], ['certificate', e.certificate], ['privateKey', e.privateKey]]
        : [...common, ['caCertsDir', e.trustRoots], ['hostname', e.serverName], ['certKey', e.certificate], ['privateKey', e.privateKey]];
  const prefix = e.type === 'tcp' ? 'tcp' : e.syntax;
  const args = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${escape(String(v))}`);
  return `${prefix}:${args.join(':')}`;
}

/**
 * The connection string buildbot-worker builds from buildmaster_host, port
 * and use_tls: it escapes only the colons of the host (for IPv6), so this
 * does too, byte for byte.
 */
export function masterConnectionString(masterHost: string, port: number, useTls: boolean): string {
  return `${useTls ? 'tls' : 'tcp'}:host=${masterHost.replace(/:/g, '\\:')}:port=${port}`;
}

export interface MasterAddress {
  host: string;
  port: number;
}

const DEFAULT_MASTER_PORT = 9989;

/** The MASTER argument of `create-worker`: `HOST[:PORT]` or `[IPv6][:PORT]`, the port defaulting to 9989. */
export function parseMasterAddress(master: string): MasterAddress {
  if (master.includes('@')) throw new EndpointSyntaxError(master, USER_INFO_PROBLEM);
  if (/^https?:/i.test(master) || /^[a-z][a-z0-9+.-]*:\/\//i.test(master)) {
    throw new EndpointSyntaxError(master, `MASTER is not a URL: give HOST[:PORT], the master's PB port (default ${DEFAULT_MASTER_PORT}), not its web address`);
  }
  const [host, port] = master.startsWith('[') ? splitBracketed(master) : splitPlain(master);
  if (host === '') throw new EndpointSyntaxError(master, `MASTER has no host (write HOST[:PORT], such as master.example.org:9989)`);
  return { host, port: port === undefined ? DEFAULT_MASTER_PORT : integer(master, 'port', port, 1, 65535)! };
}

function splitBracketed(master: string): [string, string | undefined] {
  const match = /^\[([^\]]*)\](?::(.*))?$/.exec(master);
  if (!match) throw new EndpointSyntaxError(master, `a bracketed MASTER must be [IPv6] or [IPv6]:PORT, such as [fd00::1]:9989`);
  if (isIP(match[1]!) !== 6) throw new EndpointSyntaxError(master, `brackets hold an IPv6 address, and "${match[1]}" is not one`);
  return [match[1]!, match[2]];
}

function splitPlain(master: string): [string, string | undefined] {
  const colons = master.split(':').length - 1;
  if (colons <= 1) {
    const [host, port] = master.split(':');
    return [host!, port];
  }
  const example = isIP(master) === 6 ? `[${master}]:${DEFAULT_MASTER_PORT}` : '[fd00::1]:9989';
  throw new EndpointSyntaxError(master, `MASTER has more than one ":"; an IPv6 address must be in brackets, as in ${example}`);
}
