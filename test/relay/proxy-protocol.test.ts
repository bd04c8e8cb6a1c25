// PROXY protocol headers. Written (v2): exact bytes by hand, and every header read back by real
// Twisted's parser (what a master on haproxy:tcp:PORT runs) and by ours. Read (v1 and v2): the
// parser at the byte level, and the reader on real sockets, which must leave every byte after
// the header where the next reader finds it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { parseProxyHeader, proxyV2Header, readProxyHeader, type ProxyHeader, type SocketAddress } from '../../src/relay/proxy-protocol.js';
import { PY_DIR, PYTHON } from '../helpers/python.js';

interface TwistedAddress {
  type: 'IPv4Address' | 'IPv6Address';
  host: string;
  port: number;
}

interface TwistedParse {
  source?: TwistedAddress | null;
  destination?: TwistedAddress | null;
  rest?: string;
  error?: string;
}

function twistedParse(headers: Buffer[]): TwistedParse[] {
  const out = execFileSync(PYTHON, [PY_DIR + 'haproxy_parse.py', ...headers.map((h) => h.toString('hex'))], { encoding: 'utf8' });
  return out.trim().split('\n').map((line) => JSON.parse(line) as TwistedParse);
}

const SIGNATURE = '0d0a0d0a000d0a515549540a';
const at = (address: string, port: number): SocketAddress => ({ address, port });
const v4 = (host: string, port: number): TwistedAddress => ({ type: 'IPv4Address', host, port });
const v6 = (host: string, port: number): TwistedAddress => ({ type: 'IPv6Address', host, port });

