// ws:// and wss:// connection strings: what they parse to, how they print, and every refusal with
// its exact message. The password of a URL with credentials must not appear in the error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatEndpoint, parseEndpoint } from '../../src/address/connection-string.js';
import type { WsEndpoint } from '../../src/address/endpoint.js';
import { EndpointSyntaxError } from '../../src/address/syntax-error.js';
import { webSocketUrl } from '../../src/address/websocket-url.js';

function ws(fields: Partial<Extract<WsEndpoint, { secure: false }>> & { host: string }): WsEndpoint {
  return { type: 'ws', secure: false, port: 80, path: '/', timeout: 30, ...fields };
}

function wss(fields: Partial<Extract<WsEndpoint, { secure: true }>> & { host: string }): WsEndpoint {
  return { type: 'ws', secure: true, port: 443, path: '/', timeout: 30, serverName: fields.host, verify: 'full', warnings: [], ...fields };
}

function rejects(description: string, message: string): void {
  assert.throws(
    () => parseEndpoint(description),
    (err: unknown) => {
      assert.ok(err instanceof EndpointSyntaxError, `not an EndpointSyntaxError: ${String(err)}`);
      assert.equal(err.code, 'ENDPOINT_SYNTAX');
      assert.equal(err.message, message);
      return true;
    },
    description,
  );
}

describe('parsing ws:// and wss:// URLs', () => {
  const examples: [string, WsEndpoint][] = [
    ['ws://relay.example.org/pb', ws({ host: 'relay.example.org', path: '/pb' })],
    ['wss://relay.example.org/pb', wss({ host: 'relay.example.org', path: '/pb' })],
    ['ws://relay.example.org', ws({ host: 'relay.example.org' })],
    ['wss://relay.example.org:8443', wss({ host: 'relay.example.org', port: 8443 })],
    ['WSS://Relay.Example.org/PB', wss({ host: 'Relay.Example.org', path: '/PB' })],
    ['ws://relay:443/pb', ws({ host: 'relay', port: 443, path: '/pb' })],
    ['ws://10.1.2.3:8080/a/b/', ws({ host: '10.1.2.3', port: 8080, path: '/a/b/' })],
    ['ws://[::1]:8080/pb', ws({ host: '::1', port: 8080, path: '/pb' })],
    ['wss://[fd00::1]/pb', wss({ host: 'fd00::1', path: '/pb' })],
    ['ws://relay/pb?team=build&x=%20', ws({ host: 'relay', path: '/pb?team=build&x=%20' })],
    ['ws://relay?team=build', ws({ host: 'relay', path: '/?team=build' })],
    ['ws://relay/pb#', ws({ host: 'relay', path: '/pb' })],
    ['ws://relay/pb#timeout=5&bindAddress=127.0.0.2', ws({ host: 'relay', path: '/pb', timeout: 5, bindAddress: '127.0.0.2' })],
    [
      'wss://relay.example.org/pb#trustRoots=/etc/bbgate/ca&certificate=/x.pem&privateKey=/y.pem&timeout=30',
      wss({ host: 'relay.example.org', path: '/pb', trustRoots: '/etc/bbgate/ca', certificate: '/x.pem', privateKey: '/y.pem' }),
    ],
    ['wss://relay/pb?a=1#trustRoots=/ca%20dir/a%26b%25%23', wss({ host: 'relay', path: '/pb?a=1', trustRoots: '/ca dir/a&b%#' })],
    ['wss://relay/#certificate=/both.pem', wss({ host: 'relay', certificate: '/both.pem' })],
    ['ws://bücher.example/pb', ws({ host: 'bücher.example', path: '/pb' })],
  ];
  for (const [description, expected] of examples) {
    it(description, () => assert.deepEqual(parseEndpoint(description), expected));
  }

  it('the URL the upgrade goes to leaves the fragment (bbgate\'s options) behind', () => {
    assert.equal(webSocketUrl(parseEndpoint('wss://relay/pb?a=1#trustRoots=/ca&timeout=3') as WsEndpoint), 'wss://relay:443/pb?a=1');
    assert.equal(webSocketUrl(parseEndpoint('ws://[::1]:8080/pb') as WsEndpoint), 'ws://[::1]:8080/pb');
  });
});

