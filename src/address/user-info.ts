import { EndpointSyntaxError } from './syntax-error.js';

/** Keys whose values are file paths, the one place an "@" belongs in a description: listeners' too. */
const FILE_KEYS = new Set(['trustRoots', 'certificate', 'privateKey', 'caCertsDir', 'certKey', 'extraCertChain']);

export const USER_INFO_PROBLEM =
  'a user name or password does not belong in a connection string (it would end up in logs): the worker logs in with its worker name and password, and a proxy\'s credentials go in the proxy setting as http://USER:PASSWORD@HOST:PORT';

/**
 * Whether any of a description's arguments (`KEY=VALUE` or positional) holds
 * an "@" outside a file's path: `USER:PASSWORD@HOST`, a URL's habit. An "@" has
 * no place in a host, port, address or number. Parsers ask this before
 * anything else, so that no later message quotes a piece of the password.
 */
export function carriesUserInfo(args: string[]): boolean {
  return args.some((arg) => arg.includes('@') && !(arg.includes('=') && FILE_KEYS.has(arg.slice(0, arg.indexOf('=')))));
}

/** Refuses a Twisted-style description (client or listener) that carries user info. */
export function refuseUserInfo(description: string): void {
  // Split leniently at unescaped ":" (tokenize's own errors would quote what they stop at).
  if (carriesUserInfo(description.match(/(?:\\[\s\S]|[^:\\])+/g) ?? [])) throw new EndpointSyntaxError(description, USER_INFO_PROBLEM);
}
