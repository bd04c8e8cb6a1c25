import { BbgateError } from '../errors.js';
import { parseClientString } from './client-string.js';
import { hostPort } from './host-port.js';
import { redactCredentials } from './redact.js';

// The proxy setting: a Twisted tcp: string (buildbot-worker's proxy_connection_string) or an
// http(s):// URL, from a flag, a tac or the environment; and the forms its password takes.

/** A proxy string that does not parse (PROXY_SYNTAX); its message quotes the string redacted. */
export class ProxySyntaxError extends BbgateError {
  constructor(message: string) {
    super('PROXY_SYNTAX', message);
  }
}

/** An HTTP proxy to open CONNECT tunnels through. */
export interface ProxyConfig {
  /** `http:` or `https:` (TLS to the proxy itself), host and port only: credentials live apart so that the URL is always safe to print. */
  url: URL;
  /** Decoded from the URL's user info; sent as preemptive Basic `Proxy-Authorization`. */
  username?: string;
  password?: string;
  /** `pac`: an entry of a PAC file's answer (see ./pac-string.ts). */
  source: 'flag' | 'environment' | 'pac';
  /** The variable it came from, as spelled in the environment (`https_proxy` or `HTTPS_PROXY`, ...). */
  envVar?: string;
  /** A `tcp:` proxy string's `timeout=` in seconds: bounds the TCP connect to the proxy, as Twisted's endpoint does for buildbot-worker. */
  connectTimeoutS?: number;
  /** A `tcp:` proxy string's `bindAddress=`: the local address to connect to the proxy from. */
  bindAddress?: string;
  /** `#auth=basic|ntlm|negotiate`: use this scheme only, whatever else the proxy offers (spelled as ../proxy/auth/scheme.ts's AuthSchemeName). */
  auth?: 'Basic' | 'NTLM' | 'Negotiate';
  /** `#hash=nt|ntlmv2`: the URL's password is that hash in hex (as `bbgate ntlm-hash` prints it), usable by NTLM only. */
  passwordHash?: 'nt' | 'ntlmv2';
}

/** The port a proxy is reached on: the URL's, or its scheme's default (80, or 443 for https://). */
export function proxyPort(proxy: ProxyConfig): number {
  return Number(proxy.url.port) || (proxy.url.protocol === 'https:' ? 443 : 80);
}

const FORMS = 'write tcp:HOST:PORT, http://[USER:PASSWORD@]HOST:PORT[#OPTIONS] or https://[USER:PASSWORD@]HOST:PORT[#OPTIONS]';

/**
 * Parses a `--proxy-connection-string`: a Twisted `tcp:` endpoint (what
 * buildbot-worker's `proxy_connection_string` takes), or an `http://` or
 * `https://` URL that may carry credentials. Throws ENDPOINT_SYNTAX for a bad
 * `tcp:` string and PROXY_SYNTAX otherwise; messages never show a password.
 */
