// Mutual TLS: servers that require a worker certificate, over TLS 1.3 (where the server's verdict
// comes after the client's handshake is over) and TLS 1.2; and our own certificate and key files.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SecureVersion } from 'node:tls';
import { startTls, type TlsOptions } from '../../src/tls/index.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { dial, PB_OFFER, readBytes, recordingLogger, rejectsWith, tlsPeer, type TlsPeer } from './support.js';

describe('startTls: client certificates', () => {
  let pki: TestPki;
  let rootDir: string;
  const peers: TlsPeer[] = [];

  /** A server that requires a client certificate issued by our root. */
  async function strictServer(version: SecureVersion = 'TLSv1.3'): Promise<TlsPeer> {
    const peer = await tlsPeer({
      key: pki.server.key,
      cert: pki.serverChain,
      ca: [pki.root.cert],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: version,
      maxVersion: version,
    });
    peers.push(peer);
    return peer;
  }

  async function connect(peer: TlsPeer, options: Partial<TlsOptions>) {
    return startTls(await dial(peer.port), { serverName: 'localhost', trustRoots: rootDir, verify: 'full', timeout: 5000, ...options });
  }

  before(async () => {
    pki = await testPki();
    rootDir = await pki.trustDir(pki.root);
  });
  after(() => Promise.all(peers.map((p) => p.close())));

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${version}: required and supplied, from a certificate file and a key file`, async () => {
      const peer = await strictServer(version);
      const socket = await connect(peer, { certificate: pki.client.certFile, privateKey: pki.client.keyFile });
      assert.deepEqual(await readBytes(socket, PB_OFFER.length), PB_OFFER);
      socket.destroy();
      assert.equal(peer.seen[0]!.clientCN, 'worker-1');
    });
  }

  it('required and supplied, certificate and key in one file (no privateKey)', async () => {
    const peer = await strictServer();
    const combined = join(pki.dir, 'client-combined.pem');
    await writeFile(combined, pki.client.cert + pki.client.key);
    const socket = await connect(peer, { certificate: combined });
    socket.destroy();
    assert.equal(peer.seen[0]!.clientCN, 'worker-1');
  });

  it('TLSv1.3: required and missing is a handshake failure from startTls, not a broken connection later', async () => {
    const peer = await strictServer('TLSv1.3');
    await rejectsWith(connect(peer, {}), 'TLS_HANDSHAKE', 'the server requires a client certificate and we sent none', 'TLS alert "certificate required"', 'give certificate=');
  });

  it('TLSv1.2: required and missing', async () => {
    const peer = await strictServer('TLSv1.2');
    await rejectsWith(connect(peer, {}), 'TLS_HANDSHAKE', 'TLS alert "handshake failure"', 'it may require a client certificate');
  });

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${version}: a client certificate the server does not trust is named in the error`, async () => {
      const peer = await strictServer(version);
      const stranger = await pki.issue({ name: 'stranger', commonName: 'stranger-worker', issuer: pki.otherRoot, usage: 'client' });
      await rejectsWith(
        connect(peer, { certificate: stranger.certFile, privateKey: stranger.keyFile }),
        'TLS_HANDSHAKE',
        /the server closed the connection (right after|during) the TLS handshake/,
        'it may have refused our client certificate "CN=stranger-worker, O=bbgate tests" (issued by "CN=Unrelated Root CA, O=bbgate tests")',
      );
    });
  }

  describe('our certificate and key (TLS_CLIENT_CERT, before any byte is sent)', () => {
    let peer: TlsPeer;
    before(async () => {
      peer = await strictServer();
    });

    it('a missing certificate file', async () => {
      await rejectsWith(connect(peer, { certificate: '/nonexistent/worker.pem' }), 'TLS_CLIENT_CERT', 'cannot read the client certificate /nonexistent/worker.pem: ENOENT');
    });

    it('a certificate file without the key, and no privateKey', async () => {
      await rejectsWith(connect(peer, { certificate: pki.client.certFile }), 'TLS_CLIENT_CERT', `${pki.client.certFile} holds no private key: give privateKey=`);
    });

    it('a key file without a key', async () => {
      await rejectsWith(connect(peer, { certificate: pki.client.certFile, privateKey: pki.root.certFile }), 'TLS_CLIENT_CERT', `${pki.root.certFile} holds no private key`);
    });

    it("a key that is not the certificate's", async () => {
      await rejectsWith(
        connect(peer, { certificate: pki.client.certFile, privateKey: pki.server.keyFile }),
        'TLS_CLIENT_CERT',
        `the private key in ${pki.server.keyFile} does not belong to the certificate in ${pki.client.certFile} (CN=worker-1, O=bbgate tests)`,
      );
    });

    it('an encrypted key', async () => {
      const encrypted = join(pki.dir, 'client-encrypted.key');
      await writeFile(encrypted, createPrivateKey(pki.client.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'sesame' }));
      await rejectsWith(connect(peer, { certificate: pki.client.certFile, privateKey: encrypted }), 'TLS_CLIENT_CERT', `the private key in ${encrypted} is encrypted`);
    });

    it('a certificate file with no certificate', async () => {
      await rejectsWith(connect(peer, { certificate: pki.client.keyFile }), 'TLS_CLIENT_CERT', `${pki.client.keyFile} holds no certificate`);
    });

    it('warns about a certificate not meant for clients (which OpenSSL servers refuse), and never logs the key', async () => {
      const logger = recordingLogger();
      // Issued by the root the server trusts, but its extendedKeyUsage says serverAuth only.
      const serverish = await pki.issue({ name: 'serverish-client', commonName: 'serverish', issuer: pki.root });
      await rejectsWith(connect(peer, { certificate: serverish.certFile, privateKey: serverish.keyFile, logger }), 'TLS_HANDSHAKE', 'may have refused our client certificate "CN=serverish');
      assert.match(logger.text(), /not meant for TLS clients \(its extendedKeyUsage lacks clientAuth\)/);
      const keyBody = serverish.key.split('\n')[1]!;
      assert.ok(!logger.text().includes(keyBody));
    });
  });
});
