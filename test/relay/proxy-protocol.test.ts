// PROXY protocol v2 headers: exact bytes by hand, and every header read back by real Twisted's
// parser (what a master on haproxy:tcp:PORT runs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { proxyV2Header, type SocketAddress } from '../../src/relay/proxy-protocol.js';
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

const cases: { name: string; source: SocketAddress | undefined; destination: SocketAddress | undefined; twisted: TwistedParse }[] = [
  {
    name: 'IPv4',
    source: at('192.0.2.7', 50123),
    destination: at('10.0.0.5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
  },
  {
    name: 'IPv6',
    source: at('2001:db8::1', 1),
    destination: at('2001:db8:0:1:2:3:4:5', 65535),
    twisted: { source: v6('2001:db8:0:0:0:0:0:1', 1), destination: v6('2001:db8:0:1:2:3:4:5', 65535), rest: '5042' },
  },
  {
    name: 'IPv6 with :: at either end, and a zone that the header cannot carry',
    source: at('fe80::1%eth0', 40000),
    destination: at('::', 0),
    twisted: { source: v6('fe80:0:0:0:0:0:0:1', 40000), destination: v6('0:0:0:0:0:0:0:0', 0), rest: '5042' },
  },
  {
    name: 'mixed: IPv4 source, IPv6 destination, both sent as IPv6',
    source: at('192.0.2.7', 50123),
    destination: at('2001:db8::9', 9989),
    twisted: { source: v6('0:0:0:0:0:ffff:c000:207', 50123), destination: v6('2001:db8:0:0:0:0:0:9', 9989), rest: '5042' },
  },
  {
    name: 'IPv4-mapped pair (a dual-stack listener), sent as plain IPv4',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('::FFFF:a00:5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
  },
  {
    name: 'one mapped, one plain IPv4',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('10.0.0.5', 9989),
    twisted: { source: v4('192.0.2.7', 50123), destination: v4('10.0.0.5', 9989), rest: '5042' },
  },
  {
    name: 'mapped source with a real IPv6 destination keeps the mapped form',
    source: at('::ffff:192.0.2.7', 50123),
    destination: at('::1', 9989),
    twisted: { source: v6('0:0:0:0:0:ffff:c000:207', 50123), destination: v6('0:0:0:0:0:0:0:1', 9989), rest: '5042' },
  },
  { name: 'unknown source', source: undefined, destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' } },
  { name: 'unknown destination', source: at('10.0.0.5', 9989), destination: undefined, twisted: { source: null, destination: null, rest: '5042' } },
  { name: 'not an IP address', source: at('/run/relay.sock', 0), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' } },
  { name: 'no port', source: at('192.0.2.7', NaN), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' } },
  { name: 'port out of range', source: at('192.0.2.7', 65536), destination: at('10.0.0.5', 9989), twisted: { source: null, destination: null, rest: '5042' } },
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