export function parseProxyString(s: string): ProxyConfig {
  if (/^tcp:/i.test(s)) return fromEndpoint(s);
  if (/^(tls|ssl):/i.test(s)) throw syntax(quoted(s), `for TLS to the proxy write https://HOST:PORT (${FORMS})`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return proxyFromUrl(s, { source: 'flag' });
  throw syntax(quoted(s), `not a proxy connection string: ${FORMS}`);
}

/** A proxy URL as found in a flag or an environment variable (`origin` goes into every error message). */
export function proxyFromUrl(s: string, origin: { source: ProxyConfig['source']; envVar?: string }): ProxyConfig {
  const where = origin.envVar ? `${origin.envVar}=${quoted(s)}` : quoted(s);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw syntax(where, `not a valid proxy URL: ${FORMS}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw syntax(where, `"${url.protocol}//" proxies are not supported; bbgate tunnels through HTTP proxies (http:// or https://)`);
  }
  if (url.pathname !== '/' || url.search !== '') {
    // WHATWG URLs read "\\" as "/" in http:, so DOMAIN\user:pw@host parses as host DOMAIN.
    const backslash = /^[^@]*\\[^@]*@/.test(s.replace(/^[a-z]+:\/\//i, '')) ? '; write DOMAIN\\user as DOMAIN%5Cuser' : '';
    throw syntax(where, `a proxy URL is only [USER:PASSWORD@]HOST[:PORT][#OPTIONS], without a path or query${backslash}`);
  }
  const options = proxyOptions(url.hash, where);
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw syntax(where, `the user name or password has a malformed %-escape`);
  }
  if (username.includes(':')) {
    throw syntax(where, `the user name contains ":", which Basic authentication cannot carry (a ":" in the password is fine, escaped as %3A)`);
  }
  if (options.passwordHash) {
    // The hash is never quoted: it is as good as the password to an NTLM proxy.
    // An empty password may come from BBGATE_PROXY_PASSWORD(_FILE): ./proxy-credentials.ts checks that one.
    if (password !== '' && !/^[0-9a-f]{32}$/i.test(password)) throw syntax(where, `#hash=${options.passwordHash} wants the password to be the 32 hex digits \`bbgate ntlm-hash\` prints`);
    if (options.auth && options.auth !== 'NTLM') throw syntax(where, `#hash= works with NTLM only, not with #auth=${options.auth.toLowerCase()}`);
  }
  return {
    url: new URL(`${url.protocol}//${url.host}`),
    ...(username || password ? { username, password } : {}),
    source: origin.source,
    ...(origin.envVar ? { envVar: origin.envVar } : {}),
    ...options,
  };
}

const SCHEMES = { basic: 'Basic', ntlm: 'NTLM', negotiate: 'Negotiate' } as const;
const HASHES = { nt: 'nt', ntlmv2: 'ntlmv2' } as const;

/**
 * The options after "#": `auth=basic|ntlm|negotiate` and `hash=nt|ntlmv2`, joined by "&" (the
 * form ws:// strings' TLS options take). They sit after the host, outside the user info that
 * redaction hides, so they carry no secret.
 */
function proxyOptions(fragment: string, where: string): Pick<ProxyConfig, 'auth' | 'passwordHash'> {
  const options: Pick<ProxyConfig, 'auth' | 'passwordHash'> = {};
  for (const option of fragment.replace(/^#/, '').split('&')) {
    if (option === '') continue;
    const [key = '', value = '', ...extra] = option.split('=');
    if (extra.length) throw syntax(where, `an option after "#" is KEY=VALUE (auth=basic|ntlm|negotiate, hash=nt|ntlmv2); a "#" in a password must be written %23`);
    const lower = value.toLowerCase();
    if (key === 'auth' && Object.hasOwn(SCHEMES, lower)) options.auth = SCHEMES[lower as keyof typeof SCHEMES];
    else if (key === 'hash' && Object.hasOwn(HASHES, lower)) options.passwordHash = HASHES[lower as keyof typeof HASHES];
    // Neither the key nor the value is quoted: an unescaped "#" in a password makes the rest of
    // the password (and the host) look like options, and quoting them would print it.
    else if (key === 'auth' || key === 'hash') throw syntax(where, `#${key}= takes ${key === 'auth' ? 'basic, ntlm or negotiate' : 'nt or ntlmv2'}; a "#" in a password must be written %23`);
    else throw syntax(where, `unknown option after "#": the options are auth=basic|ntlm|negotiate and hash=nt|ntlmv2; a "#" in a password must be written %23`);
  }
  return options;
}

function fromEndpoint(s: string): ProxyConfig {
  const endpoint = parseClientString(s);
  let url: URL;
  try {
    url = new URL(`http://${hostPort(endpoint.host, endpoint.port)}`);
  } catch {
    throw syntax(quoted(s), `"${endpoint.host}" is not a valid proxy host name`);
  }
  return {
    url,
    source: 'flag',
    connectTimeoutS: endpoint.timeout,
    ...(endpoint.bindAddress ? { bindAddress: endpoint.bindAddress } : {}),
  };
}

/** The proxy string as error messages show it: quoted, its credentials hidden. */
function quoted(s: string): string {
  return `"${redactCredentials(s)}"`;
}

/** `where` is the quoted string (and the variable it came from): the only way an error shows the input. */
function syntax(where: string, problem: string): ProxySyntaxError {
  return new ProxySyntaxError(`${where}: ${problem}`);
}

/**
 * The forms a proxy's password takes on the wire and in text, for the scrubbers
 * of the processes that hold one (see ../redact.ts): the password itself and the
 * Basic token it is sent in.
 */
export function proxySecrets(proxy: ProxyConfig | undefined): string[] {
  if (proxy?.password === undefined || proxy.password === '') return [];
  // A hash in either case, as a user may have pasted it or a tool may print it.
  if (proxy.passwordHash) return [proxy.password, proxy.password.toLowerCase(), proxy.password.toUpperCase()];
  return [proxy.password, basicToken(proxy)];
}

/** The token of `Proxy-Authorization: Basic TOKEN`. */
export function basicToken(proxy: ProxyConfig): string {
  return Buffer.from(`${proxy.username ?? ''}:${proxy.password ?? ''}`, 'utf8').toString('base64');
}