const local = { command: 'local' } as const;
const cases: { name: string; source: SocketAddress | undefined; destination: SocketAddress | undefined; twisted: TwistedParse; ours: { command: 'local' } | { command: 'proxy'; source: SocketAddress; destination: SocketAddress } }[] = [
  {
    name: 'IPv4',
    source: at('192.0.2.7', 50123),
    destination: at('10.0.0.5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
    ours: { command: 'proxy', source: at('192.0.2.7', 50123), destination: at('10.0.0.5', 9989) },
  },
  {
    name: 'IPv6',
    source: at('2001:db8::1', 1),
    destination: at('2001:db8:0:1:2:3:4:5', 65535),
    twisted: { source: v6('2001:db8:0:0:0:0:0:1', 1), destination: v6('2001:db8:0:1:2:3:4:5', 65535), rest: '5042' },
    ours: { command: 'proxy', source: at('2001:db8::1', 1), destination: at('2001:db8:0:1:2:3:4:5', 65535) },
  },
  {
    name: 'IPv6 with :: at either end, and a zone that the header cannot carry',
    source: at('fe80::1%eth0', 40000),
    destination: at('::', 0),
    twisted: { source: v6('fe80:0:0:0:0:0:0:1', 40000), destination: v6('0:0:0:0:0:0:0:0', 0), rest: '5042' },
    ours: { command: 'proxy', source: at('fe80::1', 40000), destination: at('::', 0) },
  },
  {
    name: 'mixed: IPv4 source, IPv6 destination, both sent as IPv6',
    source: at('192.0.2.7', 50123),
    destination: at('2001:db8::9', 9989),
    twisted: { source: v6('0:0:0:0:0:ffff:c000:207', 50123), destination: v6('2001:db8:0:0:0:0:0:9', 9989), rest: '5042' },
    ours: { command: 'proxy', source: at('::ffff:192.0.2.7', 50123), destination: at('2001:db8::9', 9989) },
  },
  {
    name: 'IPv4-mapped pair (a dual-stack listener), sent as plain IPv4',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('::FFFF:a00:5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
    ours: { command: 'proxy', source: at('192.0.2.7', 50123), destination: at('10.0.0.5', 9989) },
  },
  {
    name: 'one mapped, one plain IPv4',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('10.0.0.5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
    ours: { command: 'proxy', source: at('192.0.2.7', 50123), destination: at('10.0.0.5', 9989) },
  },
  {
    name: 'mapped source with a real IPv6 destination keeps the mapped form',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('::1', 9989),
    twisted: { source: v6('0:0:0:0:0:ffff:c000:207', 50123), destination: v6('0:0:0:0:0:0:0:1', 9989), rest: '5042' },
    ours: { command: 'proxy', source: at('::ffff:192.0.2.7', 50123), destination: at('::1', 9989) },
  },
  { name: 'unknown source', source: undefined, destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' }, ours: local },
  { name: 'unknown destination', source: at('10.0.0.5', 9989), destination: undefined, twisted: { source: null, destination: null, rest: '5042' }, ours: local },
  { name: 'not an IP address', source: at('/run/relay.sock', 0), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' }, ours: local },
  { name: 'no port', source: at('192.0.2.7', NaN), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' }, ours: local },
  { name: 'port out of range', source: at('192.0.2.7', 65536), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' }, ours: local },
];

test('IPv4 header, byte by byte', () => {
  const header = proxyV2Header(at('192.0.2.7', 50123), at('10.0.0.5', 9989));
  assert.equal(
    header.toString('hex'),
    SIGNATURE +
      '21' + // version 2, PROXY
      '11' + // AF_INET, STREAM
      '000c' + // 12 address bytes follow
      'c0000207' + // 192.0.2.7
      '0a000005' + // 10.0.0.5
      'c3cb' + // 50123
      '2705', // 9989
  );
});

test('IPv6 and mixed headers, byte by byte', () => {
  assert.equal(
    proxyV2Header(at('2001:db8::1', 1), at('::ffff:10.0.0.5', 2)).toString('hex'),
    SIGNATURE + '21' + '21' + '0024' + '20010db8000000000000000000000001' + '00000000000000000000ffff0a000005' + '0001' + '0002',
  );
});

test('unknown addresses give a LOCAL header with no address block', () => {
  assert.equal(proxyV2Header(undefined, undefined).toString('hex'), SIGNATURE + '20' + '00' + '0000');
});

test('the length field always counts exactly the bytes after the 16-byte header', () => {
  for (const { name, source, destination } of cases) {
    const header = proxyV2Header(source, destination);
    assert.equal(header.readUInt16BE(14), header.length - 16, name);
  }
});

test("real Twisted's V2Parser reads every header as the worker's address", () => {
  const parsed = twistedParse(cases.map(({ source, destination }) => proxyV2Header(source, destination)));
  assert.equal(parsed.length, cases.length);
  cases.forEach(({ name, twisted }, i) => assert.deepEqual(parsed[i], twisted, name));
});

test('the oracle can fail: Twisted rejects a header with a broken signature', () => {
  const header = proxyV2Header(at('192.0.2.7', 1), at('10.0.0.5', 2));
  header[3] ^= 0xff;
  const [parsed] = twistedParse([header]);
  assert.match(parsed?.error ?? '', /InvalidProxyHeader/);
});

test('our parser reads every header we write back as what it says, to the byte', () => {
  for (const { name, source, destination, ours } of cases) {
    const header = proxyV2Header(source, destination);
    const parsed = parseProxyHeader(Buffer.concat([header, Buffer.from('PB')]));
    assert.deepEqual(parsed, { header: { version: 2, ...ours }, length: header.length }, name);
  }
});

describe('parseProxyHeader', () => {
  const v1 = (line: string) => Buffer.from(line, 'latin1');
  const proxy = (version: 1 | 2, source: SocketAddress, destination: SocketAddress): ProxyHeader => ({ version, command: 'proxy', source, destination });
  /** A v2 header by hand: version/command byte, family byte, body. */
  const v2 = (versionCommand: number, family: number, body: Buffer | number[]) => {
    const block = Buffer.from(body);
    const fixed = Buffer.from([versionCommand, family, block.length >> 8, block.length & 0xff]);
    return Buffer.concat([Buffer.from(SIGNATURE, 'hex'), fixed, block]);
  };
  const ipv4Block = [192, 0, 2, 7, 10, 0, 0, 5, 0xc3, 0xcb, 0x27, 0x05];
  const LONGEST_V1 = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;
  const rejects = (bytes: Buffer, message: RegExp) => assert.throws(() => parseProxyHeader(bytes), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'RELAY_HANDSHAKE');
    assert.match(err.message, message);
    return true;
  });

  const valid: { name: string; bytes: Buffer; header: ProxyHeader }[] = [
    { name: 'v1 TCP4', bytes: v1('PROXY TCP4 192.0.2.7 10.0.0.5 50123 9989\r\n'), header: proxy(1, at('192.0.2.7', 50123), at('10.0.0.5', 9989)) },
    { name: 'v1 TCP6, written loosely, read in RFC 5952 form', bytes: v1('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:192.0.2.7 1 65535\r\n'), header: proxy(1, at('2001:db8::1', 1), at('::ffff:192.0.2.7', 65535)) },
    { name: 'v1 UNKNOWN', bytes: v1('PROXY UNKNOWN\r\n'), header: { version: 1, command: 'local' } },
    { name: 'v1 UNKNOWN with the addresses it may carry, ignored', bytes: v1(LONGEST_V1), header: { version: 1, command: 'local' } },
    { name: 'v2 PROXY over IPv4', bytes: v2(0x21, 0x11, ipv4Block), header: proxy(2, at('192.0.2.7', 50123), at('10.0.0.5', 9989)) },
    {
      name: 'v2 PROXY over IPv4 with TLVs after the addresses, skipped',
      bytes: v2(0x21, 0x11, [...ipv4Block, 0x04, 0x00, 0x03, 0, 0, 0, 0x05, 0x00, 0x02, 0xab, 0xcd]),
      header: proxy(2, at('192.0.2.7', 50123), at('10.0.0.5', 9989)),
    },
    {
      name: 'v2 PROXY over IPv6, the first of two equal zero runs compressed',
      bytes: v2(0x21, 0x21, [...Buffer.from('20010db8000000000001000000000001', 'hex'), ...Buffer.from('00000000000000000000000000000001', 'hex'), 0, 1, 0, 2]),
      header: proxy(2, at('2001:db8::1:0:0:1', 1), at('::1', 2)),
    },
    { name: 'v2 LOCAL (a health check)', bytes: v2(0x20, 0x00, []), header: { version: 2, command: 'local' } },
    { name: 'v2 LOCAL with an address block, ignored', bytes: v2(0x20, 0x11, ipv4Block), header: { version: 2, command: 'local' } },
    { name: 'v2 PROXY with AF_UNSPEC', bytes: v2(0x21, 0x00, [1, 2, 3]), header: { version: 2, command: 'local' } },
    { name: 'v2 at the largest size accepted', bytes: v2(0x21, 0x11, [...ipv4Block, 0x04, 0x00, 216 - 15, ...new Array<number>(216 - 15).fill(0)]), header: proxy(2, at('192.0.2.7', 50123), at('10.0.0.5', 9989)) },
  ];

  test('reads v1 and v2 headers, and says where they end', () => {
    for (const { name, bytes, header } of valid) {
      assert.deepEqual(parseProxyHeader(bytes), { header, length: bytes.length }, name);
      assert.deepEqual(parseProxyHeader(Buffer.concat([bytes, Buffer.from('\0PB follows\r\n')])), { header, length: bytes.length }, `${name}, then the client's bytes`);
    }
    assert.equal(LONGEST_V1.length, 107);
  });

  test('fed one byte more at a time, asks only for bytes of the header, and finishes exactly at its end', () => {
    for (const { name, bytes, header } of valid) {
      const stream = Buffer.concat([bytes, Buffer.from('PROXY TCP4 6.6.6.6 6.6.6.6 6 6\r\n')]);
      for (let n = 0; n < bytes.length; n++) {
        const parsed = parseProxyHeader(stream.subarray(0, n));
        assert.equal(parsed.header, undefined, `${name}: complete after ${n} of ${bytes.length} bytes`);
        const need = (parsed as { need: number }).need;
        assert.ok(need >= 1 && n + need <= bytes.length, `${name}: after ${n} bytes asks for ${need} of ${bytes.length}`);
      }
      assert.deepEqual(parseProxyHeader(stream.subarray(0, bytes.length)), { header, length: bytes.length }, name);
    }
  });

  test('rejects what is not a PROXY header at its first wrong byte', () => {
    rejects(Buffer.from('GET /pb HTTP/1.1\r\n'), /not a PROXY protocol header/);
    // A worker's PB dialect offer, the first thing a direct client sends.
    rejects(Buffer.from([0x02, 0x80, 0x02, 0x82]), /not a PROXY protocol header/);
    rejects(v1('PROXZ'), /not a PROXY protocol header/);
    rejects(v1('proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), /not a PROXY protocol header/);
    const good = v2(0x21, 0x11, ipv4Block);
    for (let i = 1; i < 12; i++) {
      const bad = Buffer.from(good);
      bad[i]! ^= 0x40;
      rejects(bad.subarray(0, i + 1), /not a PROXY protocol header/);
    }
  });

  test('rejects headers longer than the spec allows, without waiting for more', () => {
    rejects(v1(LONGEST_V1.replace('PROXY UNKNOWN ', 'PROXY UNKNOWN  ')), /longer than 107 bytes/);
    rejects(v1(`PROXY TCP4 ${'1'.repeat(120)}`).subarray(0, 107), /longer than 107 bytes/);
    rejects(v2(0x21, 0x11, new Array<number>(217).fill(0)).subarray(0, 16), /PROXY v2 header of 233 bytes \(at most 232\)/);
    rejects(v2(0x21, 0x11, new Array<number>(0xffff).fill(0)).subarray(0, 16), /at most 232/);
  });

  test('rejects malformed and unsupported headers', () => {
    const bad: [string, Buffer, RegExp][] = [
      ['v1 without CR', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), /LF without CR/],
      ['v1 CR without LF', v1('PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n'), /CR not followed by LF/],
      ['v1 with a control byte', v1('PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n'), /byte 0x09/],
      ['v1 with a non-ASCII byte', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00e9\r\n', 'latin1'), /byte 0xe9/],
      ['v1 UDP4', v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol "UDP4"/],
      ['v1 with no protocol', v1('PROXY \r\n'), /protocol ""/],
      ['v1 TCP4 with an IPv6 address', v1('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), /"::1" is not an IPv4 address/],
      ['v1 TCP6 with an IPv4 address', v1('PROXY TCP6 ::1 5.6.7.8 1 2\r\n'), /"5.6.7.8" is not an IPv6 address/],
      ['v1 TCP6 with a zone', v1('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), /not an IPv6 address/],
      ['v1 with a port out of range', v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), /"65536" is not a port/],
      ['v1 with a signed port', v1('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'), /"\+1" is not a port/],
      ['v1 with a field missing', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /source and destination address and port/],
      ['v1 with two spaces', v1('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'), /source and destination address and port/],
      ['v2 with version 1', v2(0x11, 0x11, ipv4Block), /version 1 after the v2 signature/],
      ['v2 with command 2', v2(0x22, 0x11, ipv4Block), /command 2/],
      ['v2 over UDP', v2(0x21, 0x12, ipv4Block), /family and transport 0x12/],
      ['v2 over AF_UNIX', v2(0x21, 0x31, new Array<number>(216).fill(0)), /family and transport 0x31/],
      ['v2 IPv4 with too few address bytes', v2(0x21, 0x11, ipv4Block.slice(0, 8)), /8 address bytes where 12 are needed/],
      ['v2 IPv6 with too few address bytes', v2(0x21, 0x21, ipv4Block), /12 address bytes where 36 are needed/],
    ];
    for (const [name, bytes, message] of bad) assert.throws(() => parseProxyHeader(bytes), message, name);
  });

  test('an empty buffer asks for the shortest header there is', () => {
    assert.deepEqual(parseProxyHeader(Buffer.alloc(0)), { need: 15 });
  });
});

describe('readProxyHeader on a real socket', () => {
  let server: Server;
  const accepted: Socket[] = [];
  const waiting: ((s: Socket) => void)[] = [];

  after(() => {
    for (const s of accepted) s.destroy();
    server?.close();
  });

  /** A connected pair on loopback: the client's end, and the server's. */
  async function pair(): Promise<{ client: Socket; socket: Socket }> {
    if (!server) {
      server = createServer((s) => {
        accepted.push(s);
        waiting.shift()?.(s);
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    const socket = new Promise<Socket>((resolve) => waiting.push(resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'connect');
    return { client, socket: await socket };
  }

  /** Everything the socket delivers to a later 'data' reader until the client ends. */
  function rest(socket: Socket): Promise<Buffer> {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    return new Promise((resolve) => socket.on('end', () => resolve(Buffer.concat(chunks))));
  }

  const header = proxyV2Header(at('192.0.2.7', 50123), at('10.0.0.5', 9989));

  test('a header and the client\'s bytes in one write: the header is taken, every other byte is left', async () => {
    const { client, socket } = await pair();
    const payload = Buffer.alloc(200_000, 'x');
    payload.write('\r\n\r\n\0\r\nQUIT\n', 0, 'latin1');
    client.end(Buffer.concat([header, payload]));
    assert.deepEqual(await readProxyHeader(socket, 2000), { version: 2, command: 'proxy', source: at('192.0.2.7', 50123), destination: at('10.0.0.5', 9989) });
    assert.ok((await rest(socket)).equals(payload));
  });

  test('a header that arrives a byte at a time, with the client\'s bytes in its last packet', async () => {
    const { client, socket } = await pair();
    const line = Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n', 'latin1');
    const reading = readProxyHeader(socket, 5000);
    for (let i = 0; i < line.length - 1; i++) {
      client.write(line.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 2));
    }
    client.end(Buffer.concat([line.subarray(-1), Buffer.from('PB')]));
    assert.deepEqual(await reading, { version: 1, command: 'proxy', source: at('2001:db8::7', 40000), destination: at('2001:db8::1', 443) });
    assert.equal((await rest(socket)).toString(), 'PB');
  });

  test('a header with nothing after it yet: the next reader gets what comes later', async () => {
    const { client, socket } = await pair();
    client.write(proxyV2Header(undefined, undefined));
    assert.deepEqual(await readProxyHeader(socket, 2000), { version: 2, command: 'local' });
    const later = rest(socket);
    client.end('later');
    assert.equal((await later).toString(), 'later');
  });

  test('garbage is refused at once, silence at the timeout, and a connection that ends mid-header when it ends', async () => {
    const garbage = await pair();
    garbage.client.write('GET / HTTP/1.1\r\n\r\n');
    // Refused for what it is, with the connection still open: not left to the timeout, whose error differs.
    await assert.rejects(readProxyHeader(garbage.socket, 5000), /not a PROXY protocol header/);

    const silent = await pair();
    await assert.rejects(readProxyHeader(silent.socket, 300), /no whole PROXY header within 300 ms \(0 bytes came\)/);

    const cut = await pair();
    cut.client.end(header.subarray(0, 20));
    await assert.rejects(readProxyHeader(cut.socket, 5000), /the connection ended after 20 bytes, before a whole PROXY header/);
  });
});
