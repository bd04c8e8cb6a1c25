// The relay's WebSocket listener syntax, read by the same parser as a worker's ws:// string.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListener } from '../../src/relay/config.js';

function refused(text: string, message: RegExp): void {
  assert.throws(() => parseListener(text), (err: Error & { code?: string }) => {
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
    refused('wss://relay/pb#trustRoots=/ca', /unknown option "trustRoots" after # \(allowed: certKey, privateKey, extraCertChain, proxyFrom\)/);
  });
});
