import { EndpointSyntaxError } from './syntax-error.js';
import type { Endpoint, TcpEndpoint, TlsEndpoint } from './endpoint.js';
import { bindAddress, peerPort, present, requireCertificate, timeoutSeconds } from './fields.js';
import { parseFingerprint } from './fingerprint.js';
import { escape, splitEndpoint, type EndpointParts } from './twisted-syntax.js';

// Twisted's client strings, tcp:, tls: and ssl:, read as buildbot-worker's Twisted reads them.

const IPV6_HINT = 'an IPv6 address must escape each ":" (host=fd00\\:\\:1) or, positionally, be bracketed (tcp:[fd00::1]:9989)';

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
    keys: [...CONNECTION_KEYS, 'trustRoots', 'certificate', 'privateKey', 'fingerprint'],
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
  fingerprint: { ssl: 'fingerprint= is bbgate\'s, for tls: and wss:// only: write tls:HOST:PORT:fingerprint=HEX', tcp: 'tcp: is plain TCP; for TLS write tls:HOST:PORT:fingerprint=HEX' },
};

/** Parses a tcp:, tls: or ssl: client string, or throws EndpointSyntaxError naming what is wrong. */
export function parseClientString(description: string): TcpEndpoint | TlsEndpoint {
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

/**
 * `HOST:PORT` or `[IPv6]:PORT` written where a connection string goes (a
 * master address without its connection type): the strings it most likely
 * meant, or undefined if it is something else.
 */
export function connectionStringsFor(description: string): { tcp: string; tls: string } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(description);
  if (!m || Object.hasOwn(SYNTAXES, m[1]!.toLowerCase())) return undefined;
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1).replace(/:/g, '\\:') : m[1]!;
  return { tcp: `tcp:${host}:${m[2]}`, tls: `tls:${host}:${m[2]}` };
}

function unsupportedType(description: string, parts: EndpointParts): EndpointSyntaxError {
  const meant = connectionStringsFor(description);
  if (meant) return new EndpointSyntaxError(description, `a host and port without a connection type: write ${meant.tcp}, or ${meant.tls} for TLS`);
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
  if (positional.length > slots.length) throw tooManyPositional(description, syntax, slots, positional, keywords.has('fingerprint'));
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

function tooManyPositional(description: string, syntax: Syntax, slots: string[], positional: string[], pinned: boolean): EndpointSyntaxError {
  const takes =
    slots.length === 2 ? 'HOST:PORT' : slots.length === 1 ? `only ${slots[0]!.toUpperCase()}, as ${slots[0] === 'host' ? 'port' : 'host'}= is given` : 'none, as host= and port= are given';
  // Three or more arguments led by one like "fd00" are most likely an IPv6 address split at its colons.
  const ipv6 = positional.length > 2 && /^[0-9a-f]{1,4}$/i.test(positional[0]!) ? `; ${IPV6_HINT}` : '';
  // fingerprint=AB:CD:… split at its colons.
  const pin = pinned ? '; a fingerprint= is written without colons (64 hex digits), or with each ":" escaped as "\\:"' : '';
  return new EndpointSyntaxError(description, `too many positional arguments (${syntax.type} takes ${takes}; give the rest as key=value${ipv6}${pin})`);
}

/** The TCP part every syntax shares. */
function connection(description: string, values: Map<string, string>, syntax: Syntax): Omit<TcpEndpoint, 'type'> {
  const host = values.get('host');
  if (host === undefined) throw new EndpointSyntaxError(description, `no host (write ${syntax.usage})`);
  if (host.startsWith('[') && host.endsWith(']')) {
    throw new EndpointSyntaxError(description, `host "${host}" has brackets, which are not part of an address; write host=${escape(host.slice(1, -1))}`);
  }
  const port = peerPort(description, values.get('port'));
  if (port === undefined) throw new EndpointSyntaxError(description, `no port (write ${syntax.usage})`);
  const timeout = timeoutSeconds(description, values.get('timeout'));
  return { host, port, timeout, ...bindAddress(description, values.get('bindAddress')) };
}

function tlsEndpoint(description: string, values: Map<string, string>): TlsEndpoint {
  const base = connection(description, values, SYNTAXES.tls);
  const certificate = values.get('certificate');
  const privateKey = values.get('privateKey');
  requireCertificate(description, 'certificate', certificate, privateKey);
  const pin = values.get('fingerprint');
  return {
    type: 'tls',
    ...base,
    serverName: base.host,
    ...present({ trustRoots: values.get('trustRoots'), certificate, privateKey, fingerprint: pin === undefined ? undefined : parseFingerprint(description, pin) }),
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

/** A tcp:, tls: or ssl: endpoint as a client string, escaped so that parseClientString gives it back. */
export function formatClientString(e: Exclude<Endpoint, { type: 'ws' }>): string {
  const common: [string, string | number | undefined][] = [['host', e.host], ['port', e.port], ['timeout', e.timeout], ['bindAddress', e.bindAddress]];
  const fields: [string, string | number | undefined][] =
    e.type === 'tcp'
      ? common
      : e.syntax === 'tls'
        ? [...common, ['trustRoots', e.trustRoots], ['certificate', e.certificate], ['privateKey', e.privateKey], ['fingerprint', e.fingerprint]]
        : [...common, ['caCertsDir', e.trustRoots], ['hostname', e.serverName], ['certKey', e.certificate], ['privateKey', e.privateKey]];
  const prefix = e.type === 'tcp' ? 'tcp' : e.syntax;
  const args = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${escape(String(v))}`);
  return `${prefix}:${args.join(':')}`;
}
