import { parseEndpoint } from '../address/connection-string.js';
import type { Endpoint } from '../address/endpoint.js';
import { hostPort, readPort, splitHostPort } from '../address/host-port.js';
import { parseListenerString, type ListenerSpec } from '../address/listener.js';
import type { ProxyCredentials } from '../address/proxy-credentials.js';
import { parseProxySetting, type ProxySetting } from '../address/proxy-setting.js';
import { EndpointSyntaxError } from '../address/syntax-error.js';
import { isWebSocketUrl } from '../address/websocket-url.js';
import { BbgateError } from '../errors.js';
import { AddressSet, parseAllowRule, type AllowRule } from './policy.js';

export type { ListenerSpec } from '../address/listener.js';

export interface RelayConfig {
  listen: ListenerSpec[];
  /** The master, as a connection string (what the worker would have used). */
  upstream: Endpoint;
  upstreamText: string;
  upstreamProxy?: ProxySetting;
  /** BBGATE_PROXY_USER/PASSWORD(_FILE)/HASH from the relay's environment, for upstream proxies whose string lacks credentials; never logged. */
  upstreamProxyCredentials?: ProxyCredentials;
  /** Let HTTPS_PROXY/ALL_PROXY/NO_PROXY choose a proxy toward the master when none is given. */
  environmentProxy: boolean;
  allow: AllowRule[];
  metrics?: { host: string; port: number };
  maxConnections: number;
  /** Raw connections per source address (a trusted load balancer's PROXY header names the source). */
  maxPerSource: number;
  maxPerWorker: number;
  /** Seconds; see DEFAULTS for why each is what it is. */
  handshakeTimeout: number;
  loginTimeout: number;
  idleTimeout: number;
  keepalive: number;
  drainTimeout: number;
  proxyProtocol: boolean;
}

/** The settings as a relay.json holds them; flags of the same meaning override them one by one. */
export interface RelaySettings {
  listen?: string[];
  upstream?: string;
  upstreamProxy?: string;
  environmentProxy?: boolean;
  allow?: (string | { name: string; from?: string[] })[];
  metrics?: string;
  maxConnections?: number;
  maxPerSource?: number;
  maxPerWorker?: number;
  handshakeTimeout?: number;
  loginTimeout?: number;
  idleTimeout?: number;
  keepalive?: number;
  drainTimeout?: number;
  proxyProtocol?: boolean;
}

export const SETTING_FLAGS: Record<keyof RelaySettings, string> = {
  listen: '--listen',
  upstream: '--upstream',
  upstreamProxy: '--upstream-proxy',
  environmentProxy: '--no-env-proxy',
  allow: '--allow',
  metrics: '--metrics',
  maxConnections: '--max-connections',
  maxPerSource: '--max-per-source',
  maxPerWorker: '--max-per-worker',
  handshakeTimeout: '--handshake-timeout',
  loginTimeout: '--login-timeout',
  idleTimeout: '--idle-timeout',
  keepalive: '--keepalive',
  drainTimeout: '--drain-timeout',
  proxyProtocol: '--proxy-protocol',
};

const DEFAULTS = {
  maxConnections: 1000,
  // Two, not one: a worker whose old connection a NAT dropped silently reconnects
  // before the relay notices the old one is dead, and must not be refused for it.
  maxPerWorker: 2,
  handshakeTimeout: 10,
  // A busy master attaches a worker (its info, its builders) before it answers the password.
  loginTimeout: 60,
  // Three of buildbot-worker's default 600 s keepalives: only a dead connection is this quiet.
  idleTimeout: 1800,
  keepalive: 60,
  drainTimeout: 30,
};

/**
 * A tenth of --max-connections (100 at the default 1000), so that no one address can take more
 * than a tenth of the relay, yet a site whose workers all come through one NAT or HTTP proxy
 * (50 workers, each with a reconnect in flight) fits; at least 2, as for maxPerWorker.
 */
export function defaultMaxPerSource(maxConnections: number): number {
  return Math.max(2, Math.ceil(maxConnections / 10));
}

export function configError(message: string): BbgateError {
  return new BbgateError('RELAY_CONFIG', message);
}

