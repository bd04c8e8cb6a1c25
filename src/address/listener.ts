import { isIP } from 'node:net';
import { present } from './fields.js';
import { readPort } from './host-port.js';
import { EndpointSyntaxError } from './syntax-error.js';
import { splitEndpoint } from './twisted-syntax.js';
import { isWebSocketUrl, splitWebSocketUrl } from './websocket-url.js';

// The relay's listener strings: where it accepts workers.

/**
 * Where the relay accepts workers. `name` is the listener as the user wrote it, without its
 * options (a metrics label and log field). `proxyFrom`: addresses and CIDRs of load balancers
 * whose connections open with a PROXY header.
 */
export type ListenerSpec = (
  | { kind: 'tcp'; name: string; port: number; host?: string }
  | { kind: 'tls'; name: string; port: number; host?: string; certKey: string; privateKey: string; extraCertChain?: string; caCertsDir?: string; certNames?: boolean }
  | { kind: 'ws'; name: string; port: number; host: string; path: string; tls?: { certKey: string; privateKey: string; extraCertChain?: string; caCertsDir?: string; certNames?: boolean } }
) & { proxyFrom?: string[] };

/**
 * What the caller of parseListenerString decides: how a problem with the listener is worded (the
 * caller names its setting), and whether proxyFrom='s addresses are addresses (the relay's
 * policy reads them). A syntax error of the string itself is an EndpointSyntaxError, as for a
 * client string.
 */
export interface ListenerChecks {
  fail(problem: string): Error;
  /** Throws (through fail) when one of proxyFrom='s sources is not an address or CIDR. */
  proxyFrom(sources: string[]): void;
}

/**
 * A listener: Twisted's server endpoint syntax for `tcp:PORT[:interface=IP]`
 * and `ssl:`/`tls:PORT:certKey=PEM:privateKey=PEM` (with caCertsDir= to
 * require client certificates, and certNames=1 to hold each worker to the
 * names its certificate carries), or a `ws://`/`wss://` URL whose fragment
 * holds the certificate options (a fragment is never sent anywhere); any of
 * them with proxyFrom=CIDR,... (an IPv6 one escaped as `\:` in Twisted's syntax).
 */
export function parseListenerString(text: string, checks: ListenerChecks): ListenerSpec {
  if (isWebSocketUrl(text)) return webSocketListener(text, checks);
  const parts = splitEndpoint(text);
  const { fail } = checks;
  const kind = parts.type === 'ssl' ? 'tls' : parts.type;
  if (kind !== 'tcp' && kind !== 'tls') {
    throw fail(`listener type "${parts.type}" is not supported (write tcp:PORT, tls:PORT:certKey=PEM:privateKey=PEM, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH#certKey=PEM&privateKey=PEM)`);
  }
  const allowed = kind === 'tcp' ? ['port', 'interface', 'proxyFrom'] : ['port', 'interface', 'certKey', 'privateKey', 'extraCertChain', 'caCertsDir', 'certNames', 'proxyFrom'];
  for (const key of parts.keywords.keys()) {
    if (!allowed.includes(key)) throw fail(`unknown key "${key}" (allowed: ${allowed.join(', ')})`);
  }
  if (parts.positional.length > 1 || (parts.positional.length === 1 && parts.keywords.has('port'))) {
    throw fail('a listener takes one positional argument, the port (the address to listen on is interface=IP)');
  }
  const port = listenPort(parts.positional[0] ?? parts.keywords.get('port'), fail);
  const host = parts.keywords.get('interface');
  if (host !== undefined && !isIP(host)) throw fail(`interface must be an IP address, not "${host}"`);
  // The name labels metrics and logs: the port and address, not the key file's path.
  const base = {
    name: `${kind}:${port}${host !== undefined ? `:interface=${host}` : ''}`,
    port,
    ...(host !== undefined ? { host } : {}),
    ...proxyFrom(parts.keywords.get('proxyFrom'), checks),
  };
  if (kind === 'tcp') return { kind: 'tcp', ...base };
  const certKey = parts.keywords.get('certKey');
  if (certKey === undefined) throw fail('a TLS listener needs certKey=PEM (its certificate, and the key unless privateKey= is given)');
  const caCertsDir = parts.keywords.get('caCertsDir');
  return {
    kind: 'tls',
    ...base,
    certKey,
    privateKey: parts.keywords.get('privateKey') ?? certKey,
    ...present({ extraCertChain: parts.keywords.get('extraCertChain'), caCertsDir }),
    ...certNames(parts.keywords.get('certNames'), caCertsDir, fail),
  };
}

