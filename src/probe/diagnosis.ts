import type { ErrorCode } from '../errors.js';

/**
 * Probe exit statuses by failure class. Fixed for every later step kind:
 * 0 ok, 1 usage or unparseable input, 2 network, 3 proxy, 4 TLS,
 * 5 authentication, 6 not a PB service / protocol error.
 */
export function exitStatusFor(code: ErrorCode | undefined): number {
  if (code === undefined) return 0;
  if (code === 'USAGE' || code === 'ENDPOINT_SYNTAX') return 1;
  if (code.startsWith('NET_')) return 2;
  if (code.startsWith('PROXY_')) return 3;
  if (code.startsWith('TLS_')) return 4;
  if (code === 'PB_UNAUTHORIZED' || code === 'PB_DUPLICATE_WORKER') return 5;
  return 6;
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  ENDPOINT_SYNTAX: 'write the connection string as tcp:HOST:PORT (or tcp:host=HOST:port=PORT); escape a ":" inside a value as "\\:"',
  NET_DNS: 'check the host name for typos, and that this machine\'s DNS resolves it (getent hosts HOST)',
  NET_REFUSED: 'nothing listens there: check that the master runs and which port its c[\'protocols\'][\'pb\'][\'port\'] names',
  NET_TIMEOUT: 'nothing answered: a firewall is probably dropping the packets, or the host is down; check firewall rules for this port on both sides',
  NET_UNREACHABLE: 'there is no route to that address: check the address and this machine\'s network',
  NET_RESET: 'the connection was cut: a firewall or middlebox may be resetting it',
  PB_NOT_PB: 'something answers on that port, but not Buildbot\'s PB protocol: use the worker port (c[\'protocols\'][\'pb\'][\'port\'], 9989 by default), not the web UI port',
  PB_DIALECT: 'the peer speaks a PB dialect bbgate does not know: check that it is a Buildbot master',
  PB_VERSION: 'the peer speaks another PB version: check that it is a Buildbot master',
  PB_PROTOCOL: 'the peer broke the PB protocol: check that it is a Buildbot master, and report this with the probe\'s --json output',
  PB_UNAUTHORIZED: 'the master knows no worker with this name and password: compare them with the worker.Worker(NAME, PASSWORD) entry in master.cfg (both are case-sensitive); the master does not say which of the two is wrong',
  PB_DUPLICATE_WORKER: 'a worker with this name is connected to the master right now: stop it first, or probe with another worker\'s name',
  PB_REMOTE_ERROR: 'the master failed the login with an error of its own: its twistd.log has the traceback',
  PB_CONNECTION_LOST: 'the master closed the connection: its twistd.log says why',
};

export function hintFor(code: ErrorCode): string | undefined {
  if (HINTS[code]) return HINTS[code];
  if (code.startsWith('BANANA_') || code.startsWith('JELLY_')) return HINTS.PB_PROTOCOL;
  return undefined;
}
