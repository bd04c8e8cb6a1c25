import { reprText } from '../python/repr.js';

/**
 * What `create-worker` puts in a buildbot.tac. Fields typed `string` that say
 * "Python source" are written as they are and must already be valid Python
 * (see `pythonCount` and `pythonUmask` in src/cli/create-worker.ts): keeping the
 * user's spelling (`0o22`, `None`) keeps the tac identical to buildbot-worker's.
 */
export interface TacSettings {
  /** Absolute, or `.` for a relocatable tac. */
  basedir: string;
  /** Without it the tac has no LogFile block and twistd's own log rotation applies. */
  logRotate: boolean;
  logSize: number;
  /** Python source: an int or None. */
  logCount: string;
  /** Where the master is: buildbot-worker's host and port, or (bbgate) a whole connection string. */
  master: { host: string; port: number } | { connectionString: string };
  workername: string;
  password: string;
  keepalive: number;
  /** Python source: an int or None. */
  umask: string;
  maxdelay: number;
  /** Python source: an int or None. */
  numcpus: string;
  allowShutdown?: 'signal' | 'file';
  /** Python source: an int or None. */
  maxretries: string;
  useTls: boolean;
  deleteLeftoverDirs: boolean;
  proxyConnectionString?: string;
  protocol: string;
}

const HEADER = `
import os

from buildbot_worker.bot import Worker
from twisted.application import service
`;

const RELOCATABLE_AND_APPLICATION = `
# if this is a relocatable tac file, get the directory containing the TAC
if basedir == '.':
    import os.path
    basedir = os.path.abspath(os.path.dirname(__file__))

# note: this line is matched against to check that this is a worker
# directory; do not edit it.
application = service.Application('buildbot-worker')
`;

const LOG_FILE = `
from twisted.python.logfile import LogFile
from twisted.python.log import ILogObserver, FileLogObserver
logfile = LogFile.fromFullPath(
    os.path.join(basedir, "twistd.log"), rotateLength=rotateLength,
    maxRotatedFiles=maxRotatedFiles)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)
`;

/**
 * The tac buildbot-worker 3.7's create-worker writes, with the same text for
 * the same settings, except that every value is valid Python (it pastes
 * `--umask` and `--proxy-connection-string` unquoted) and that a connection
 * string is written as the Buildbot documentation tells users to edit it in:
 * host and port None, `connection_string` passed to Worker.
 */
export function renderTac(s: TacSettings): string {
  const m = s.master;
  const viaString = 'connectionString' in m;
  const where = viaString
    ? `buildmaster_host = None\nport = None\nconnection_string = ${reprText(m.connectionString)}\n`
    : `buildmaster_host = ${reprText(m.host)}\nport = ${m.port}\n`;
  return [
    HEADER,
    `\nbasedir = ${reprText(s.basedir)}\nrotateLength = ${s.logSize}\nmaxRotatedFiles = ${s.logCount}\n`,
    RELOCATABLE_AND_APPLICATION,
    s.logRotate ? LOG_FILE : '',
    '\n',
    where,
    `workername = ${reprText(s.workername)}\n`,
    `passwd = ${reprText(s.password)}\n`,
    `keepalive = ${s.keepalive}\n`,
    `umask = ${s.umask}\n`,
    `maxdelay = ${s.maxdelay}\n`,
    `numcpus = ${s.numcpus}\n`,
    `allow_shutdown = ${s.allowShutdown === undefined ? 'None' : reprText(s.allowShutdown)}\n`,
    `maxretries = ${s.maxretries}\n`,
    `use_tls = ${s.useTls ? 1 : 0}\n`,
    `delete_leftover_dirs = ${s.deleteLeftoverDirs ? 1 : 0}\n`,
    `proxy_connection_string = ${s.proxyConnectionString === undefined ? 'None' : reprText(s.proxyConnectionString)}\n`,
    `protocol = ${reprText(s.protocol)}\n`,
    `
s = Worker(buildmaster_host, port, workername, passwd, basedir,
           keepalive, umask=umask, maxdelay=maxdelay,
           numcpus=numcpus, allow_shutdown=allow_shutdown,
           maxRetries=maxretries, protocol=protocol, useTls=use_tls,
           delete_leftover_dirs=delete_leftover_dirs,
           proxy_connection_string=proxy_connection_string${viaString ? ',\n           connection_string=connection_string' : ''})
s.setServiceParent(application)
`,
  ].join('');
}
