/**
 * The PROXY protocol v2 header the relay writes first on the master leg, so that what listens
 * there (haproxy, or a Twisted service on a `haproxy:tcp:PORT` endpoint) sees the worker's
 * address instead of the relay's.
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
import { isIP } from 'node:net';

export interface SocketAddress {
  address: string;
  port: number;
}

const SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const VERSION_2 = 0x20;
const COMMAND_LOCAL = 0x00;
const COMMAND_PROXY = 0x01;
const UNSPECIFIED = 0x00;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;

/**
 * Both addresses IPv4 (IPv4-mapped IPv6 counts as IPv4) → an AF_INET block; otherwise both as
 * IPv6, IPv4 in its mapped form. An address missing or not an IP, or a port outside 0-65535,
 * gives a LOCAL header: the master then sees the relay's own address, which is true, rather
 * than one the relay made up.
 */
export function proxyV2Header(source: SocketAddress | undefined, destination: SocketAddress | undefined): Buffer {
  const from = source && addressBytes(source);
  const to = destination && addressBytes(destination);
  if (!source || !destination || !from || !to) return header(COMMAND_LOCAL, UNSPECIFIED, Buffer.alloc(0));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(source.port, 0);
  ports.writeUInt16BE(destination.port, 2);
  if (from.length === 4 && to.length === 4) return header(COMMAND_PROXY, TCP_OVER_IPV4, Buffer.concat([from, to, ports]));
  return header(COMMAND_PROXY, TCP_OVER_IPV6, Buffer.concat([asIPv6(from), asIPv6(to), ports]));
}

function header(command: number, family: number, body: Buffer): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = VERSION_2 | command;
  fixed[1] = family;
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIGNATURE, fixed, body]);
}

/** 4 bytes for IPv4 (mapped IPv6 included), 16 for other IPv6, undefined when not expressible. */
function addressBytes({ address, port }: SocketAddress): Buffer | undefined {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) return undefined;
  switch (isIP(address)) {
    case 4:
      return ipv4Bytes(address);
    case 6: {
      const bytes = ipv6Bytes(address);
      return MAPPED_PREFIX.equals(bytes.subarray(0, 12)) ? bytes.subarray(12) : bytes;
    }
    default:
      return undefined;
  }
}

const MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function asIPv6(bytes: Buffer): Buffer {
  return bytes.length === 16 ? bytes : Buffer.concat([MAPPED_PREFIX, bytes]);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** `address` has passed isIP() as 6; a zone (`%eth0`) has no place in the header and is dropped. */
function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.replace(/%.*$/s, '').split('::');
  const groups = (part: string | undefined): number[] =>
    part
      ? part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(g);
          return [(a << 8) | b, (c << 8) | d];
        })
      : [];
  const before = groups(head);
  const after = groups(tail);
  const all = tail === undefined ? before : [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}
