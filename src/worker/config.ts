/** Everything the worker needs to run, as read from buildbot.tac. */
export interface WorkerConfig {
  basedir: string;
  workername: string;
  password: string;
  /** A connection string: connection_string=, or built from buildmaster_host/port/use_tls. */
  connection: string;
  proxyConnectionString?: string;
  /** Seconds between keepalives; 0 turns them off (create-worker's default is 600). */
  keepalive: number;
  umask?: number;
  /** Upper bound of the reconnect delay in seconds (create-worker's default is 300). */
  maxdelay: number;
  /** Failed connection attempts in a row before giving up; undefined retries forever. */
  maxretries?: number;
  numcpus?: number;
  allowShutdown?: 'signal' | 'file';
  deleteLeftoverDirs: boolean;
  protocol: 'pb';
  unicodeEncoding?: string;
  /** Log rotation; undefined means --no-logrotate. */
  logRotate?: { size: number; count: number | null };
}
