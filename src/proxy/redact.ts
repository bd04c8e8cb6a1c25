/**
 * The URL with any user name and password replaced by `***`, for logs and
 * error messages. Anything that does not parse as a URL with a host, such as
 * `user:pass@proxy:3128`, and anything with an `@` past its host (a password
 * with a stray `/` parses as a host and a path holding the rest of it) is
 * scrubbed up to its last `@` instead.
 */
export function redactUrl(u: string | URL): string {
  const url = parsed(u);
  if (!url || (url.pathname + url.search + url.hash).includes('@')) return String(u).replace(/^([^:/?#]*:\/\/)?.*@/s, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  if (url.username === '' && url.password === '') return url.href;
  url.username = '***';
  if (url.password) url.password = '***';
  return url.href;
}

function parsed(u: string | URL): URL | undefined {
  try {
    const url = new URL(u);
    return url.host === '' ? undefined : url;
  } catch {
    return undefined;
  }
}
