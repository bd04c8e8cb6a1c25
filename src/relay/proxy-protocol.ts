/**
 * The PROXY protocol, both ways. Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 * - Written: the v2 header the relay sends first on the master leg (--proxy-protocol), so that
 *   what listens there (haproxy, or a Twisted service on a `haproxy:tcp:PORT` endpoint) sees the
 *   worker's address instead of the relay's.
 * - Read: the v1 or v2 header a load balancer the listener trusts (proxyFrom=) sends first, so
 *   that the allow-list and the logs see the worker's address instead of the load balancer's.
 */
import { isIP, type Socket } from 'node:net';
import { BbgateError } from '../errors.js';
import { hostPort } from '../address/host-port.js';
import type { AddressSet } from './policy.js';

// ---------------------------------------------------------------------------------------------
// Writing

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

// ---------------------------------------------------------------------------------------------
// Reading

/** What a load balancer's header says: where the client came from and went to, or nothing (LOCAL, UNKNOWN, AF_UNSPEC). */
export type ProxyHeader =
  | { version: 1 | 2; command: 'proxy'; source: SocketAddress; destination: SocketAddress }
  | { version: 1 | 2; command: 'local' };

/**
 * A whole header and its length in bytes, or how many more bytes certainly belong to it (at
 * least 1): a reader that takes no more than that never takes a byte of the client's own.
 */
export type ProxyHeaderParse = { header: ProxyHeader; length: number } | { header?: undefined; need: number };

