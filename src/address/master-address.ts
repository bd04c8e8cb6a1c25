import { isIP } from 'node:net';
import { peerPort } from './fields.js';
import { splitHostPort, type HostPortProblem } from './host-port.js';
import { EndpointSyntaxError } from './syntax-error.js';
import { USER_INFO_PROBLEM } from './user-info.js';

// The master as buildbot-worker's create-worker takes it, MASTER[:PORT], and the connection
// string its Worker builds from buildmaster_host, port and use_tls.

/**
 * The connection string buildbot-worker builds from buildmaster_host, port
 * and use_tls: it escapes only the colons of the host (for IPv6), so this
 * does too, byte for byte.
 */
export function masterConnectionString(masterHost: string, port: number, useTls: boolean): string {
  return `${useTls ? 'tls' : 'tcp'}:host=${masterHost.replace(/:/g, '\\:')}:port=${port}`;
}

export interface MasterAddress {
  host: string;
  port: number;
}

const DEFAULT_MASTER_PORT = 9989;

/** The MASTER argument of `create-worker`: `HOST[:PORT]` or `[IPv6][:PORT]`, the port defaulting to 9989. */
export function parseMasterAddress(master: string): MasterAddress {
  if (master.includes('@')) throw new EndpointSyntaxError(master, USER_INFO_PROBLEM);
  if (/^https?:/i.test(master) || /^[a-z][a-z0-9+.-]*:\/\//i.test(master)) {
    throw new EndpointSyntaxError(master, `MASTER is not a URL: give HOST[:PORT], the master's PB port (default ${DEFAULT_MASTER_PORT}), not its web address`);
  }
  const split = splitHostPort(master);
  if ('problem' in split) throw masterProblem(master, split);
  if (split.host === '') throw new EndpointSyntaxError(master, `MASTER has no host (write HOST[:PORT], such as master.example.org:9989)`);
  return { host: split.host, port: peerPort(master, split.port) ?? DEFAULT_MASTER_PORT };
}

function masterProblem(master: string, split: HostPortProblem): EndpointSyntaxError {
  if (split.problem === 'brackets') return new EndpointSyntaxError(master, `a bracketed MASTER must be [IPv6] or [IPv6]:PORT, such as [fd00::1]:9989`);
  if (split.problem === 'not-ipv6') return new EndpointSyntaxError(master, `brackets hold an IPv6 address, and "${split.inside}" is not one`);
  const example = isIP(master) === 6 ? `[${master}]:${DEFAULT_MASTER_PORT}` : '[fd00::1]:9989';
  return new EndpointSyntaxError(master, `MASTER has more than one ":"; an IPv6 address must be in brackets, as in ${example}`);
}
