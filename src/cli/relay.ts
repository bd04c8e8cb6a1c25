// `bbgate relay`: runs the PB-aware relay in the foreground (systemd, a
// container), logging JSON lines to stdout (readable lines on a terminal).
import { readFileSync } from 'node:fs';
import { BbgateError } from '../errors.js';
import { readProxyCredentials } from '../address/proxy-credentials.js';
import { proxySettingSecrets, withSettingCredentials } from '../address/proxy-setting.js';
import { configError, resolveRelayConfig, type RelaySettings } from '../relay/config.js';
import { Relay } from '../relay/relay.js';
import { jsonLogger, type Logger } from '../worker/log/logger.js';
import { formatLogLine } from '../worker/log/pretty.js';
import { parseCommand, report } from './common.js';

export const RELAY_USAGE = `Usage: bbgate relay [--config relay.json] [options]

Accepts workers on a DMZ host and relays each to the Buildbot master, after
reading its PB login: a worker not on the allow-list is refused there, and
the master never hears of it. Runs in the foreground; SIGTERM drains.

Options (each overrides the same setting in --config):
  --config FILE            JSON settings: listen, upstream, upstreamProxy, allow,
                           metrics, maxConnections, maxPerSource, maxPerWorker, handshakeTimeout,
                           loginTimeout, idleTimeout, keepalive, drainTimeout, proxyProtocol,
                           environmentProxy
  --listen ADDR            where workers connect (repeatable):
                             tcp:PORT[:interface=IP]
                             tls:PORT:certKey=PEM[:privateKey=PEM][:extraCertChain=PEM]
                                 [:caCertsDir=DIR (require client certificates)
                                 [:certNames=1 (log in only as a name the certificate carries)]]
                                 [:interface=IP]
                             ws://HOST:PORT/PATH
                             wss://HOST:PORT/PATH#certKey=PEM&privateKey=PEM[&caCertsDir=DIR[&certNames=1]]
                           behind a load balancer that sends PROXY headers, add :proxyFrom=CIDR,...
                           (tcp:, tls:) or proxyFrom=CIDR,... after the # (ws://, wss://): connections
                           from those addresses must start with one, and its source is the worker's
  --upstream CONN          the master's worker port, as a worker's connection string
                           (tcp:HOST:PORT, tls:HOST:PORT:trustRoots=DIR, ...)
  --upstream-proxy P       reach the master through this HTTP proxy (CONNECT), or the
                           proxies a PAC file names: pac+file:///PATH, pac+http(s)://URL
  --no-env-proxy           ignore HTTPS_PROXY, ALL_PROXY and NO_PROXY toward the master
  --allow RULE             admit workers by name: NAME, a glob ('linux-*'), '*' for all,
                           optionally from some addresses only: 'win-*@10.1.0.0/16,10.2.0.5'
                           (repeatable; at least one is required)
  --metrics HOST:PORT      serve /metrics (Prometheus) and /healthz there
  --max-connections N      connections in total, handshakes included (default 1000)
  --max-per-source N       connections per source address, handshakes included
                           (default: a tenth of --max-connections, at least 2)
  --max-per-worker N       connections per worker name, logins awaiting the master's
                           verdict included (default 2)
  --handshake-timeout S    for a client to send its login, and for the master to greet (default 10)
  --login-timeout S        for the master to accept or refuse the password after that (default 60)
  --idle-timeout S         cut a connection silent both ways this long (default 1800; 0: never)
  --keepalive S            TCP keepalive on both legs (default 60; 0: off)
  --drain-timeout S        on SIGTERM, how long live connections may go on (default 30)
  --proxy-protocol         send a PROXY protocol v2 header to the master (for a master
                           listening on haproxy:tcp:PORT), so it sees the worker's address
  -h, --help               this text
`;

const OPTIONS = {
  config: { type: 'string' },
  listen: { type: 'string', multiple: true },
  upstream: { type: 'string' },
  'upstream-proxy': { type: 'string' },
  'no-env-proxy': { type: 'boolean' },
  allow: { type: 'string', multiple: true },
  metrics: { type: 'string' },
  'max-connections': { type: 'string' },
  'max-per-source': { type: 'string' },
  'max-per-worker': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'login-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  keepalive: { type: 'string' },
  'drain-timeout': { type: 'string' },
  'proxy-protocol': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runRelay(argv: string[]): Promise<number> {
  let relay: Relay;
  try {
    const { values, positionals } = parseCommand('relay', argv, OPTIONS);
    if (values.help) {
      process.stdout.write(RELAY_USAGE);
      return 0;
    }
    if (positionals.length) throw new BbgateError('USAGE', `relay takes no arguments, only options (got "${positionals[0]}")`);
    const settings: RelaySettings = { ...(values.config !== undefined ? readSettings(values.config) : {}) };
    const numbers = { maxConnections: 'max-connections', maxPerSource: 'max-per-source', maxPerWorker: 'max-per-worker', handshakeTimeout: 'handshake-timeout', loginTimeout: 'login-timeout', idleTimeout: 'idle-timeout', keepalive: 'keepalive', drainTimeout: 'drain-timeout' } as const;
    for (const [key, option] of Object.entries(numbers) as [keyof typeof numbers, (typeof numbers)[keyof typeof numbers]][]) {
      const text = values[option];
      if (text !== undefined) settings[key] = /^\s*$/.test(text) ? NaN : Number(text);
    }
    if (values.listen) settings.listen = values.listen;
    if (values.upstream !== undefined) settings.upstream = values.upstream;
    if (values['upstream-proxy'] !== undefined) settings.upstreamProxy = values['upstream-proxy'];
    if (values['no-env-proxy']) settings.environmentProxy = false;
    if (values.allow) settings.allow = values.allow;
    if (values.metrics !== undefined) settings.metrics = values.metrics;
    if (values['proxy-protocol']) settings.proxyProtocol = true;
    const resolved = resolveRelayConfig(settings);
    // BBGATE_PROXY_*, read once: the upstream proxy takes them now, the environment's or a PAC's per dial.
    const credentials = readProxyCredentials(process.env);
    const config = credentials.password === undefined
      ? resolved
      : { ...resolved, upstreamProxy: withSettingCredentials(resolved.upstreamProxy, credentials), upstreamProxyCredentials: credentials };
    relay = new Relay(config, relayLogger(proxySettingSecrets(config.upstreamProxy, config.upstreamProxyCredentials)));
    await relay.start();
  } catch (err) {
    return report(err, 'relay');
  }
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      // A second signal while draining cuts the remaining connections at once.
      void relay.drain(stopping ? 0 : undefined).then(() => resolve(0));
      if (!stopping) process.stderr.write(`bbgate relay: ${signal}: draining\n`);
      stopping = true;
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

function readSettings(path: string): RelaySettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(`cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // V8 quotes the text around the mistake, which may be a password: only what it expected is kept.
    throw configError(`${path} is not valid JSON: ${(err as Error).message.replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw configError(`${path} must hold a JSON object of settings`);
  return parsed as RelaySettings;
}

/** JSON lines on stdout (readable ones on a terminal), with the upstream proxy's password scrubbed. */
function relayLogger(secrets: string[]): Logger {
  const pretty = process.stdout.isTTY;
  return jsonLogger((line) => process.stdout.write(pretty ? formatLogLine(line) : line), secrets);
}
