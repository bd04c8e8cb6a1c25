import { isIP } from 'node:net';

/** HOST:PORT, the host in brackets when it is an IPv6 address: how URLs, CONNECT and logs write one. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT` taken apart (the port as written, if any), or
 * what stops it being one: brackets around something else, or more than one ":" outside
 * brackets (an IPv6 address must be bracketed wherever a port may follow). Callers word the
 * problem for their own setting; whether a port or a host is required is theirs to say too.
 */
export interface HostPortParts {
  host: string;
  port: string | undefined;
  bracketed: boolean;
}

export type HostPortProblem = { problem: 'brackets' } | { problem: 'not-ipv6'; inside: string } | { problem: 'colons' };

export function splitHostPort(text: string): HostPortParts | HostPortProblem {
  if (text.startsWith('[')) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
    if (!match) return { problem: 'brackets' };
    if (isIP(match[1]!) !== 6) return { problem: 'not-ipv6', inside: match[1]! };
    return { host: match[1]!, port: match[2], bracketed: true };
  }
  const [host, port, ...more] = text.split(':');
  if (more.length > 0) return { problem: 'colons' };
  return { host: host!, port, bracketed: false };
}

/** Whether a number is a port: whole, up to 65535, from 1 for a peer or from 0 for a listener (0: any free port). */
export function isPort(n: number, lowest: 0 | 1 = 1): boolean {
  return Number.isInteger(n) && n >= lowest && n <= 65535;
}

/** A port as written: decimal digits only, and a port by isPort; undefined when it is not one. */
export function readPort(text: string, lowest: 0 | 1 = 1): number | undefined {
  return /^\d+$/.test(text) && isPort(Number(text), lowest) ? Number(text) : undefined;
}
