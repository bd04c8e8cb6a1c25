import { readFileSync } from 'node:fs';
import { BbgateError, fileReadFailure } from '../errors.js';
import type { ProxyConfig } from './proxy-string.js';

// Proxy credentials from the environment rather than the proxy string, so that neither
// buildbot.tac nor `ps` shows a password, and so that the proxies a PAC file names (which carry
// no user info) get credentials, as browsers' integrated authentication gives them. Read once at
// start-up by the worker, the probe and the relay; applied to each proxy a dial chooses.
//
// The rules, all of them:
//   - BBGATE_PROXY_PASSWORD_FILE=/path (its first line) or BBGATE_PROXY_PASSWORD: the password;
//     both set is an error, as is a file that cannot be read or whose first line is empty.
//   - A proxy string naming a user and no password takes this password.
//   - A proxy string naming no user (a PAC file's entries, HTTPS_PROXY=http://proxy:3128) takes
//     BBGATE_PROXY_USER (`DOMAIN\user` or `user@DOMAIN`) and this password; a user needs a password.
//   - BBGATE_PROXY_HASH=nt|ntlmv2 says the password is that hash (as `bbgate ntlm-hash` prints it),
//     as #hash= does on a proxy string, which wins.
//   - A proxy string with its own password keeps it: the environment never overrides a string.

/** The credentials the environment gives proxies whose strings lack them. Holds secrets: never logged. */
export interface ProxyCredentials {
  /** BBGATE_PROXY_USER: the user for proxy strings that name none. */
  username?: string;
  /** From BBGATE_PROXY_PASSWORD_FILE's first line or BBGATE_PROXY_PASSWORD. */
  password?: string;
  /** BBGATE_PROXY_HASH. */
  passwordHash?: 'nt' | 'ntlmv2';
  /** Where the password came from, for messages: the variable, and the file's path. */
  passwordFrom?: string;
}

/** The environment's proxy credentials do not add up, or their file cannot be read (PROXY_CREDENTIALS). Messages never quote a secret. */
export class ProxyCredentialsError extends BbgateError {
  constructor(message: string) {
    super('PROXY_CREDENTIALS', message);
  }
}

const HEX32 = /^[0-9a-f]{32}$/i;

/**
 * Reads BBGATE_PROXY_USER, BBGATE_PROXY_PASSWORD(_FILE) and BBGATE_PROXY_HASH, an empty value
 * counting as unset. Throws PROXY_CREDENTIALS, naming the variable or the file (never a value
 * that may be a secret), when they do not add up.
 */
export function readProxyCredentials(env: NodeJS.ProcessEnv, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): ProxyCredentials {
  const user = env.BBGATE_PROXY_USER || undefined;
  const hash = env.BBGATE_PROXY_HASH || undefined;
  const file = env.BBGATE_PROXY_PASSWORD_FILE || undefined;
  const inline = env.BBGATE_PROXY_PASSWORD || undefined;
  if (file !== undefined && inline !== undefined) {
    throw new ProxyCredentialsError('both BBGATE_PROXY_PASSWORD_FILE and BBGATE_PROXY_PASSWORD are set: unset one, so that it is clear which password the proxy gets');
  }
  const password = file !== undefined ? firstLine(file, readFile) : inline;
  const passwordFrom = file !== undefined ? `BBGATE_PROXY_PASSWORD_FILE=${file}` : inline !== undefined ? 'BBGATE_PROXY_PASSWORD' : undefined;
  if (user !== undefined && user.includes(':')) {
    throw new ProxyCredentialsError('BBGATE_PROXY_USER contains ":", which Basic authentication cannot carry: write DOMAIN\\user or user@DOMAIN');
  }
  if (user !== undefined && password === undefined) {
    throw new ProxyCredentialsError('BBGATE_PROXY_USER is set but no password is: set BBGATE_PROXY_PASSWORD_FILE (a file whose first line is the password) or BBGATE_PROXY_PASSWORD (a Negotiate proxy needs neither: unset BBGATE_PROXY_USER)');
  }
  let passwordHash: ProxyCredentials['passwordHash'];
  if (hash !== undefined) {
    const kind = hash.toLowerCase();
    // The value is not quoted: a hash pasted into the wrong variable must not be echoed.
    if (kind !== 'nt' && kind !== 'ntlmv2') throw new ProxyCredentialsError('BBGATE_PROXY_HASH takes nt or ntlmv2 (which hash `bbgate ntlm-hash` printed), nothing else');
    if (password === undefined) throw new ProxyCredentialsError('BBGATE_PROXY_HASH is set but no password is: put the hash in BBGATE_PROXY_PASSWORD_FILE or BBGATE_PROXY_PASSWORD');
    if (!HEX32.test(password)) throw new ProxyCredentialsError(`BBGATE_PROXY_HASH=${kind} wants ${passwordFrom} to hold the 32 hex digits \`bbgate ntlm-hash\` prints`);
    passwordHash = kind;
  }
  return {
    ...(user !== undefined ? { username: user } : {}),
    ...(password !== undefined ? { password, passwordFrom: passwordFrom! } : {}),
    ...(passwordHash ? { passwordHash } : {}),
  };
}

/** The file's first line, without its line ending; an unreadable file or an empty first line is an error naming the file. */
function firstLine(path: string, readFile: (path: string) => string): string {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ProxyCredentialsError(`cannot read the proxy password from BBGATE_PROXY_PASSWORD_FILE=${path}: ${fileReadFailure(err)}`);
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new ProxyCredentialsError(`the proxy password file BBGATE_PROXY_PASSWORD_FILE=${path} is empty (its first line is the password)`);
  return line;
}

/**
 * The proxy with the environment's credentials where its string lacks them (see the rules
 * above); pure, so applying them per dial re-reads nothing. Throws PROXY_CREDENTIALS when a
 * string's #hash= meets a password from the environment that is not a hash.
 */
export function withProxyCredentials(proxy: ProxyConfig, credentials: ProxyCredentials | undefined): ProxyConfig {
  if (proxy.passwordHash && !proxy.password && !credentials?.password) {
    throw new ProxyCredentialsError(`the proxy string's #hash=${proxy.passwordHash} has no hash: write it as the URL's password, or in BBGATE_PROXY_PASSWORD_FILE or BBGATE_PROXY_PASSWORD`);
  }
  if (!credentials?.password || proxy.password) return proxy;
  let username: string;
  if (proxy.username) username = proxy.username;
  else if (credentials.username !== undefined) username = credentials.username;
  else return proxy;
  const passwordHash = proxy.passwordHash ?? credentials.passwordHash;
  if (passwordHash && !HEX32.test(credentials.password)) {
    throw new ProxyCredentialsError(`the proxy string's #hash=${passwordHash} wants ${credentials.passwordFrom} to hold the 32 hex digits \`bbgate ntlm-hash\` prints`);
  }
  return { ...proxy, username, password: credentials.password, ...(passwordHash ? { passwordHash } : {}) };
}

/** The forms the environment's password takes in output, for the scrubbers (see ../redact.ts): as written, in either case for a hash, and the Basic token. */
export function credentialSecrets(credentials: ProxyCredentials | undefined): string[] {
  const password = credentials?.password;
  if (!password) return [];
  if (credentials.passwordHash) return [password, password.toLowerCase(), password.toUpperCase()];
  const secrets = [password];
  if (credentials.username !== undefined) secrets.push(Buffer.from(`${credentials.username}:${password}`, 'utf8').toString('base64'));
  return secrets;
}