/**
 * certNames=1: a worker may log in only under a name its client certificate carries (its
 * subject CN or a DNS name among its subjectAltNames), so one valid certificate is not a key to
 * every name on the allow-list. It needs client certificates, hence caCertsDir.
 */
function certNames(value: string | undefined, caCertsDir: string | undefined, fail: (problem: string) => Error): { certNames?: true } {
  if (value === undefined || value === '0') return {};
  if (value !== '1') throw fail(`certNames must be 1 (worker names must be in the client certificate) or 0, not "${value}"`);
  if (caCertsDir === undefined) throw fail('certNames=1 needs client certificates: add caCertsDir=DIR, the CAs that issue them');
  return { certNames: true };
}

function listenPort(value: string | undefined, fail: (problem: string) => Error): number {
  if (value === undefined) throw fail('no port');
  const port = readPort(value, 0);
  if (port === undefined) throw fail(`port must be a number from 0 to 65535, not "${value}"`);
  return port;
}

const WS_LISTENER_KEYS = ['proxyFrom'];
const WSS_LISTENER_KEYS = ['certKey', 'privateKey', 'extraCertChain', 'caCertsDir', 'certNames', 'proxyFrom'];

/** A ws:// or wss:// listener, read by the same parser as a worker's ws:// connection string. */
function webSocketListener(text: string, checks: ListenerChecks): ListenerSpec {
  const { fail } = checks;
  const url = splitWebSocketUrl(text, (secure) => (secure ? WSS_LISTENER_KEYS : WS_LISTENER_KEYS), (description, key, secure) =>
    new EndpointSyntaxError(description, `unknown option "${key}" after # (allowed: ${(secure ? WSS_LISTENER_KEYS : WS_LISTENER_KEYS).join(', ')})`));
  if (url.query) throw fail('a listener URL takes no query string');
  const { secure, host, options } = url;
  const port = url.port === undefined ? (secure ? 443 : 80) : listenPort(url.port, fail);
  let path: string;
  try {
    path = decodeURIComponent(url.path);
  } catch {
    throw fail('the path has a "%" that is not followed by two hex digits (write a literal "%" as %25)');
  }
  const base = { kind: 'ws' as const, name: text.replace(/#.*/, ''), port, host, path, ...proxyFrom(options.get('proxyFrom'), checks) };
  if (!secure) return base;
  const certKey = options.get('certKey');
  if (!certKey) throw fail('a wss:// listener needs #certKey=PEM (and &privateKey=PEM unless the file holds the key)');
  const caCertsDir = options.get('caCertsDir');
  return {
    ...base,
    tls: {
      certKey,
      privateKey: options.get('privateKey') ?? certKey,
      ...present({ extraCertChain: options.get('extraCertChain'), caCertsDir }),
      ...certNames(options.get('certNames'), caCertsDir, fail),
    },
  };
}

/** proxyFrom=A,B: the load balancers' addresses, checked by the caller before anything listens. */
function proxyFrom(value: string | undefined, checks: ListenerChecks): { proxyFrom?: string[] } {
  if (value === undefined) return {};
  const sources = value.split(',').map((s) => s.trim());
  checks.proxyFrom(sources);
  return { proxyFrom: sources };
}
