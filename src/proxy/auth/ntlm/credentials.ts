import { hostname } from 'node:os';
import { ntHash, ntlmv2Hash } from './ntlmv2.js';

/** What NTLM needs to know about the user: names as sent, and the key the responses are made with. */
export interface NtlmCredentials {
  user: string;
  domain: string;
  workstation: string;
  /** NTOWFv2 for this user and domain, whichever form the secret came in. */
  key: Buffer;
}

/** The secret as the proxy string gave it: a password, or a hash that stands for one. */
export type NtlmSecret = { kind: 'password'; password: string } | { kind: 'nt-hash'; hash: Buffer } | { kind: 'ntlmv2-hash'; hash: Buffer };

/**
 * The user and domain of a proxy URL's user name: `DOMAIN\user` (written `DOMAIN%5Cuser` in the
 * URL), `user@DOMAIN`, or a bare `user` (empty domain, which the proxy's domain controller reads
 * as its own). Windows sends a UPN with an empty domain, but proxies behind Active Directory take
 * the split form as well and squid's helpers log it as DOMAIN\user, so bbgate splits it.
 */
export function splitUserName(name: string): { user: string; domain: string } {
  const slash = name.indexOf('\\');
  if (slash >= 0) return { domain: name.slice(0, slash), user: name.slice(slash + 1) };
  const at = name.lastIndexOf('@');
  if (at > 0) return { user: name.slice(0, at), domain: name.slice(at + 1) };
  return { user: name, domain: '' };
}

export function ntlmCredentials(name: string, secret: NtlmSecret, workstation = defaultWorkstation()): NtlmCredentials {
  const { user, domain } = splitUserName(name);
  const key =
    secret.kind === 'ntlmv2-hash'
      ? secret.hash
      : ntlmv2Hash(secret.kind === 'nt-hash' ? secret.hash : ntHash(secret.password), user, domain);
  return { user, domain, workstation, key };
}

/**
 * The workstation name as Windows sends it: the NetBIOS computer name, which is the host name's
 * first label, upper-cased and cut to 15 characters.
 */
export function defaultWorkstation(name = hostname()): string {
  return (name.split('.')[0] ?? '').toUpperCase().slice(0, 15);
}
