// describeCertificate gives one shape for a certificate Node parsed from a file and for the same
// certificate as a TLS peer presented it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { connect } from 'node:tls';
import { describeCertificate } from '../../src/tls/index.js';
import { testPki } from '../helpers/pki.js';
import { dial, tlsPeer } from './support.js';

describe('describeCertificate', () => {
  it('describes a file certificate and the same certificate from a peer alike', async () => {
    const pki = await testPki();
    const fromFile = describeCertificate(new X509Certificate(pki.server.cert));
    assert.equal(fromFile.subject, 'CN=localhost, O=bbgate tests');
    assert.equal(fromFile.issuer, 'CN=bbgate Test Intermediate CA, O=bbgate tests');
    assert.deepEqual(fromFile.san, ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']);
    assert.match(fromFile.validFrom, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    assert.ok(Date.parse(fromFile.validTo) > Date.now());
    assert.match(fromFile.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

    const peer = await tlsPeer({ key: pki.server.key, cert: pki.serverChain });
    const socket = connect({ socket: await dial(peer.port), rejectUnauthorized: false });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const fromPeer = describeCertificate(socket.getPeerCertificate());
    socket.destroy();
    await peer.close();
    assert.deepEqual(fromPeer, fromFile);
  });

  it('keeps a subjectAltName entry that holds a comma whole', async () => {
    const pki = await testPki();
    const odd = await pki.issue({ name: 'odd-san', issuer: pki.root, sans: ['DNS:a,b.example', 'DNS:c.example'] });
    assert.deepEqual(describeCertificate(new X509Certificate(odd.cert)).san, ['DNS:a,b.example', 'DNS:c.example']);
  });
});