/** Checks every setting and resolves defaults; throws RELAY_CONFIG naming the setting, before anything listens. */
export function resolveRelayConfig(settings: RelaySettings): RelayConfig {
  for (const key of Object.keys(settings)) {
    if (!Object.hasOwn(SETTING_FLAGS, key)) {
      throw configError(`unknown setting "${key}" (known: ${Object.keys(SETTING_FLAGS).join(', ')})`);
    }
  }
  for (const key of ['upstream', 'upstreamProxy', 'metrics'] as const) {
    // Only the type is named: the value may be a proxy URL with its password.
    if (settings[key] !== undefined && typeof settings[key] !== 'string') throw configError(`${label(key)} must be a string, not ${shapeOf(settings[key])}`);
  }
  for (const key of ['listen', 'allow'] as const) {
    if (settings[key] !== undefined && !Array.isArray(settings[key])) throw configError(`${label(key)} must be a list, not ${JSON.stringify(settings[key])}`);
  }
  const listen = settings.listen ?? [];
  if (!listen.every((l) => typeof l === 'string')) throw configError(`${label('listen')}: each listener is a string such as "tcp:9989"`);
  if (listen.length === 0) throw configError('no listener: give at least one --listen (such as tcp:9989)');
  if (settings.upstream === undefined) throw configError('no upstream: give --upstream with the master\'s connection string (such as tcp:master.internal:9989)');
  const allow = (settings.allow ?? []).map(allowRule);
  if (allow.length === 0) {
    throw configError('no --allow rule: the relay admits only the workers it is told to (--allow NAME, --allow \'linux-*\', or --allow \'*\' for every worker)');
  }
  const listeners = listen.map(parseListener);
  const names = new Set<string>();
  for (const l of listeners.filter((l) => l.port !== 0)) {
    const where = hostPort(l.host ?? '*', l.port);
    if (names.has(where)) throw configError(`two listeners on ${where}`);
    names.add(where);
  }
  const maxConnections = count('maxConnections', settings.maxConnections, DEFAULTS.maxConnections, 1);
  return {
    listen: listeners,
    upstream: wrap('upstream', () => parseEndpoint(settings.upstream!)),
    upstreamText: settings.upstream,
    ...(settings.upstreamProxy !== undefined ? { upstreamProxy: wrap('upstreamProxy', () => parseProxySetting(settings.upstreamProxy!)) } : {}),
    environmentProxy: flag('environmentProxy', settings.environmentProxy, true),
    allow,
    ...(settings.metrics !== undefined ? { metrics: parseHostPort('metrics', settings.metrics) } : {}),
    maxConnections,
    maxPerSource: count('maxPerSource', settings.maxPerSource, defaultMaxPerSource(maxConnections), 1),
    maxPerWorker: count('maxPerWorker', settings.maxPerWorker, DEFAULTS.maxPerWorker, 1),
    handshakeTimeout: seconds('handshakeTimeout', settings.handshakeTimeout, DEFAULTS.handshakeTimeout, false),
    loginTimeout: seconds('loginTimeout', settings.loginTimeout, DEFAULTS.loginTimeout, false),
    idleTimeout: seconds('idleTimeout', settings.idleTimeout, DEFAULTS.idleTimeout, true),
    keepalive: seconds('keepalive', settings.keepalive, DEFAULTS.keepalive, true),
    drainTimeout: seconds('drainTimeout', settings.drainTimeout, DEFAULTS.drainTimeout, true),
    proxyProtocol: flag('proxyProtocol', settings.proxyProtocol, false),
  };
}

/** A value as a message may name it when it may hold a password: the shape of a list or an object, not its contents. */
function shapeOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' && value !== null ? 'an object' : JSON.stringify(value);
}

function label(key: keyof RelaySettings): string {
  return `${key} (${SETTING_FLAGS[key]})`;
}

/** Another module's syntax error, prefixed with the setting it came from. */
function wrap<T>(key: keyof RelaySettings, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw configError(`${label(key)}: ${(err as Error).message}`);
  }
}

function allowRule(rule: unknown): AllowRule {
  if (typeof rule === 'string') return wrap('allow', () => parseAllowRule(rule));
  if (typeof rule === 'object' && rule !== null && typeof (rule as { name?: unknown }).name === 'string') {
    const { name, from, ...rest } = rule as { name: string; from?: unknown };
    if (Object.keys(rest).length) throw configError(`${label('allow')}: a rule has name and from, not ${Object.keys(rest).join(', ')}`);
    if (from !== undefined && !(Array.isArray(from) && from.every((f) => typeof f === 'string'))) {
      throw configError(`${label('allow')}: "from" of the rule for "${name}" must be a list of addresses or CIDRs`);
    }
    return { pattern: name, ...(from !== undefined ? { from: from as string[] } : {}) };
  }
  throw configError(`${label('allow')}: each rule is "NAME_OR_GLOB[@CIDR,...]" or {"name": ..., "from": [...]}, not ${JSON.stringify(rule)}`);
}

function count(key: keyof RelaySettings, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw configError(`${label(key)} must be a whole number of at least ${min}, not ${JSON.stringify(value)}`);
  }
  return value;
}

function seconds(key: keyof RelaySettings, value: unknown, fallback: number, zeroTurnsOff: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zeroTurnsOff && value === 0) || value > 86400 * 7) {
    throw configError(`${label(key)} must be a number of seconds${zeroTurnsOff ? ' (0 turns it off)' : ' above 0'}, not ${JSON.stringify(value)}`);
  }
  return value;
}

function flag(key: keyof RelaySettings, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw configError(`${label(key)} must be true or false, not ${JSON.stringify(value)}`);
  return value;
}

/** A local address to listen on: both parts required, port 0 picking a free one. */
function parseHostPort(key: keyof RelaySettings, text: string): { host: string; port: number } {
  const split = splitHostPort(text);
  const port = 'problem' in split || split.port === undefined ? undefined : readPort(split.port, 0);
  // A plain host holds no bracket: "[" or "]" there is a mistyped IPv6 address.
  if ('problem' in split || port === undefined || split.host === '' || (!split.bracketed && /[[\]]/.test(split.host))) {
    throw configError(`${label(key)} must be HOST:PORT (such as 127.0.0.1:9100 or [::1]:9100), not "${text}"`);
  }
  return { host: split.host, port };
}

/** A --listen string (see ../address/listener.ts), its problems worded as this setting's. */
export function parseListener(text: string): ListenerSpec {
  const fail = (problem: string) => configError(`${label('listen')} "${text}": ${problem}`);
  try {
    return parseListenerString(text, { fail, proxyFrom: (sources) => checkProxyFrom(sources, fail) });
  } catch (err) {
    if (!(err instanceof EndpointSyntaxError)) throw err;
    // As before the grammar moved: a syntax error's own message follows the setting's name.
    throw configError(`${label('listen')}${isWebSocketUrl(text) ? ' ' : ': '}${err.message}`);
  }
}

/** Checked here, so that a bad address is a configuration error naming its listener before anything listens. */
function checkProxyFrom(sources: string[], fail: (problem: string) => Error): void {
  new AddressSet(sources, (problem) => {
    throw fail(`proxyFrom: ${problem} (write proxyFrom=CIDR[,CIDR...], the load balancers' addresses)`);
  });
}
