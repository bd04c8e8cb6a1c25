import type { Endpoint } from '../address/endpoint.js';
import { readProxyCredentials, type ProxyCredentials } from '../address/proxy-credentials.js';
import { proxySettingSecrets, withSettingCredentials, type ProxySetting } from '../address/proxy-setting.js';
import { redactCredentials } from '../address/redact.js';

/**
 * Everything the worker core needs to run, as read from `buildbot.tac` (see
 * `readTac` in ./tac/read.ts). Values are already checked and parsed: the
 * connection and proxy strings into the endpoint and proxy the worker dials,
 * numbers into range.
 */
export interface WorkerConfig {
  /** Absolute. Builds run in its subdirectories; the log is `basedir/twistd.log`. */
  basedir: string;
  workername: string;
  /** Never log it: see `loggableConfig`. */
  password: string;
  /** The master, parsed from `connection`: what the worker dials. */
  endpoint: Endpoint;
  /**
   * A Twisted client endpoint string: the tac's `connection_string`, or the one
   * buildbot-worker builds from `buildmaster_host`, `port` and `use_tls`
   * (`tcp:host=H:port=P` or `tls:host=H:port=P`). Kept as written for the log's
   * config line only; never parsed again.
   */
  connection: string;
  /** The proxy, parsed from `proxyConnectionString`; holds its password, so it is never logged. */
  proxy?: ProxySetting;
  /** BBGATE_PROXY_USER/PASSWORD(_FILE)/HASH from the worker's environment (see withEnvironmentCredentials); secrets, never logged. */
  proxyCredentials?: ProxyCredentials;
  /** As written in the tac: `tcp:HOST:PORT`, or bbgate's `http(s)://[USER:PASSWORD@]HOST:PORT`; may hold credentials. Shown only redacted. */
  proxyConnectionString?: string;
  /** Seconds between keepalives; 0 turns them off (buildbot-worker's None and 0 both mean off). */
  keepalive: number;
  /** The worker process's umask, 0 to 0o777; absent means 0o077 when daemonised (as twistd) and inherited in the foreground. */
  umask?: number;
  /** Upper bound of the reconnect delay, in seconds. */
  maxdelay: number;
  /** Give up after this many failed attempts in a row; absent (the tac's None or 0) means never. */
  maxretries?: number;
  /** Reported to the master as the number of CPUs; absent means the machine's count. */
  numcpus?: number;
  /** How the worker may ask the master for a graceful shutdown: SIGHUP, or touching `basedir/shutdown.stamp`. */
  allowShutdown?: 'signal' | 'file';
  /** Delete builder directories the master no longer uses, on connection. */
  deleteLeftoverDirs: boolean;
  /** Perspective Broker, or Buildbot's msgpack over WebSocket (the master's msgpack_experimental_v7 port). */
  protocol: WorkerProtocol;
  /** Buildbot 4.x's `path=`: the URL path of the master's msgpack endpoint (behind a reverse proxy); "/" without it. */
  msgpackPath?: string;
  /**
   * The tac's `usepty` (old tacs pass 0 or 1 to Worker; buildbot-worker 3.x only takes None):
   * whether shell steps run on a PTY when the master leaves it to the worker (usePTY
   * "slave-config", sent only to workers reporting commands older than 3.0).
   */
  usePTY: boolean;
  /**
   * The tac's `unicode_encoding`, as Python's canonical codec name (see
   * ../python/codec.ts): how command output and watched logfiles are decoded;
   * absent means UTF-8, Linux's filesystem encoding.
   */
  unicodeEncoding?: string;
  /**
   * The tac logs to the process's stdout or stderr (`FileLogObserver(sys.stdout).emit`,
   * `textFileLogObserver(sys.stdout)`), as container images' tacs do, instead of twistd.log.
   * Honoured by a foreground worker (`start --nodaemon`); a daemon's stdout is twistd.log.
   */
  logTo?: 'stdout' | 'stderr';
  /**
   * What the tac did to `os.environ` (the container tac deletes the variables
   * WORKER_ENVIRONMENT_BLACKLIST matches, WORKERPASS by default): applied to the
   * worker's environment at start, so build commands never see them.
   */
  environ?: EnvironmentChanges;
  /**
   * The tac's LogFile rotation: rotate `twistd.log` before a write once it has
   * `size` bytes (0: never), keeping `count` old files (null: all). Absent when
   * the tac has no LogFile block (`create-worker --no-logrotate`): twistd's own
   * log then applies, 1,000,000 bytes and every old file (see LOG_ROTATE_TWISTD).
   */
  logRotate?: { size: number; count: number | null };
}

/** Names the tac deleted from the environment, and the values it set. Values may be secret: logged by name only. */
export interface EnvironmentChanges {
  unset: string[];
  set: Record<string, string>;
}

export type WorkerProtocol = 'pb' | 'msgpack_experimental_v7';

/** Why a ws:// or wss:// string cannot carry msgpack: bbgate makes that upgrade itself, to the master's msgpack port. */
export const msgpackOverWsUrl =
  "msgpack_experimental_v7 is itself a WebSocket protocol: give the master's msgpack port as tcp:HOST:PORT (or tls:…, or buildmaster_host and port), not as a ws:// or wss:// URL, which is for a bbgate relay's PB listener";

export const DEFAULT_KEEPALIVE = 600;
export const DEFAULT_MAXDELAY = 300;
export const DEFAULT_LOG_ROTATE = { size: 10_000_000, count: 10 } as const;
/** twistd's own log file, used when the tac has no LogFile block. */
export const LOG_ROTATE_TWISTD = { size: 1_000_000, count: null } as const;

/** The config as it may appear in a log line: no password, proxy credentials masked. */
export function loggableConfig(config: WorkerConfig): Record<string, unknown> {
  const { password: _password, endpoint: _endpoint, proxy: _proxy, proxyCredentials: _credentials, proxyConnectionString, environ, ...rest } = config;
  return {
    ...rest,
    ...(proxyConnectionString !== undefined ? { proxyConnectionString: redactCredentials(proxyConnectionString) } : {}),
    ...(environ ? { environ: { unset: environ.unset, set: Object.keys(environ.set) } } : {}),
  };
}

/** The secret strings of a config, for the log's last line of defence (see ../redact.ts). */
export function configSecrets(config: WorkerConfig): string[] {
  return [config.password, ...proxySettingSecrets(config.proxy, config.proxyCredentials)];
}

/**
 * The tac's config with the proxy credentials of the worker's environment, read once at
 * start-up: given to the tac's proxy now, kept for the proxies the environment or a PAC file
 * names. Throws PROXY_CREDENTIALS.
 */
export function withEnvironmentCredentials(config: WorkerConfig, env: NodeJS.ProcessEnv): WorkerConfig {
  const proxyCredentials = readProxyCredentials(env);
  if (proxyCredentials.password === undefined) return config;
  return { ...config, ...(config.proxy ? { proxy: withSettingCredentials(config.proxy, proxyCredentials) } : {}), proxyCredentials };
}
