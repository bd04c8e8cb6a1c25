// The relay's WebSocket listener syntax, read by the same parser as a worker's ws:// string.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultMaxPerSource, parseListener, resolveRelayConfig } from '../../src/relay/config.js';

function refused(text: string, message: RegExp, parse: () => unknown = () => parseListener(text)): void {
  assert.throws(parse, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'RELAY_CONFIG');
    assert.match(err.message, message);
    return true;
  });
}

describe('relay WebSocket listeners', () => {
  it('takes host, port (default 80 or 443, 0 for any), path and options, percent-decoded, "+" as itself', () => {
    assert.deepEqual(parseListener('ws://127.0.0.1:0/pb'), { kind: 'ws', name: 'ws://127.0.0.1:0/pb', port: 0, host: '127.0.0.1', path: '/pb' });
    assert.deepEqual(parseListener('wss://[::]/a%20b#certKey=/etc/bbgate/relay+chain.pem&privateKey=/etc/k%23ey.pem'), {
      kind: 'ws', name: 'wss://[::]/a%20b', port: 443, host: '::', path: '/a b',
      tls: { certKey: '/etc/bbgate/relay+chain.pem', privateKey: '/etc/k#ey.pem' },
    });
    assert.equal(parseListener('ws://0.0.0.0').port, 80);
  });

  it('refuses what the worker\'s parser refuses, and what a listener cannot use', () => {
    refused('ws:///pb', /^listen \(--listen\) "ws:\/\/\/pb": no host/);
    refused('ws://relay:80/pb?token=x', /takes no query string/);
    refused('ws://relay:80/p%zz', /the path has a "%" that is not followed by two hex digits/);
    refused('ws://relay:99999/pb', /port must be a number from 0 to 65535/);
    refused('wss://user:secret@relay/pb#certKey=/k.pem', /a user name or password does not belong in the URL/);
    refused('wss://relay/pb', /needs #certKey=PEM/);
    refused('wss://relay/pb#certKey=/k.pem&certKey=/j.pem', /"certKey" is given twice/);
    refused('wss://relay/pb#trustRoots=/ca', /unknown option "trustRoots" after # \(allowed: certKey, privateKey, extraCertChain, caCertsDir, certNames, proxyFrom\)/);
  });
});

describe('certNames=1 on listeners with client certificates', () => {
  it('is read on tls: and wss:// listeners that require client certificates', () => {
    assert.deepEqual(parseListener('tls:9989:certKey=/c.pem:caCertsDir=/ca:certNames=1'), {
      kind: 'tls', name: 'tls:9989', port: 9989, certKey: '/c.pem', privateKey: '/c.pem', caCertsDir: '/ca', certNames: true,
    });
    assert.deepEqual(parseListener('wss://0.0.0.0/pb#certKey=/c.pem&caCertsDir=/ca&certNames=1'), {
      kind: 'ws', name: 'wss://0.0.0.0/pb', port: 443, host: '0.0.0.0', path: '/pb', tls: { certKey: '/c.pem', privateKey: '/c.pem', caCertsDir: '/ca', certNames: true },
    });
    assert.equal((parseListener('tls:9989:certKey=/c.pem:caCertsDir=/ca:certNames=0') as { certNames?: boolean }).certNames, undefined);
  });

  it('is refused without client certificates, with another value, and on listeners without TLS', () => {
    refused('tls:9989:certKey=/c.pem:certNames=1', /certNames=1 needs client certificates: add caCertsDir=DIR/);
    refused('wss://relay/pb#certKey=/c.pem&certNames=1', /certNames=1 needs client certificates: add caCertsDir=DIR/);
    refused('tls:9989:certKey=/c.pem:caCertsDir=/ca:certNames=yes', /certNames must be 1 .* or 0, not "yes"/);
    refused('tcp:9989:certNames=1', /unknown key "certNames"/);
    refused('ws://relay/pb#certNames=1', /unknown option "certNames"/);
  });
});

describe('maxPerSource', () => {
  const base = { listen: ['tcp:0'], upstream: 'tcp:master:9989', allow: ['*'] };

  it('defaults to a tenth of maxConnections, at least 2, and can be set', () => {
    assert.equal(resolveRelayConfig(base).maxPerSource, 100);
    assert.equal(resolveRelayConfig({ ...base, maxConnections: 50 }).maxPerSource, 5);
    assert.equal(resolveRelayConfig({ ...base, maxConnections: 5 }).maxPerSource, 2);
    assert.equal(resolveRelayConfig({ ...base, maxPerSource: 7 }).maxPerSource, 7);
    assert.deepEqual([1, 9, 10, 11, 1000].map(defaultMaxPerSource), [2, 2, 2, 2, 100]);
  });

  it('must be a whole number of at least 1', () => {
    for (const bad of [0, -1, 2.5, '3'] as unknown as number[]) {
      refused('', /maxPerSource \(--max-per-source\) must be a whole number of at least 1/, () => resolveRelayConfig({ ...base, maxPerSource: bad }));
    }
  });
});
