import { credentialSecrets, withProxyCredentials, type ProxyCredentials } from './proxy-credentials.js';
import { isPacString, parsePacString, type PacSource } from './pac-string.js';
import { parseProxyString, proxySecrets, type ProxyConfig } from './proxy-string.js';
import { redactCredentials } from './redact.js';

/**
 * What a `--proxy-connection-string` (a flag, a tac's proxy_connection_string, the relay's
 * --upstream-proxy) stands for: one proxy, or a PAC file that picks proxies per connection.
 * A union rather than a wider parseProxyString, so that code handed a ProxyConfig (the CONNECT
 * client, its tests) keeps knowing it holds exactly one proxy.
 */
export type ProxySetting = ProxyConfig | PacSource;

/** Parses any proxy string: `pac+…` is a PAC location, the rest goes to parseProxyString. */
export function parseProxySetting(s: string): ProxySetting {
  return isPacString(s) ? parsePacString(s) : parseProxyString(s);
}

export function isPacSource(setting: ProxySetting | undefined): setting is PacSource {
  return setting !== undefined && 'kind' in setting && setting.kind === 'pac';
}

/** The setting as messages show it: the PAC string as written (it carries no credentials), or the proxy's URL. */
export function describeProxySetting(setting: ProxySetting): string {
  return isPacSource(setting) ? setting.text : redactCredentials(setting.url);
}

/**
 * The setting with the environment's credentials (./proxy-credentials.ts) given to its proxy at
 * start-up, so that a bad combination fails then rather than at the first dial. A PAC location
 * is unchanged: its proxies get them as its answers name them.
 */
export function withSettingCredentials<S extends ProxySetting | undefined>(setting: S, credentials: ProxyCredentials | undefined): S {
  return setting === undefined || isPacSource(setting) ? setting : (withProxyCredentials(setting, credentials) as S);
}

/** The secrets a setting and the environment's credentials hold, for the scrubbers (a PAC location holds none). */
export function proxySettingSecrets(setting: ProxySetting | undefined, credentials?: ProxyCredentials): string[] {
  return [...(isPacSource(setting) ? [] : proxySecrets(setting)), ...credentialSecrets(credentials)];
}
