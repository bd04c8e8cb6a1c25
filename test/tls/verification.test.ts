// startTls against real TLS servers on loopback: what each kind of server certificate does under
// each verify mode, and what the error says.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTls, type TlsOptions } from '../../src/tls/index.js';
import { testPki, type Credential, type TestPki } from '../helpers/pki.js';
import { dial, PB_OFFER, readBytes, recordingLogger, rejectsWith, tlsPeer, type TlsPeer } from './support.js';

describe('startTls: verifying the server', () => {
  let pki: TestPki;
  let rootDir: string;
  const peers: TlsPeer[] = [];

  async function serve(cred: Credential, chain = cred.cert, host = '127.0.0.1'): Promise<TlsPeer> {
    const peer = await tlsPeer({ key: cred.key, cert: chain }, host);
    peers.push(peer);
    return peer;
  }

  async function connect(peer: TlsPeer, options: TlsOptions, host = '127.0.0.1') {
    return startTls(await dial(peer.port, host), { timeout: 5000, ...options });
  }

  before(async () => {
    pki = await testPki();
    rootDir = await pki.trustDir(pki.root);
  });
  after(() => Promise.all(peers.map((p) => p.close())));

  it('accepts a good chain by DNS name, sends SNI, and carries data both ways', async () => {
    const peer = await serve(pki.server, pki.serverChain);
    const logger = recordingLogger();
    const socket = await connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full', logger });
    try {
      assert.equal(socket.authorized, true);
      assert.deepEqual(await readBytes(socket, PB_OFFER.length), PB_OFFER, 'the greeting the server sent at once is not lost');
      socket.resume();
      socket.write('ping');
      assert.equal((await readBytes(socket, 4)).toString(), 'ping');
      assert.equal(peer.seen[0]!.servername, 'localhost');
      const established = logger.entries.find((e) => e.message === 'TLS established');
      assert.equal(established?.fields.subject, 'CN=localhost, O=bbgate tests');
    } finally {
      socket.destroy();
    }
  });

  it('closes cleanly: our end reaches the server, and its end reaches us', async () => {
    const peer = await serve(pki.server, pki.serverChain);
    const socket = await connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' });
    const ended = new Promise((resolve) => socket.once('end', resolve));
    socket.resume();
    socket.end();
    // The server pipes to itself, so it ends when we do.
    await ended;
    await new Promise((resolve) => socket.once('close', resolve));
  });

  for (const address of ['127.0.0.1', '::1']) {
    it(`accepts a good chain by IP address (${address}) against the certificate's IP SANs, without SNI`, async () => {
      const peer = await serve(pki.server, pki.serverChain, address);
      const socket = await connect(peer, { serverName: address === '::1' ? '[::1]' : address, trustRoots: rootDir, verify: 'full' }, address);
      socket.destroy();
      assert.equal(peer.seen[0]!.servername, false);
    });
  }

  it('refuses an unknown CA, naming the chain, the missing issuer and the trustRoots directory', async () => {
    const peer = await serve(pki.server, pki.serverChain);
    const otherDir = await pki.trustDir(pki.otherRoot);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: otherDir, verify: 'full' }),
      'TLS_UNTRUSTED',
      'chains up to "CN=bbgate Test Intermediate CA, O=bbgate tests", issued by "CN=bbgate Test Root CA, O=bbgate tests"',
      `not in the trustRoots directory ${otherDir} (1 certificate)`,
      `add that CA's certificate to ${otherDir}`,
    );
  });

  it("refuses a private CA that is not in this machine's CA store", async () => {
    const peer = await serve(pki.server, pki.serverChain);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', verify: 'full' }),
      'TLS_UNTRUSTED',
      `issued by "CN=bbgate Test Root CA, O=bbgate tests", which is not in this machine's CA store (Node's built-in list of public CAs`,
      'give trustRoots= a directory or PEM file',
    );
  });

  for (const variable of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS']) {
    it(`without trustRoots, trusts the CA bundle ${variable} names, as OpenSSL (and so Twisted) does`, async () => {
      const peer = await serve(pki.server, pki.serverChain);
      const saved = process.env[variable];
      process.env[variable] = pki.root.certFile;
      try {
        const socket = await connect(peer, { serverName: 'localhost', verify: 'full' });
        socket.destroy();
        const self = await serve(pki.selfSigned);
        await rejectsWith(connect(self, { serverName: 'localhost', verify: 'full' }), 'TLS_SELF_SIGNED', `, ${pki.root.certFile}`, 'put a copy of it in a trustRoots directory');
      } finally {
        if (saved === undefined) delete process.env[variable];
        else process.env[variable] = saved;
      }
    });
  }

  it('refuses a chain that ends at a root the server sent itself', async () => {
    const peer = await serve(pki.otherServer, pki.otherServer.cert + pki.otherRoot.cert);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_UNTRUSTED',
      'chains up to the root CA "CN=Unrelated Root CA, O=bbgate tests"',
    );
  });

  it('needs the root: a trusted intermediate alone is not enough (as in Twisted), and the error names the missing root', async () => {
    const peer = await serve(pki.server, pki.serverChain);
    const logger = recordingLogger();
    const dir = await pki.trustDir(pki.intermediate);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: dir, verify: 'full', logger }),
      'TLS_UNTRUSTED',
      'issued by "CN=bbgate Test Root CA, O=bbgate tests", which is not in',
    );
    assert.match(logger.text(), /no certificate here is a root/);
  });

  it('refuses a certificate for another name, listing the names it has and the one expected', async () => {
    const peer = await serve(pki.wrongHost, pki.wrongHost.cert + pki.intermediate.cert);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_HOSTNAME',
      'is for DNS:wrong.example, DNS:www.wrong.example, not for "localhost"',
    );
    await rejectsWith(
      connect(peer, { serverName: '127.0.0.1', trustRoots: rootDir, verify: 'full' }),
      'TLS_HOSTNAME',
      'not for the IP address 127.0.0.1',
      '"IP Address" subjectAltName',
    );
  });

  it('refuses an expired certificate, giving its notAfter and our clock', async () => {
    const peer = await serve(pki.expired, pki.expired.cert + pki.intermediate.cert);
    const notAfter = new Date(new X509Certificate(pki.expired.cert).validTo).toISOString();
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_EXPIRED',
      `the server's certificate "CN=localhost, O=bbgate tests" expired on ${notAfter}`,
      "this machine's clock says",
    );
  });

  it('refuses a certificate that is not valid yet, pointing at the clock', async () => {
    const peer = await serve(pki.notYetValid, pki.notYetValid.cert + pki.intermediate.cert);
    const notBefore = new Date(new X509Certificate(pki.notYetValid.cert).validFrom).toISOString();
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_NOT_YET_VALID',
      `is not valid before ${notBefore}`,
      "check this machine's clock",
    );
  });

  it('refuses a self-signed leaf, giving its fingerprint; the same leaf in trustRoots pins it', async () => {
    const peer = await serve(pki.selfSigned);
    const fingerprint = new X509Certificate(pki.selfSigned.cert).fingerprint256;
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_SELF_SIGNED',
      'is self-signed and not in the trustRoots directory',
      fingerprint,
    );
    const pinned = await connect(peer, { serverName: 'localhost', trustRoots: await pki.trustDir(pki.selfSigned), verify: 'full' });
    pinned.destroy();
  });

  it('refuses a certificate not meant for servers', async () => {
    const clientOnly = await pki.issue({ name: 'client-as-server', commonName: 'localhost', issuer: pki.intermediate, usage: 'client', sans: ['DNS:localhost'] });
    const peer = await serve(clientOnly, clientOnly.cert + pki.intermediate.cert);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_UNTRUSTED',
      'is not meant for TLS servers',
      'OpenSSL: INVALID_PURPOSE',
    );
  });

  it("verify 'chain' accepts a trusted certificate for another name, and still refuses an unknown CA", async () => {
    const wrong = await serve(pki.wrongHost, pki.wrongHost.cert + pki.intermediate.cert);
    const logger = recordingLogger();
    const socket = await connect(wrong, { serverName: 'localhost', trustRoots: rootDir, verify: 'chain', logger });
    socket.destroy();
    assert.match(logger.text(), /verified, but not the name in it/);
    const other = await serve(pki.otherServer, pki.otherServer.cert + pki.otherRoot.cert);
    await rejectsWith(connect(other, { serverName: 'localhost', trustRoots: rootDir, verify: 'chain' }), 'TLS_UNTRUSTED');
  });

  it("verify 'none' accepts anything, and warns with what verification would have said", async () => {
    for (const [cred, chain, code] of [
      [pki.selfSigned, pki.selfSigned.cert, 'TLS_SELF_SIGNED'],
      [pki.otherServer, pki.otherServer.cert, 'TLS_UNTRUSTED'],
      [pki.wrongHost, pki.wrongHost.cert + pki.intermediate.cert, 'TLS_HOSTNAME'],
    ] as const) {
      const peer = await serve(cred, chain);
      const logger = recordingLogger();
      const socket = await connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'none', logger });
      assert.deepEqual(await readBytes(socket, PB_OFFER.length), PB_OFFER);
      socket.destroy();
      const warning = logger.entries.find((e) => e.level === 'warn' && /without verifying/.test(e.message));
      assert.equal(warning?.fields.wouldHaveFailed, code, logger.text());
    }
  });

  it('names a server stuck on TLS 1.1', async () => {
    const peer = await tlsPeer({ key: pki.server.key, cert: pki.serverChain, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    peers.push(peer);
    await rejectsWith(
      connect(peer, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }),
      'TLS_HANDSHAKE',
      'the server and bbgate have no TLS version in common (TLS alert "protocol version"; bbgate speaks TLS 1.2 and 1.3)',
    );
  });

  it("verify 'full' without a serverName is a programming error", async () => {
    const peer = await serve(pki.server, pki.serverChain);
    const raw = await dial(peer.port);
    await assert.rejects(startTls(raw, { verify: 'full' }), TypeError);
    raw.destroy();
  });

  it('destroys the socket it was given when it fails', async () => {
    const peer = await serve(pki.selfSigned);
    const raw = await dial(peer.port);
    await rejectsWith(startTls(raw, { serverName: 'localhost', trustRoots: rootDir, verify: 'full' }), 'TLS_SELF_SIGNED');
    assert.equal(raw.destroyed, true);
  });
});