describe('formatting ws:// and wss:// endpoints', () => {
  it('spells out the port and every option, and parses back to the same endpoint', () => {
    assert.equal(formatEndpoint(parseEndpoint('ws://relay/pb')), 'ws://relay:80/pb#timeout=30');
    assert.equal(formatEndpoint(parseEndpoint('ws://[::1]:8080/pb#bindAddress=::1')), 'ws://[::1]:8080/pb#timeout=30&bindAddress=::1');
    assert.equal(
      formatEndpoint(parseEndpoint('wss://relay/pb?x=1#privateKey=/k&certificate=/c&trustRoots=/a%26b%25')),
      'wss://relay:443/pb?x=1#timeout=30&trustRoots=/a%26b%25&certificate=/c&privateKey=/k',
    );
  });

  it('round-trips every example, values needing escapes included', () => {
    const endpoints: WsEndpoint[] = [
      ws({ host: 'relay', path: '/pb' }),
      ws({ host: 'fd00::1', port: 1, path: '/?q=a&b=c', timeout: 86400, bindAddress: 'fd00::2' }),
      wss({ host: 'relay.example.org', port: 65535, path: '/a/b', trustRoots: '/ca dir/x&y=z#%\t', certificate: '/c', privateKey: '/k' }),
      wss({ host: '127.0.0.1', serverName: '127.0.0.1' }),
    ];
    for (const e of endpoints) assert.deepEqual(parseEndpoint(formatEndpoint(e)), e, JSON.stringify(e));
  });
});

