// The connection-string grammar: Twisted's client endpoint examples, escaping,
// IPv6, the ssl: traps, every error message, round trips, and a cross-check
// of the tokenizer and of the parsed endpoints against real Twisted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { formatEndpoint, parseEndpoint } from '../../src/address/connection-string.js';
import type { Endpoint, TlsEndpoint } from '../../src/address/endpoint.js';
import { masterConnectionString, parseMasterAddress } from '../../src/address/master-address.js';
import { EndpointSyntaxError } from '../../src/address/syntax-error.js';
import { splitEndpoint } from '../../src/address/twisted-syntax.js';
import { PYTHON } from '../helpers/python.js';

const NO_CHECK = 'ssl: without caCertsDir= verifies nothing: anyone can impersonate the master; use tls:HOST:PORT:trustRoots=DIR';
const NO_NAME_CHECK =
  'ssl: with caCertsDir= but without hostname= checks the certificate chain but not the name in it: any certificate those CAs issued can impersonate the master; add hostname=MASTER or use tls:HOST:PORT:trustRoots=DIR';

function tls(fields: Partial<TlsEndpoint> & Pick<TlsEndpoint, 'host' | 'port'>): TlsEndpoint {
  return { type: 'tls', timeout: 30, serverName: fields.host, verify: 'full', syntax: 'tls', warnings: [], ...fields };
}

function ssl(fields: Partial<TlsEndpoint> & Pick<TlsEndpoint, 'host' | 'port' | 'verify'>): TlsEndpoint {
  return { type: 'tls', timeout: 30, syntax: 'ssl', warnings: { full: [], chain: [NO_NAME_CHECK], none: [NO_CHECK] }[fields.verify], ...fields };
}

