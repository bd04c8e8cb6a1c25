// startTls against `openssl s_server`: a TLS peer that is not Node, for a chain, a required client
// certificate, and an ECDSA certificate (which node-forge cannot make). scripts/setup.sh installs openssl.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeCertificate, startTls, type TlsOptions } from '../../src/tls/index.js';
import { ecdsaPki, testPki, type EcdsaPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { dial, readBytes, rejectsWith } from './support.js';

describe('startTls against openssl s_server', () => {
  let pki: TestPki;
  let ec: EcdsaPki;
  let rootDir: string;
  const servers: LineProcess[] = [];

  /** s_server in -rev mode: it answers each line with the line reversed. */
  async function sServer(...args: string[]): Promise<number> {
    const port = await freePort();
    const server = startProcess('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-rev', ...args]);
    servers.push(server);
    await server.waitForLine(/^ACCEPT/, 10000);
    return port;
  }

  async function connect(port: number, options: Partial<TlsOptions>) {
    return startTls(await dial(port), { serverName: 'localhost', trustRoots: rootDir, verify: 'full', timeout: 5000, ...options });
  }

  async function exchange(socket: Awaited<ReturnType<typeof connect>>) {
    socket.write('hello bbgate\n');
    assert.equal((await readBytes(socket, 13)).toString(), 'etagbb olleh\n');
  }

  before(async () => {
    pki = await testPki();
    ec = await ecdsaPki();
    rootDir = await pki.trustDir(pki.root);
  });
  after(() => servers.forEach((s) => s.kill()));

  it('a good chain (leaf plus intermediate) to our root', async () => {
    const port = await sServer('-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile);
    const socket = await connect(port, {});
    await exchange(socket);
    socket.destroy();
  });

  it('a server that sends no session ticket and waits for us to speak: accepted once the acceptance wait ends, nothing lost', async () => {
    const port = await sServer('-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile, '-num_tickets', '0');
    const socket = await connect(port, {});
    await exchange(socket);
    socket.destroy();
  });

  it('a client certificate required (-Verify) and missing, then supplied', async () => {
    const port = await sServer('-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile, '-Verify', '2', '-CAfile', pki.root.certFile);
    await rejectsWith(connect(port, {}), 'TLS_HANDSHAKE', 'the server requires a client certificate and we sent none', 'TLS alert "certificate required"');
    const socket = await connect(port, { certificate: pki.client.certFile, privateKey: pki.client.keyFile });
    await exchange(socket);
    socket.destroy();
  });

  it('a client certificate from a CA the server does not know: the alert names it', async () => {
    const port = await sServer(
      '-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile,
      '-Verify', '2', '-CAfile', pki.root.certFile, '-verify_return_error',
    );
    const stranger = await pki.issue({ name: 'openssl-stranger', commonName: 'stranger-worker', issuer: pki.otherRoot, usage: 'client' });
    await rejectsWith(
      connect(port, { certificate: stranger.certFile, privateKey: stranger.keyFile }),
      'TLS_HANDSHAKE',
      'the server refused our client certificate "CN=stranger-worker, O=bbgate tests" (issued by "CN=Unrelated Root CA, O=bbgate tests")',
      'TLS alert "unknown ca"',
      'it does not trust the CA that issued it',
    );
  });

  it('a server that does not serve the name we ask for (SNI), with a fatal alert', async () => {
    const port = await sServer(
      '-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert2', pki.server.certFile, '-key2', pki.server.keyFile,
      '-servername', 'master.example', '-servername_fatal',
    );
    await rejectsWith(connect(port, {}), 'TLS_HANDSHAKE', 'the server does not serve the name we asked for, "localhost" (TLS alert "unrecognized name")');
  });

  it('an ECDSA server certificate under an ECDSA root in trustRoots', async () => {
    const port = await sServer('-cert', ec.server.certFile, '-key', ec.server.keyFile);
    const socket = await connect(port, { trustRoots: await pki.trustDir(ec.root), serverName: '127.0.0.1' });
    const peer = describeCertificate(socket.getPeerCertificate());
    assert.equal(peer.issuer, 'O=bbgate tests, CN=bbgate Test ECDSA Root CA');
    assert.deepEqual(peer.san, ['DNS:localhost', 'IP Address:127.0.0.1']);
    await exchange(socket);
    socket.destroy();
  });
});