/** A header that is not one, or one the relay will not take; the connection is dropped for it. */
export class ProxyHeaderError extends BbgateError {
  constructor(message: string) {
    super('RELAY_HANDSHAKE', message);
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** "PROXY UNKNOWN\r\n": no header of either version is shorter. */
const V1_MIN = 15;
/** The spec's longest v1 line, CRLF included. */
const V1_MAX = 107;
const V2_FIXED = 16;
/** The spec's largest address block (two AF_UNIX paths); TLVs must fit in it as well. */
const V2_MAX_BODY = 216;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Reads a v1 or v2 header from the start of `received`, the bytes a connection has sent so far;
 * what follows the header is not looked at. Throws a ProxyHeaderError as soon as the bytes
 * cannot begin a header the relay accepts.
 */
export function parseProxyHeader(received: Buffer): ProxyHeaderParse {
  if (received.length === 0) return { need: V1_MIN };
  if (received[0] === SIGNATURE[0]) return parseV2(received);
  if (received[0] === V1_PREFIX[0]) return parseV1(received);
  throw notAHeader();
}

function notAHeader(): ProxyHeaderError {
  return new ProxyHeaderError('not a PROXY protocol header: it begins with neither "PROXY " (v1) nor the v2 signature');
}

function startsLike(received: Buffer, prefix: Buffer): boolean {
  const n = Math.min(received.length, prefix.length);
  return received.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(received: Buffer): ProxyHeaderParse {
  if (!startsLike(received, V1_PREFIX)) throw notAHeader();
  const malformed = (problem: string) => new ProxyHeaderError(`malformed PROXY v1 header: ${problem}`);
  let end = -1;
  // Checked as it arrives, so that binary garbage fails at its first byte rather than at 107.
  for (let i = 0; i < Math.min(received.length, V1_MAX) && end < 0; i++) {
    const byte = received[i]!;
    if (byte === CR) {
      if (i + 1 < received.length && received[i + 1] !== LF) throw malformed('a CR not followed by LF');
    } else if (byte === LF) {
      if (received[i - 1] !== CR) throw malformed('a line that ends in LF without CR');
      end = i - 1;
    } else if (byte < 0x20 || byte > 0x7e) {
      throw malformed(`byte 0x${byte.toString(16).padStart(2, '0')} in the line`);
    }
  }
  if (end < 0) {
    if (received.length >= V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} bytes`);
    return { need: Math.max(1, V1_MIN - received.length) };
  }
  const length = end + 2;
  const [, protocol = '', ...fields] = received.toString('latin1', 0, end).split(' ');
  // The spec lets UNKNOWN carry anything up to the CRLF, to be ignored with it.
  if (protocol === 'UNKNOWN') return { header: { version: 1, command: 'local' }, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') throw new ProxyHeaderError(`PROXY v1 header for protocol ${JSON.stringify(protocol)} (TCP4, TCP6 and UNKNOWN are known)`);
  const [source, destination, sourcePort, destinationPort] = fields;
  if (fields.length !== 4) throw malformed(`${protocol} takes a source and destination address and port, separated by single spaces`);
  const family = protocol === 'TCP4' ? 4 : 6;
  const endpoint = (address: string | undefined, port: string | undefined): SocketAddress => {
    if (isIP(address ?? '') !== family || address!.includes('%')) throw malformed(`${JSON.stringify(address)} is not an IPv${family} address`);
    if (!/^\d{1,5}$/.test(port ?? '') || Number(port) > 0xffff) throw malformed(`${JSON.stringify(port)} is not a port`);
    return { address: family === 4 ? address! : ipv6Text(ipv6Bytes(address!)), port: Number(port) };
  };
  return { header: { version: 1, command: 'proxy', source: endpoint(source, sourcePort), destination: endpoint(destination, destinationPort) }, length };
}

function parseV2(received: Buffer): ProxyHeaderParse {
  if (!startsLike(received, SIGNATURE)) throw notAHeader();
  if (received.length < V2_FIXED) return { need: V2_FIXED - received.length };
  const version = received[12]! >> 4;
  const command = received[12]! & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`PROXY header of version ${version} after the v2 signature (only 2 is defined)`);
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) throw new ProxyHeaderError(`PROXY v2 header with command ${command} (0, LOCAL, and 1, PROXY, are defined)`);
  const bodyLength = received.readUInt16BE(14);
  if (bodyLength > V2_MAX_BODY) throw new ProxyHeaderError(`PROXY v2 header of ${V2_FIXED + bodyLength} bytes (at most ${V2_FIXED + V2_MAX_BODY})`);
  const length = V2_FIXED + bodyLength;
  if (received.length < length) return { need: length - received.length };
  // LOCAL is the load balancer's own connection (a health check): any addresses in it mean nothing.
  if (command === COMMAND_LOCAL) return { header: { version: 2, command: 'local' }, length };
  const family = received[13]!;
  const layout = V2_ADDRESSES[family];
  if (!layout) {
    // AF_UNSPEC: the spec lets the receiver go on with the connection's own addresses.
    if (family >> 4 === 0) return { header: { version: 2, command: 'local' }, length };
    throw new ProxyHeaderError(`PROXY v2 header for address family and transport 0x${family.toString(16).padStart(2, '0')} (TCP over IPv4 or IPv6 only)`);
  }
  // Source address, destination address, source port, destination port.
  const size = layout.bytes;
  if (bodyLength < 2 * size + 4) throw new ProxyHeaderError(`malformed PROXY v2 header: ${bodyLength} address bytes where ${2 * size + 4} are needed`);
  const body = received.subarray(V2_FIXED, length);
  return {
    header: {
      version: 2,
      command: 'proxy',
      source: { address: layout.text(body.subarray(0, size)), port: body.readUInt16BE(2 * size) },
      destination: { address: layout.text(body.subarray(size, 2 * size)), port: body.readUInt16BE(2 * size + 2) },
    },
    length,
  };
}

/** The address blocks of the two families v2 defines for TCP: how long an address is, and how it is written. */
const V2_ADDRESSES: Record<number, { bytes: number; text(bytes: Buffer): string }> = {
  [TCP_OVER_IPV4]: { bytes: 4, text: (b) => ipv4Text(b) },
  [TCP_OVER_IPV6]: { bytes: 16, text: (b) => ipv6Text(b) },
};

function ipv4Text(bytes: Buffer): string {
  return [...bytes].join('.');
}

/** RFC 5952's form (what Node reports for sockets): lower case, the longest run of zero groups as "::", mapped IPv4 dotted. */
function ipv6Text(bytes: Buffer): string {
  if (MAPPED_PREFIX.equals(bytes.subarray(0, 12))) return `::ffff:${ipv4Text(bytes.subarray(12))}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return best.start < 0 ? hex(0, 8) : `${hex(0, best.start)}::${hex(best.start + best.length, 8)}`;
}

/**
 * Takes a PROXY header off `socket` and nothing after it: the client's own bytes stay in the
 * socket's buffer, for whoever reads next (TLS, HTTP, PB) to find as they came. Rejects with a
 * ProxyHeaderError when the header is malformed, or not whole within `timeoutMs`, or the
 * connection ends first.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let need = V1_MIN;
    const finish = (outcome: ProxyHeader | Error) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    // 'readable' and read(n), not 'data': the stream hands over no more than asked for, and once
    // the listener is gone it is back as new, so the next reader's 'data' listener starts it.
    const onReadable = () => {
      try {
        while (socket.readableLength > 0) {
          const chunk = socket.read(Math.min(need, socket.readableLength)) as Buffer | null;
          if (chunk === null) break;
          received = Buffer.concat([received, chunk]);
          const parsed = parseProxyHeader(received);
          if (parsed.header) return finish(parsed.header);
          need = parsed.need;
        }
      } catch (err) {
        return finish(err as Error);
      }
      // At the end of the stream this is the read that lets 'end' be emitted.
      socket.read(0);
    };
    const onEnd = () => finish(new ProxyHeaderError(`the connection ended after ${received.length} bytes, before a whole PROXY header`));
    const timer = setTimeout(() => finish(new ProxyHeaderError(`no whole PROXY header within ${timeoutMs} ms (${received.length} bytes came)`)), timeoutMs);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  });
}

/** What a trusted load balancer's header announced, by the raw socket it came on. */
const announced = new WeakMap<Socket, { source: SocketAddress; destination: SocketAddress }>();

/** The client's address and the one it connected to: as its load balancer announced them, or the socket's own. */
export function connectionAddresses(socket: Socket): { remote: SocketAddress; local: SocketAddress } {
  // A TLS server wraps the raw socket the header came on; Node keeps that one as _parent.
  const header = announced.get((socket as Socket & { _parent?: Socket })._parent ?? socket) ?? announced.get(socket);
  if (header) return { remote: header.source, local: header.destination };
  return {
    remote: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
  };
}


/**
 * A listener's door (proxyFrom=): a connection from a `trusted` load balancer must open with a
 * PROXY header, which is taken off before `next` gets the socket; one that does not is
 * destroyed and reported to `failed` with the load balancer's address. Every other connection
 * goes to `next` at once, untouched: its bytes are the client's, whatever they look like.
 */
export function proxyHeaderGate(
  trusted: AddressSet | undefined,
  timeoutMs: number,
  failed: (peer: string, err: Error) => void,
): (socket: Socket, next: (socket: Socket) => void) => void {
  return (socket, next) => {
    if (!trusted?.has(socket.remoteAddress ?? '')) return next(socket);
    const { address, port } = connectionAddresses(socket).remote;
    const peer = hostPort(address, port);
    readProxyHeader(socket, timeoutMs).then(
      (header) => {
        if (header.command === 'proxy') announced.set(socket, header);
        next(socket);
      },
      (err: Error) => {
        socket.destroy();
        failed(peer, err);
      },
    );
  };
}
