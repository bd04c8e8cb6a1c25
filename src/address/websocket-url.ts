import { isIP } from 'node:net';
import type { WsEndpoint } from './endpoint.js';
import { bindAddress, peerPort, present, requireCertificate, timeoutSeconds } from './fields.js';
import { parseFingerprint } from './fingerprint.js';
import { hostPort, splitHostPort, type HostPortProblem } from './host-port.js';
import { EndpointSyntaxError } from './syntax-error.js';
import { carriesUserInfo } from './user-info.js';

// ws:// and wss:// URLs: a worker's connection string to a relay reachable only over HTTP(S),
// and (through splitWebSocketUrl) the relay's WebSocket listeners.

/** Whether a string is a ws:// or wss:// URL rather than a Twisted description. */
export function isWebSocketUrl(description: string): boolean {
  return WS_URL.test(description);
}

const WS_URL = /^wss?:\/\//i;
const WS_USAGE = 'ws://HOST[:PORT]/PATH, or wss://HOST[:PORT]/PATH for TLS';
const WS_KEYS = ['timeout', 'bindAddress'];
const WSS_KEYS = [...WS_KEYS, 'trustRoots', 'certificate', 'privateKey', 'fingerprint'];
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
export function parseWebSocketUrl(description: string): WsEndpoint {
  const url = splitWebSocketUrl(description, (secure) => (secure ? WSS_KEYS : WS_KEYS), unknownOption);
  const { secure, host, options } = url;
  const port = peerPort(description, url.port) ?? (secure ? 443 : 80);
  const path = url.path + url.query;
  const timeout = timeoutSeconds(description, options.get('timeout'));
  const common = { type: 'ws' as const, host, port, path, timeout, ...bindAddress(description, options.get('bindAddress')) };
  if (!secure) return { ...common, secure: false };
  const certificate = options.get('certificate');
  const privateKey = options.get('privateKey');
  requireCertificate(description, 'certificate', certificate, privateKey);
  const pin = options.get('fingerprint');
  return {
    ...common,
    secure: true,
    serverName: host,
    ...present({ trustRoots: options.get('trustRoots'), certificate, privateKey, fingerprint: pin === undefined ? undefined : parseFingerprint(description, pin) }),
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
  const split = splitHostPort(authority);
  if ('problem' in split) throw authorityProblem(description, authority, split);
  if (!split.bracketed && !/^[\p{L}\p{N}._-]+$/u.test(split.host)) throw new EndpointSyntaxError(description, `"${split.host}" is not a host name or IP address`);
  return [split.host, split.port];
}

function authorityProblem(description: string, authority: string, split: HostPortProblem): EndpointSyntaxError {
  if (split.problem === 'brackets') return new EndpointSyntaxError(description, `a bracketed host must be [IPv6] or [IPv6]:PORT, as in ws://[fd00::1]:8080/pb`);
  if (split.problem === 'not-ipv6') return new EndpointSyntaxError(description, `brackets hold an IPv6 address, and "${split.inside}" is not one`);
  const example = isIP(authority) === 6 ? `[${authority}]` : '[fd00::1]:8080';
  return new EndpointSyntaxError(description, `the host has more than one ":"; an IPv6 address must be in brackets, as in ws://${example}/pb`);
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
export function formatWebSocketUrl(e: WsEndpoint): string {
  const options: [string, string | number | undefined][] = [['timeout', e.timeout], ['bindAddress', e.bindAddress]];
  if (e.secure) options.push(['trustRoots', e.trustRoots], ['certificate', e.certificate], ['privateKey', e.privateKey], ['fingerprint', e.fingerprint]);
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