function rejects(description: string, message: string | RegExp): void {
  assert.throws(
    () => parseEndpoint(description),
    (err: unknown) => {
      assert.ok(err instanceof EndpointSyntaxError, `not an EndpointSyntaxError: ${String(err)}`);
      assert.equal(err.code, 'ENDPOINT_SYNTAX');
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

describe('Twisted documentation and test-suite examples', () => {
  const examples: [string, Endpoint][] = [
    // the Endpoints howto
    ['tcp:host=twistedmatrix.com:port=80:timeout=15', { type: 'tcp', host: 'twistedmatrix.com', port: 80, timeout: 15 }],
    ['ssl:host=twistedmatrix.com:port=443:caCertsDir=/etc/ssl/certs', ssl({ host: 'twistedmatrix.com', port: 443, trustRoots: '/etc/ssl/certs', verify: 'chain' })],
    // clientFromString's docstring
    ['tcp:host=www.example.com:port=80', { type: 'tcp', host: 'www.example.com', port: 80, timeout: 30 }],
    ['tcp:www.example.com:80', { type: 'tcp', host: 'www.example.com', port: 80, timeout: 30 }],
    ['tcp:host=www.example.com:80', { type: 'tcp', host: 'www.example.com', port: 80, timeout: 30 }],
    ['tcp:www.example.com:port=80', { type: 'tcp', host: 'www.example.com', port: 80, timeout: 30 }],
    ['ssl:web.example.com:443:privateKey=foo.pem:certKey=foo.pem', ssl({ host: 'web.example.com', port: 443, certificate: 'foo.pem', privateKey: 'foo.pem', verify: 'none' })],
    ['ssl:host=web.example.com:port=443:caCertsDir=/etc/ssl/certs', ssl({ host: 'web.example.com', port: 443, trustRoots: '/etc/ssl/certs', verify: 'chain' })],
    ['tcp:www.example.com:80:bindAddress=192.0.2.100', { type: 'tcp', host: 'www.example.com', port: 80, timeout: 30, bindAddress: '192.0.2.100' }],
    // twisted/internet/test/test_endpoints.py
    ['tcp:host=example.com:port=1234:timeout=7:bindAddress=10.0.0.2', { type: 'tcp', host: 'example.com', port: 1234, timeout: 7, bindAddress: '10.0.0.2' }],
    ['tcp:example.com:1234:timeout=7:bindAddress=10.0.0.2', { type: 'tcp', host: 'example.com', port: 1234, timeout: 7, bindAddress: '10.0.0.2' }],
    ['tcp:host=example.com:1234:timeout=7:bindAddress=10.0.0.2', { type: 'tcp', host: 'example.com', port: 1234, timeout: 7, bindAddress: '10.0.0.2' }],
    ['ssl:example.net:4321', ssl({ host: 'example.net', port: 4321, verify: 'none' })],
    ['ssl:host=simple.example.org:port=4321', ssl({ host: 'simple.example.org', port: 4321, verify: 'none' })],
    [
      'ssl:host=example.net:port=4321:privateKey=/k.pem:certKey=/c.pem:bindAddress=10.0.0.3:timeout=3:caCertsDir=/cas',
      ssl({ host: 'example.net', port: 4321, timeout: 3, bindAddress: '10.0.0.3', certificate: '/c.pem', privateKey: '/k.pem', trustRoots: '/cas', verify: 'chain' }),
    ],
    ['tls:example.com:443', tls({ host: 'example.com', port: 443 })],
    ['tls:example.com:443:timeout=10:bindAddress=127.0.0.1', tls({ host: 'example.com', port: 443, timeout: 10, bindAddress: '127.0.0.1' })],
    [
      'tls:localhost:4321:privateKey=/t/server.pem:certificate=/t/server.pem:trustRoots=/t',
      tls({ host: 'localhost', port: 4321, privateKey: '/t/server.pem', certificate: '/t/server.pem', trustRoots: '/t' }),
    ],
    // the TLS forms Buildbot users write
    ['tls:example.com:443:trustRoots=/etc/ssl/certs', tls({ host: 'example.com', port: 443, trustRoots: '/etc/ssl/certs' })],
    ['tls:host=master.example.org:port=9989', tls({ host: 'master.example.org', port: 9989 })],
    ['tls:master.example.org:port=9989:certificate=/w/client.pem', tls({ host: 'master.example.org', port: 9989, certificate: '/w/client.pem' })],
    ['ssl:host=10.0.0.5:port=9989:hostname=master.example.org', ssl({ host: '10.0.0.5', port: 9989, serverName: 'master.example.org', verify: 'full' })],
    [
      'ssl:host=10.0.0.5:port=9989:caCertsDir=/etc/bb/ca:hostname=master.example.org',
      ssl({ host: '10.0.0.5', port: 9989, serverName: 'master.example.org', trustRoots: '/etc/bb/ca', verify: 'full' }),
    ],
  ];
  for (const [description, expected] of examples) {
    it(description, () => assert.deepEqual(parseEndpoint(description), expected));
  }

  it('refuses unix:, which has no place in reaching a master', () => {
    rejects('unix:path=/var/run/web.sock', '"unix:path=/var/run/web.sock": connection type "unix" is not supported by this version of bbgate (supported: tcp, tls, ssl, ws://, wss://)');
  });
});

describe('escaping', () => {
  it('a backslash makes ":", "=" and "\\" literal, anywhere', () => {
    assert.deepEqual(splitEndpoint('tcp:foo\\:bar\\=baz\\:qux\\\\'), { type: 'tcp', positional: ['foo:bar=baz:qux\\'], keywords: new Map() });
    assert.deepEqual(splitEndpoint('t\\cp:a\\=b=c'), { type: 'tcp', positional: [], keywords: new Map([['a=b', 'c']]) });
  });

  it('only the first "=" splits key from value', () => {
    assert.equal((parseEndpoint('tls:h:443:trustRoots=/etc/a=b==c') as TlsEndpoint).trustRoots, '/etc/a=b==c');
  });

  it('escaped colons in paths', () => {
    assert.equal((parseEndpoint('tls:h:443:certificate=C\\:\\\\certs\\\\w.pem') as TlsEndpoint).certificate, 'C:\\certs\\w.pem');
  });

  it('a trailing backslash is an error', () => {
    rejects('tcp:host\\', '"tcp:host\\": a backslash at the end escapes nothing');
  });

  it('\\[ is a literal bracket, not an IPv6 address', () => {
    assert.deepEqual(splitEndpoint('tcp:\\[x:1').positional, ['[x', '1']);
  });
});

describe('IPv6', () => {
  it('escaped in host=, as Twisted requires', () => {
    assert.deepEqual(parseEndpoint('tcp:host=fd00\\:\\:1:port=9989'), { type: 'tcp', host: 'fd00::1', port: 9989, timeout: 30 });
    assert.deepEqual(parseEndpoint('tls:2001\\:db8\\:\\:7:443'), tls({ host: '2001:db8::7', port: 443 }));
    assert.deepEqual(parseEndpoint('tcp:h:1:bindAddress=\\:\\:1'), { type: 'tcp', host: 'h', port: 1, timeout: 30, bindAddress: '::1' });
  });

  it('bracketed as a positional argument (a bbgate extension; Twisted splits "[::1]" at its colons and fails)', () => {
    assert.deepEqual(parseEndpoint('tcp:[::1]:9989'), { type: 'tcp', host: '::1', port: 9989, timeout: 30 });
    assert.deepEqual(parseEndpoint('tls:[fd00::1]:443:trustRoots=/ca'), tls({ host: 'fd00::1', port: 443, trustRoots: '/ca' }));
    assert.deepEqual(parseEndpoint('ssl:[fe80::1%eth0]:443:hostname=m'), ssl({ host: 'fe80::1%eth0', port: 443, serverName: 'm', verify: 'full' }));
    assert.deepEqual(parseEndpoint('tcp:port=9989:[::ffff:10.0.0.1]'), { type: 'tcp', host: '::ffff:10.0.0.1', port: 9989, timeout: 30 });
  });

  it('bracket errors name the character and what is allowed', () => {
    rejects('tcp:[::1:9989', '"tcp:[::1:9989": the "[" at character 5 is never closed (brackets hold an IPv6 address, as in tcp:[fd00::1]:9989; write \\[ for a literal "[")');
    rejects('tcp:[::1]9989', '"tcp:[::1]9989": "]" at character 9 must be followed by ":" or the end, not "9"');
    rejects('tcp:[master]:9989', '"tcp:[master]:9989": brackets hold an IPv6 address, and "master" is not one (write \\[ for a literal "[")');
    rejects(
      'tcp:host=\\[fd00\\:\\:1\\]:port=9989',
      '"tcp:host=\\[fd00\\:\\:1\\]:port=9989": host "[fd00::1]" has brackets, which are not part of an address; write host=fd00\\:\\:1',
    );
  });

  it('unescaped colons: Twisted would connect "tcp:host=::1:port=9989" to port 1 of host ""; bbgate says why not', () => {
    rejects(
      'tcp:host=::1:port=9989',
      '"tcp:host=::1:port=9989": positional argument 1 is empty (two ":" in a row, or one at the end); an IPv6 address must escape each ":" (host=fd00\\:\\:1) or, positionally, be bracketed (tcp:[fd00::1]:9989)',
    );
    rejects(
      'tcp:fd00:1:9989',
      '"tcp:fd00:1:9989": too many positional arguments (tcp takes HOST:PORT; give the rest as key=value; an IPv6 address must escape each ":" (host=fd00\\:\\:1) or, positionally, be bracketed (tcp:[fd00::1]:9989))',
    );
  });
});

describe('the type prefix', () => {
  it('is case-insensitive, with Python\'s case folding', () => {
    assert.equal(parseEndpoint('TCP:h:1').type, 'tcp');
    assert.deepEqual(parseEndpoint('Tls:h:1'), tls({ host: 'h', port: 1 }));
    assert.deepEqual(parseEndpoint('SSL:h:1'), ssl({ host: 'h', port: 1, verify: 'none' }));
    assert.deepEqual(parseEndpoint('ſsl:h:1'), ssl({ host: 'h', port: 1, verify: 'none' }));
  });

  it('keys are not', () => {
    rejects(
      'tcp:h:1:bindaddress=10.0.0.1',
      '"tcp:h:1:bindaddress=10.0.0.1": unknown key "bindaddress" for tcp (allowed: host, port, timeout, bindAddress); keys are case-sensitive: did you mean "bindAddress"?',
    );
  });
});

describe('error messages', () => {
  const cases: [string, string][] = [
    ['', '"": not a connection string: expected TYPE:ARGUMENTS, such as tcp:master.example.org:9989'],
    ['master.example.org', '"master.example.org": not a connection string: expected TYPE:ARGUMENTS, such as tcp:master.example.org:9989'],
    [':h:1', '":h:1": not a connection string: expected TYPE:ARGUMENTS, such as tcp:master.example.org:9989'],
    ['host=h:tcp:1', '"host=h:tcp:1": the connection type must come first, as in tcp:HOST:PORT, not "host=h"'],
    [
      'https://buildbot.example.org/',
      '"https://buildbot.example.org/": a URL, not a connection string: give the master\'s PB port (often 9989, not the web port) as tcp:HOST:PORT, or tls:HOST:PORT:trustRoots=DIR for TLS',
    ],
    ['tcp:h:1:port=2', '"tcp:h:1:port=2": too many positional arguments (tcp takes only HOST, as port= is given; give the rest as key=value)'],
    ['tcp:h:1:host=g', '"tcp:h:1:host=g": too many positional arguments (tcp takes only PORT, as host= is given; give the rest as key=value)'],
    ['tcp:host=h:port=1:2', '"tcp:host=h:port=1:2": too many positional arguments (tcp takes none, as host= and port= are given; give the rest as key=value)'],
    ['tcp:h:1:2', '"tcp:h:1:2": too many positional arguments (tcp takes HOST:PORT; give the rest as key=value)'],
    ['tcp:h:9989:', '"tcp:h:9989:": positional argument 3 is empty (two ":" in a row, or one at the end); an IPv6 address must escape each ":" (host=fd00\\:\\:1) or, positionally, be bracketed (tcp:[fd00::1]:9989)'],
    ['tcp:host=h:port=1:host=g', '"tcp:host=h:port=1:host=g": "host" is given twice'],
    ['tcp:host=:port=1', '"tcp:host=:port=1": host= is empty (give a value or leave the key out)'],
    ['tcp:port=1', '"tcp:port=1": no host (write tcp:HOST:PORT or tcp:host=HOST:port=PORT)'],
    ['tcp:h', '"tcp:h": no port (write tcp:HOST:PORT or tcp:host=HOST:port=PORT)'],
    ['tls:h', '"tls:h": no port (write tls:HOST:PORT[:trustRoots=DIR] or tls:host=HOST:port=PORT)'],
    ['ssl:port=1', '"ssl:port=1": no host (write ssl:host=HOST:port=PORT:caCertsDir=DIR:hostname=NAME)'],
    ['tcp:127.0.0.1:notaport', '"tcp:127.0.0.1:notaport": port must be a whole number from 1 to 65535, not "notaport"'],
    ['tcp:h:0', '"tcp:h:0": port must be a whole number from 1 to 65535, not "0"'],
    ['tcp:h:65536', '"tcp:h:65536": port must be a whole number from 1 to 65535, not "65536"'],
    ['tcp:h:1:timeout=-5', '"tcp:h:1:timeout=-5": timeout must be a whole number from 1 to 86400, not "-5"'],
    ['tcp:h:1:bindAddress=eth0', '"tcp:h:1:bindAddress=eth0": bindAddress "eth0" is not an IP address'],
    ['tcp:h:1:foo=bar', '"tcp:h:1:foo=bar": unknown key "foo" for tcp (allowed: host, port, timeout, bindAddress)'],
    [
      'tcp:h:1:trustRoots=/ca',
      '"tcp:h:1:trustRoots=/ca": unknown key "trustRoots" for tcp (allowed: host, port, timeout, bindAddress); tcp: is plain TCP; for TLS write tls:HOST:PORT:trustRoots=DIR',
    ],
    [
      'tls:h:1:caCertsDir=/ca',
      '"tls:h:1:caCertsDir=/ca": unknown key "caCertsDir" for tls (allowed: host, port, timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); tls: calls it trustRoots=',
    ],
    [
      'tls:h:1:certKey=/c.pem',
      '"tls:h:1:certKey=/c.pem": unknown key "certKey" for tls (allowed: host, port, timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); tls: calls it certificate=',
    ],
    [
      'tls:h:1:hostname=m',
      '"tls:h:1:hostname=m": unknown key "hostname" for tls (allowed: host, port, timeout, bindAddress, trustRoots, certificate, privateKey, fingerprint); tls: checks the certificate against HOST itself',
    ],
    [
      'ssl:h:1:trustRoots=/ca',
      '"ssl:h:1:trustRoots=/ca": unknown key "trustRoots" for ssl (allowed: host, port, timeout, bindAddress, caCertsDir, hostname, certKey, privateKey); ssl: calls it caCertsDir=',
    ],
    [
      'ssl:h:1:certificate=/c.pem',
      '"ssl:h:1:certificate=/c.pem": unknown key "certificate" for ssl (allowed: host, port, timeout, bindAddress, caCertsDir, hostname, certKey, privateKey); ssl: calls it certKey=',
    ],
    [
      'tls:host=h:443',
      '"tls:host=h:443": host is given twice, as host= and as positional argument 1 "443" (tls: binds positional arguments to HOST:PORT in that order; write tls:HOST:PORT[:trustRoots=DIR] or tls:host=HOST:port=PORT)',
    ],
    ['tls:h:443:/etc/ssl/certs', '"tls:h:443:/etc/ssl/certs": too many positional arguments (tls takes HOST:PORT; give the rest as key=value)'],
    [
      'tls:h:443:endpoint=tcp\\:proxy\\:3128',
      '"tls:h:443:endpoint=tcp\\:proxy\\:3128": endpoint= (a nested endpoint to reach HOST through) is not supported; bbgate connects tls: straight to HOST:PORT (to go through an HTTP proxy, use bbgate\'s proxy settings, not a nested endpoint)',
    ],
    ['tls:h:443:privateKey=/k.pem', '"tls:h:443:privateKey=/k.pem": privateKey= needs certificate= (the client certificate it belongs to)'],
    ['ssl:h:443:privateKey=/k.pem', '"ssl:h:443:privateKey=/k.pem": privateKey= needs certKey= (the client certificate it belongs to)'],
    ['tls:h:443:trustRoots=', '"tls:h:443:trustRoots=": trustRoots= is empty (give a value or leave the key out)'],
  ];
  for (const [description, message] of cases) {
    it(description === '' ? '(empty)' : description, () => rejects(description, message));
  }
});

describe('user info', () => {
  const problem = 'a user name or password does not belong in a connection string (it would end up in logs): the worker logs in with its worker name and password, and a proxy\'s credentials go in the proxy setting as http://USER:PASSWORD@HOST:PORT';

  it('is refused before anything quotes a piece of it, and the string is quoted with it hidden', () => {
    for (const [description, shown] of [
      ['tcp:bob:s3cret@master:9989', 'tcp:***@master:9989'],
      ['tcp:bob:pw:s3cret@master:9989', 'tcp:***@master:9989'],
      ['tls:host=bob\\:s3cret@master:port=9989', 'tls:***@master:port=9989'],
      ['ssl:host=m:port=1:hostname=bob@s3cret', 'ssl:***@s3cret'],
      ['tcp:[bob:s3cret@x]:1', 'tcp:***@x]:1'],
      ['tcp:h:1:timeout=s3cret\\@x', 'tcp:***@x'],
      ['http://bob:s3cret@master:9989', 'http://***@master:9989'],
    ]) {
      rejects(description!, `"${shown}": ${problem}`);
    }
    assert.throws(() => parseMasterAddress('bob:s3cret@master:9989'), { code: 'ENDPOINT_SYNTAX', message: `"***@master:9989": ${problem}` });
    assert.throws(() => splitEndpoint('tcp:bob:s3cret@0'), { code: 'ENDPOINT_SYNTAX', message: `"tcp:***@0": ${problem}` });
  });

  it('is not what an "@" in a file\'s path is', () => {
    const e = parseEndpoint('tls:master:9989:trustRoots=/home/a@b/ca:certificate=/c@1.pem:privateKey=k@2') as TlsEndpoint;
    assert.deepEqual([e.trustRoots, e.certificate, e.privateKey], ['/home/a@b/ca', '/c@1.pem', 'k@2']);
    assert.equal((parseEndpoint('ssl:host=m:port=1:caCertsDir=/x@y:certKey=/z@w') as TlsEndpoint).trustRoots, '/x@y');
    assert.deepEqual(splitEndpoint('tls:0:certKey=/a@b:extraCertChain=/c@d').keywords, new Map([['certKey', '/a@b'], ['extraCertChain', '/c@d']]));
  });
});

describe('the ssl: traps', () => {
  it('without caCertsDir= nor hostname=, nothing is verified', () => {
    const e = parseEndpoint('ssl:host=master:port=9989') as TlsEndpoint;
    assert.equal(e.verify, 'none');
    assert.equal(e.serverName, undefined);
    assert.deepEqual(e.warnings, [NO_CHECK]);
  });

  it('with caCertsDir= but without hostname=, the chain is checked and the name is not', () => {
    const e = parseEndpoint('ssl:host=master:port=9989:caCertsDir=/ca') as TlsEndpoint;
    assert.equal(e.verify, 'chain');
    assert.equal(e.serverName, undefined);
    assert.deepEqual(e.warnings, [NO_NAME_CHECK]);
  });

  it('with hostname=, the name is checked, against the platform store unless caCertsDir= is given', () => {
    assert.deepEqual(parseEndpoint('ssl:host=10.1.2.3:port=9989:hostname=master'), ssl({ host: '10.1.2.3', port: 9989, serverName: 'master', verify: 'full' }));
  });

  it('a client certificate does not make the server verified', () => {
    assert.deepEqual((parseEndpoint('ssl:master:9989:certKey=/w.pem') as TlsEndpoint).warnings, [NO_CHECK]);
  });

  it('tls: never warns: it always verifies chain and name', () => {
    const e = parseEndpoint('tls:master:9989') as TlsEndpoint;
    assert.equal(e.verify, 'full');
    assert.equal(e.serverName, 'master');
    assert.deepEqual(e.warnings, []);
  });
});

describe('formatEndpoint', () => {
  it('prints keyword form, escaped', () => {
    assert.equal(formatEndpoint(parseEndpoint('tcp:127.0.0.1:38965')), 'tcp:host=127.0.0.1:port=38965:timeout=30');
    assert.equal(formatEndpoint(parseEndpoint('tcp:[fd00::1]:9989:bindAddress=\\:\\:1')), 'tcp:host=fd00\\:\\:1:port=9989:timeout=30:bindAddress=\\:\\:1');
    assert.equal(
      formatEndpoint(parseEndpoint('tls:m:443:certificate=/a\\:b=c.pem:trustRoots=/ca')),
      'tls:host=m:port=443:timeout=30:trustRoots=/ca:certificate=/a\\:b\\=c.pem',
    );
    assert.equal(
      formatEndpoint(parseEndpoint('SSL:m:443:privateKey=/k:certKey=/c:hostname=n:caCertsDir=/ca')),
      'ssl:host=m:port=443:timeout=30:caCertsDir=/ca:hostname=n:certKey=/c:privateKey=/k',
    );
  });

  it('round-trips every example', () => {
    const descriptions = [
      'tcp:host=twistedmatrix.com:port=80:timeout=15',
      'tcp:[::1]:9989:bindAddress=\\:\\:1',
      'tls:example.com:443:trustRoots=/etc/ssl/certs:certificate=/c:privateKey=/k:timeout=5:bindAddress=10.0.0.1',
      'ssl:host=m:port=1',
      'ssl:host=m:port=1:caCertsDir=/ca',
      'ssl:host=m:port=1:hostname=n',
      'ssl:host=m:port=1:certKey=/c\\\\d\\:e',
    ];
    for (const d of descriptions) {
      const e = parseEndpoint(d);
      assert.deepEqual(parseEndpoint(formatEndpoint(e)), e, d);
    }
  });

  it('round-trips random endpoints with awkward characters', () => {
    const alphabet = 'ab9:=\\[] é/.%-';
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const text = () => 'x' + Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join('');
    const maybe = () => (rand(2) ? text() : undefined);
    for (let i = 0; i < 2000; i++) {
      const base = { host: text(), port: 1 + rand(65535), timeout: 1 + rand(86400), ...(rand(2) ? { bindAddress: rand(2) ? 'fd00::9' : '10.0.0.9' } : {}) };
      const certificate = maybe();
      const tlsFields = {
        ...base,
        ...(certificate !== undefined ? { certificate, ...(rand(2) ? { privateKey: text() } : {}) } : {}),
        ...(rand(2) ? { trustRoots: text() } : {}),
      };
      const serverName = maybe();
      const verify = serverName !== undefined ? 'full' : tlsFields.trustRoots !== undefined ? 'chain' : 'none';
      const e: Endpoint = [
        { type: 'tcp' as const, ...base },
        tls(tlsFields),
        ssl({ ...tlsFields, ...(serverName !== undefined ? { serverName } : {}), verify }),
      ][rand(3)]!;
      assert.deepEqual(parseEndpoint(formatEndpoint(e)), e, JSON.stringify(e));
    }
  });
});

describe('masterConnectionString', () => {
  it('builds what buildbot-worker builds', () => {
    assert.equal(masterConnectionString('master.example.org', 9989, false), 'tcp:host=master.example.org:port=9989');
    assert.equal(masterConnectionString('master.example.org', 9989, true), 'tls:host=master.example.org:port=9989');
    assert.equal(masterConnectionString('fd00::1', 9989, false), 'tcp:host=fd00\\:\\:1:port=9989');
  });

  it('parses back to the same host and port', () => {
    assert.deepEqual(parseEndpoint(masterConnectionString('fd00::1', 9989, true)), tls({ host: 'fd00::1', port: 9989 }));
  });
});

describe('parseMasterAddress', () => {
  it('accepts what create-worker accepts', () => {
    assert.deepEqual(parseMasterAddress('master.example.org'), { host: 'master.example.org', port: 9989 });
    assert.deepEqual(parseMasterAddress('master.example.org:19989'), { host: 'master.example.org', port: 19989 });
    assert.deepEqual(parseMasterAddress('[2001:db8::1]:4321'), { host: '2001:db8::1', port: 4321 });
    assert.deepEqual(parseMasterAddress('[::1]'), { host: '::1', port: 9989 });
    assert.deepEqual(parseMasterAddress('10.0.0.1:9989'), { host: '10.0.0.1', port: 9989 });
  });

  const errors: [string, string][] = [
    ['http://master:8010/', '"http://master:8010/": MASTER is not a URL: give HOST[:PORT], the master\'s PB port (default 9989), not its web address'],
    ['HTTPS://master', '"HTTPS://master": MASTER is not a URL: give HOST[:PORT], the master\'s PB port (default 9989), not its web address'],
    ['http:master', '"http:master": MASTER is not a URL: give HOST[:PORT], the master\'s PB port (default 9989), not its web address'],
    ['fd00::1', '"fd00::1": MASTER has more than one ":"; an IPv6 address must be in brackets, as in [fd00::1]:9989'],
    ['a:b:c', '"a:b:c": MASTER has more than one ":"; an IPv6 address must be in brackets, as in [fd00::1]:9989'],
    ['[::1]9989', '"[::1]9989": a bracketed MASTER must be [IPv6] or [IPv6]:PORT, such as [fd00::1]:9989'],
    ['[::1', '"[::1": a bracketed MASTER must be [IPv6] or [IPv6]:PORT, such as [fd00::1]:9989'],
    ['[master]:9989', '"[master]:9989": brackets hold an IPv6 address, and "master" is not one'],
    ['', '"": MASTER has no host (write HOST[:PORT], such as master.example.org:9989)'],
    [':9989', '":9989": MASTER has no host (write HOST[:PORT], such as master.example.org:9989)'],
    ['master:', '"master:": port must be a whole number from 1 to 65535, not ""'],
    ['master:web', '"master:web": port must be a whole number from 1 to 65535, not "web"'],
    ['[::1]:99999', '"[::1]:99999": port must be a whole number from 1 to 65535, not "99999"'],
  ];
  for (const [master, message] of errors) {
    it(`rejects ${JSON.stringify(master)}`, () => {
      assert.throws(() => parseMasterAddress(master), (err: unknown) => err instanceof EndpointSyntaxError && err.code === 'ENDPOINT_SYNTAX' && err.message === message);
    });
  }
});

// Real Twisted: its tokenizer, and clientFromString's endpoint, for each string.
const TWISTED_SCRIPT = `
import json, sys
from twisted.internet import reactor
from twisted.internet._sslverify import ClientTLSOptions
from twisted.internet.endpoints import _parse, clientFromString

def describe(e):
    if hasattr(e, '_wrappedEndpoint'):
        w = e._wrappedEndpoint
        return {'kind': 'tls', 'host': w._hostText, 'port': w._port, 'timeout': w._timeout, 'bindAddress': w._bindAddress,
                'serverName': e._wrapperFactory(None)._connectionCreator._hostname, 'verify': 'full'}
    d = {'kind': 'tcp', 'host': e._host, 'port': e._port, 'timeout': e._timeout,
         'bindAddress': e._bindAddress[0] if e._bindAddress else None}
    options = getattr(e, '_sslContextFactory', None)
    if options is not None:
        d['kind'] = 'ssl'
        d['verify'] = 'full' if isinstance(options, ClientTLSOptions) else 'chain' if options.verify else 'none'
        d['serverName'] = options._hostnameASCII if isinstance(options, ClientTLSOptions) else None
    return d

out = []
for s in json.loads(sys.argv[1]):
    r = {}
    try:
        r['split'] = _parse(s)
    except Exception as x:
        r['splitError'] = type(x).__name__
    try:
        r['endpoint'] = describe(clientFromString(reactor, s))
    except Exception as x:
        r['error'] = type(x).__name__ + ': ' + str(x)
    out.append(r)
print(json.dumps(out))
`;

interface TwistedResult {
  split?: [string[], Record<string, string>];
  splitError?: string;
  endpoint?: { kind: string; host: string; port: number; timeout: number; bindAddress: string | null; serverName?: string | null; verify?: string };
  error?: string;
}

function twisted(descriptions: string[]): TwistedResult[] {
  return JSON.parse(execFileSync(PYTHON, ['-c', TWISTED_SCRIPT, JSON.stringify(descriptions)], { encoding: 'utf8' })) as TwistedResult[];
}

describe('against real Twisted', () => {
  const cas = mkdtempSync(join(tmpdir(), 'bbgate-cas-'));
  after(() => rmSync(cas, { recursive: true, force: true }));
  const escapedCas = cas.replace(/[\\:]/g, (c) => `\\${c}`);

  it('splits every string as Twisted\'s tokenizer does', () => {
    const table = [
      'tcp:host=twistedmatrix.com:port=80:timeout=15',
      'tcp:host=www.example.com:80',
      'tcp:a:b:d=1:c',
      'TCP:host=fd00\\:\\:1:port=9989',
      'unix:foo\\:bar\\=baz\\:qux\\\\',
      'unix:address=foo=bar',
      'tcp:a\\=b=c:x==y',
      'tls:example.com:443:trustRoots=/etc/ssl/certs:certificate=C\\:\\\\x.pem',
      'ssl:host=h:port=1:caCertsDir=/ca:hostname=m:certKey=/c:privateKey=/k',
      'tcp:host=::1:port=9989',
      'tcp:h:9989:',
      't\\cp:h:1',
      'https://buildbot.example.org/',
      'ſsl:h:1',
    ];
    const results = twisted(table);
    table.forEach((description, i) => {
      const [args, kwargs] = results[i]!.split!;
      const ours = splitEndpoint(description);
      assert.equal(ours.type, args[0]!.toUpperCase().toLowerCase(), description);
      assert.deepEqual(ours.positional, args.slice(1), description);
      assert.deepEqual(Object.fromEntries(ours.keywords), kwargs, description);
    });
  });

  it('builds the same endpoint, or refuses as Twisted does', () => {
    const accepted = [
      'tcp:host=twistedmatrix.com:port=80:timeout=15',
      'tcp:host=www.example.com:port=80',
      'tcp:www.example.com:80',
      'tcp:host=www.example.com:80',
      'tcp:www.example.com:port=80',
      'tcp:www.example.com:80:bindAddress=192.0.2.100',
      'TCP:host=fd00\\:\\:1:port=9989',
      'tcp:example.com:1234:timeout=7:bindAddress=10.0.0.2',
      'ssl:example.net:4321',
      'ssl:host=simple.example.org:port=4321',
      `ssl:host=web.example.com:port=443:caCertsDir=${escapedCas}`,
      'ssl:host=10.0.0.5:port=9989:hostname=master.example.org',
      `ssl:10.0.0.5:9989:hostname=master.example.org:caCertsDir=${escapedCas}:timeout=5`,
      'Tls:example.com:443',
      'tls:example.com:443:timeout=10:bindAddress=127.0.0.1',
      `tls:example.com:port=443:trustRoots=${escapedCas}`,
      'tls:10.0.0.1:9989',
      'ssl:\\:\\:1:9989',
      'ſsl:h:1',
      masterConnectionString('fd00::1', 9989, false),
      masterConnectionString('master.example.org', 9989, true),
    ];
    const refused = ['tcp:h', 'tcp:h:1:foo=bar', 'tcp:h:notaport', 'tls:host=h:443', 'tls:h:1:caCertsDir=/ca', 'ssl:h:1:trustRoots=/ca', 'tcp:h:1:2', 'unix:/x', 'tcp:h:9989:'];
    const results = twisted([...accepted, ...refused]);
    accepted.forEach((description, i) => {
      const theirs = results[i]!.endpoint;
      assert.ok(theirs, `Twisted refused ${description}: ${results[i]!.error}`);
      const ours = parseEndpoint(description);
      assert.equal(ours.type === 'tls' ? ours.syntax : ours.type, theirs.kind, description);
      assert.deepEqual(
        { host: ours.host, port: ours.port, timeout: ours.timeout, bindAddress: ours.bindAddress ?? null },
        { host: theirs.host, port: theirs.port, timeout: theirs.timeout, bindAddress: theirs.bindAddress },
        description,
      );
      if (ours.type === 'tls') {
        assert.equal(ours.verify, theirs.verify, description);
        assert.equal(ours.serverName ?? null, theirs.serverName ?? null, description);
      }
    });
    refused.forEach((description, i) => {
      assert.ok(results[accepted.length + i]!.error, `Twisted accepted ${description}`);
      assert.throws(() => parseEndpoint(description), EndpointSyntaxError, description);
    });
  });

  it('deliberate differences: strings Twisted takes that bbgate refuses, and why', () => {
    const differences = [
      'tcp:host=::1:port=9989', // Twisted: host "", port 1 (an unescaped IPv6 address)
      'tcp:h:1:port=2', // Twisted: the positional port silently wins
      'tcp:host=h:port=1:port=2', // Twisted: the last one silently wins
      'host=h:tcp:1', // Twisted: the first positional is the type, wherever it is
      'ssl:h:1:privateKey=/k', // Twisted: the key is silently ignored without certKey=
      'tls:h:443:30', // Twisted: the third positional is the timeout; bbgate wants key=value
    ];
    const results = twisted(differences);
    differences.forEach((description, i) => {
      assert.ok(results[i]!.endpoint, `Twisted refused ${description}: ${results[i]!.error}`);
      assert.throws(() => parseEndpoint(description), EndpointSyntaxError, description);
    });
    assert.deepEqual(results[0]!.endpoint, { kind: 'tcp', host: '', port: 1, timeout: 30, bindAddress: null });
  });

  it('extensions: strings Twisted cannot use that bbgate takes', () => {
    const extensions = [
      'tcp:[::1]:9989', // Twisted splits the bracketed address at its colons
      'tls:host=2001\\:db8\\:\\:7:port=443', // Twisted IDNA-encodes the host, and ":" is no IDNA character
      masterConnectionString('fd00::1', 9989, true), // so use_tls with an IPv6 master fails in buildbot-worker
    ];
    const results = twisted(extensions);
    extensions.forEach((description, i) => assert.ok(results[i]!.error, `Twisted accepted ${description}`));
    assert.equal(parseEndpoint(extensions[0]!).host, '::1');
    assert.deepEqual(parseEndpoint(extensions[1]!), tls({ host: '2001:db8::7', port: 443 }));
    assert.deepEqual(parseEndpoint(extensions[2]!), tls({ host: 'fd00::1', port: 9989 }));
  });
});