describe('ws:// and wss:// error messages', () => {
  const cases: [string, string][] = [
    ['ws:///pb', '"ws:///pb": no host (write ws://HOST[:PORT]/PATH, or wss://HOST[:PORT]/PATH for TLS)'],
    ['ws://', '"ws://": no host (write ws://HOST[:PORT]/PATH, or wss://HOST[:PORT]/PATH for TLS)'],
    ['ws://relay:/pb', '"ws://relay:/pb": port must be a whole number from 1 to 65535, not ""'],
    ['ws://relay:0/pb', '"ws://relay:0/pb": port must be a whole number from 1 to 65535, not "0"'],
    ['ws://relay:65536/pb', '"ws://relay:65536/pb": port must be a whole number from 1 to 65535, not "65536"'],
    ['ws://relay:http/pb', '"ws://relay:http/pb": port must be a whole number from 1 to 65535, not "http"'],
    ['ws://::1/pb', '"ws://::1/pb": the host has more than one ":"; an IPv6 address must be in brackets, as in ws://[::1]/pb'],
    ['ws://a:1:2/pb', '"ws://a:1:2/pb": the host has more than one ":"; an IPv6 address must be in brackets, as in ws://[fd00::1]:8080/pb'],
    ['ws://[::1/pb', '"ws://[::1/pb": a bracketed host must be [IPv6] or [IPv6]:PORT, as in ws://[fd00::1]:8080/pb'],
    ['ws://[::1]x/pb', '"ws://[::1]x/pb": a bracketed host must be [IPv6] or [IPv6]:PORT, as in ws://[fd00::1]:8080/pb'],
    ['ws://[relay]/pb', '"ws://[relay]/pb": brackets hold an IPv6 address, and "relay" is not one'],
    ['ws://re lay/pb', '"ws://re lay/pb": "re lay" is not a host name or IP address'],
    ['ws://relay/a b', '"ws://relay/a b": the path holds a space or a character outside printable ASCII; percent-encode it (a space is %20)'],
    ['ws://relay/pb?q=ü', '"ws://relay/pb?q=ü": the path holds a space or a character outside printable ASCII; percent-encode it (a space is %20)'],
    ['ws://relay/pb#timeout', '"ws://relay/pb#timeout": "timeout" after "#" is not KEY=VALUE (bbgate\'s options go after "#" as key=value, joined by "&")'],
    ['ws://relay/pb#timeout=5&', '"ws://relay/pb#timeout=5&": an empty option after "#" (two "&" in a row, or one at the end)'],
    ['ws://relay/pb#timeout=', '"ws://relay/pb#timeout=": timeout= is empty (give a value or leave the key out)'],
    ['ws://relay/pb#timeout=5&timeout=6', '"ws://relay/pb#timeout=5&timeout=6": "timeout" is given twice'],
    ['ws://relay/pb#timeout=0', '"ws://relay/pb#timeout=0": timeout must be a whole number from 1 to 86400, not "0"'],
    ['ws://relay/pb#bindAddress=eth0', '"ws://relay/pb#bindAddress=eth0": bindAddress "eth0" is not an IP address'],
    ['ws://relay/pb#color=red', '"ws://relay/pb#color=red": unknown option "color" for ws:// (allowed after "#": timeout, bindAddress)'],
    [
      'ws://relay/pb#trustRoots=/ca',
      '"ws://relay/pb#trustRoots=/ca": unknown option "trustRoots" for ws:// (allowed after "#": timeout, bindAddress); trustRoots= is for TLS: write wss://',
    ],
    [
      'wss://relay/pb#trustroots=/ca',
      '"wss://relay/pb#trustroots=/ca": unknown option "trustroots" for wss:// (allowed after "#": timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); keys are case-sensitive: did you mean "trustRoots"?',
    ],
    [
      'wss://relay/pb#caCertsDir=/ca',
      '"wss://relay/pb#caCertsDir=/ca": unknown option "caCertsDir" for wss:// (allowed after "#": timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); wss:// calls it trustRoots=',
    ],
    [
      'wss://relay/pb#certKey=/c',
      '"wss://relay/pb#certKey=/c": unknown option "certKey" for wss:// (allowed after "#": timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); wss:// calls it certificate=',
    ],
    [
      'wss://relay/pb#hostname=relay',
      '"wss://relay/pb#hostname=relay": unknown option "hostname" for wss:// (allowed after "#": timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); wss:// checks the certificate against HOST itself',
    ],
    ['wss://relay/pb#trustRoots=/c%zz', '"wss://relay/pb#trustRoots=/c%zz": trustRoots= has a "%" that is not followed by two hex digits (write a literal "%" as %25)'],
    ['wss://relay/pb#privateKey=/k', '"wss://relay/pb#privateKey=/k": privateKey= needs certificate= (the client certificate it belongs to)'],
    ['ws:relay:443', '"ws:relay:443": a WebSocket endpoint is a URL: write ws://HOST[:PORT]/PATH'],
    ['wss:/relay/pb', '"wss:/relay/pb": a WebSocket endpoint is a URL: write wss://HOST[:PORT]/PATH'],
    ['unix:/x', '"unix:/x": connection type "unix" is not supported by this version of bbgate (supported: tcp, tls, ssl, ws://, wss://)'],
    // Other URLs keep their message: a master's web address is not a connection string.
    [
      'http://relay.example.org/pb',
      '"http://relay.example.org/pb": a URL, not a connection string: give the master\'s PB port (often 9989, not the web port) as tcp:HOST:PORT, or tls:HOST:PORT:trustRoots=DIR for TLS',
    ],
  ];
  for (const [description, message] of cases) {
    it(description, () => rejects(description, message));
  }

  it('refuses a user name or password in the URL without repeating the password', () => {
    rejects(
      'wss://worker:s3cret@relay/pb',
      '"wss://***@relay/pb": a user name or password does not belong in the URL (bbgate would not send it, and it would end up in logs): the worker logs in with its worker name and password, and a proxy\'s credentials go in the proxy setting (an "@" in the path is written %40)',
    );
    rejects(
      'ws://worker@relay/pb',
      '"ws://***@relay/pb": a user name or password does not belong in the URL (bbgate would not send it, and it would end up in logs): the worker logs in with its worker name and password, and a proxy\'s credentials go in the proxy setting (an "@" in the path is written %40)',
    );
    // A password holding "/" and "@" would otherwise be read as a port and a path: still refused, and scrubbed.
    assert.throws(() => parseEndpoint('ws://w:pa/ss@wd@relay/pb'), (err: Error) => {
      assert.match(err.message, /^"ws:\/\/\*\*\*@relay\/pb": a user name or password does not belong/);
      return true;
    });
    // In an option that is not a file's path (whose value an error would quote), too; in a path it is a character.
    assert.throws(() => parseEndpoint('ws://relay/pb#timeout=s3cret@5'), { code: 'ENDPOINT_SYNTAX', message: /^"ws:\/\/\*\*\*@5": a user name or password does not belong/ });
    assert.equal((parseEndpoint('wss://relay/pb#trustRoots=/a@b&timeout=5') as { trustRoots?: string }).trustRoots, '/a@b');
  });
});
