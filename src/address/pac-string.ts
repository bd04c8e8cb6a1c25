import { ProxySyntaxError } from './proxy-string.js';
import { redactCredentials } from './redact.js';

// A PAC file as the proxy setting: `pac+file:///path`, `pac+http://…`, `pac+https://…`, the
// naming of the proxy-agent family of packages. Only the location is parsed here; loading and
// evaluating the script is the proxy layer's job (src/proxy/pac/).

/** Where a proxy auto-config script lives. Carries no credentials, so it is always safe to print. */
export interface PacSource {
  kind: 'pac';
  /** `file:` (an absolute path) or `http(s):`: where the script is read from. */
  location: URL;
  /** As the user wrote it, `pac+` included: what messages show. */
  text: string;
}

const FORMS = 'write pac+file:///ABSOLUTE/PATH, pac+http://HOST[:PORT]/PATH or pac+https://HOST[:PORT]/PATH';

/** True for strings this module parses (`pac+` then anything), so that a misspelt `pac+ftp:` gets a PAC message. */
export function isPacString(s: string): boolean {
  return /^pac\+/i.test(s);
}

/**
 * Parses `pac+file:///path/proxy.pac`, `pac+http://host/proxy.pac` or
 * `pac+https://host/proxy.pac`. Throws PROXY_SYNTAX for anything else, and for
 * user info in the URL: a PAC file is fetched without credentials, as browsers
 * do, so a password there could only leak.
 */
export function parsePacString(s: string): PacSource {
  const where = `"${redactCredentials(s)}"`;
  const inner = s.replace(/^pac\+/i, '');
  let location: URL;
  try {
    location = new URL(inner);
  } catch {
    throw new ProxySyntaxError(`${where}: not a valid PAC URL: ${FORMS}`);
  }
  if (location.username || location.password || /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(inner)) {
    throw new ProxySyntaxError(`${where}: a PAC URL carries no user name or password (the PAC file is fetched without credentials; the proxies it names get theirs separately)`);
  }
  if (location.protocol === 'file:') {
    // `file:relative` and `file://host/path` both parse; neither names a file here.
    if (!/^file:\/\/\//i.test(inner) && !/^file:\/\/localhost\//i.test(inner)) {
      throw new ProxySyntaxError(`${where}: a PAC file is named by its absolute path, with three slashes: pac+file:///etc/bbgate/proxy.pac`);
    }
    if (location.pathname === '/' || location.pathname.endsWith('/')) throw new ProxySyntaxError(`${where}: names a directory, not a PAC file`);
    return { kind: 'pac', location: new URL(`file://${location.pathname}`), text: s };
  }
  if (location.protocol !== 'http:' && location.protocol !== 'https:') {
    throw new ProxySyntaxError(`${where}: "${location.protocol}//" PAC URLs are not supported: ${FORMS}`);
  }
  if (location.hash) throw new ProxySyntaxError(`${where}: a PAC URL has no #fragment`);
  return { kind: 'pac', location, text: s };
}
