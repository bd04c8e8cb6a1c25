/**
 * The first of bbgate's two rules for keeping credentials out of what it prints
 * (the second, the scrubber of known secrets, is ../redact.ts): a string the user
 * gave (a connection string, a proxy string, a WebSocket URL, a proxy variable)
 * is quoted only through `redactCredentials`, which hides its user info, so that
 * a password written into it is never echoed.
 */

/** What stands where user info was hidden. */
export const HIDDEN = '***';

/**
 * An optional scheme (`http://`, `ws://`) or connection type (`tcp:`, `tls:`,
 * `ssl:`), then everything up to the last "@". The last, not the first: a
 * password may hold an "@", or a "/" or "#" that would end a URL's authority
 * early, so nothing before the last "@" can be shown safely.
 */
const USER_INFO = /^((?:[a-z][a-z0-9+.-]*:\/\/|(?:tcp|tls|ssl):)?)[\s\S]*@/i;

/**
 * The string with its user info, `USER[:PASSWORD]@`, shown as `***@`:
 * `http://bob:pw@proxy:3128` → `http://***@proxy:3128`, `tcp:bob:pw@master:9989`
 * → `tcp:***@master:9989`, `bob:pw@proxy` → `***@proxy`. Nothing else changes:
 * a string without an "@" comes back as written. A file path holding an "@"
 * (`trustRoots=/home/a@b/ca`) is hidden up to it too: too much hidden is a less
 * helpful message, too little is a leaked password.
 */
export function redactCredentials(text: string | URL): string {
  return String(text).replace(USER_INFO, (_m, prefix: string) => `${prefix}${HIDDEN}@`);
}
