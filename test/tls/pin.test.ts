// fingerprint= and a trustRoots PEM file against `openssl s_server`: a pin alone trusts exactly
// that certificate (chain and name unchecked), a pin with trustRoots is checked besides them, and
// a mismatch names both fingerprints. loadTrustRoots on a file: a bundle, and files that fail.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTrustRoots, startTls, type TlsOptions } from '../../src/tls/index.js';
import { testPki, type Credential, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';
import { dial, readBytes, recordingLogger, rejectsWith } from './support.js';

/** As fingerprint= keeps it: 64 hex digits. */
const fingerprint = (c: Credential) => new X509Certificate(c.cert).fingerprint256.replace(/:/g, '');

describe('fingerprint= and trustRoots files against openssl s_server', () => {
  let pki: TestPki;
  let files: string;
  const servers: LineProcess[] = [];

  async function sServer(credential: Credential, chain?: Credential): Promise<number> {
    const port = await freePort();
    const server = startProcess('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-rev', '-cert', credential.certFile, '-key', credential.keyFile, ...(chain ? ['-cert_chain', chain.certFile] : [])]);
    servers.push(server);
    await server.waitForLine(/^ACCEPT/, 10000);
    return port;
  }

  async function works(port: number, options: Partial<TlsOptions>): Promise<void> {
    const socket = await startTls(await dial(port), { serverName: 'localhost', verify: 'full', timeout: 5000, ...options });
    socket.write('pinned\n');
    assert.equal((await readBytes(socket, 7)).toString(), 'dennip\n');
    socket.destroy();
  }

  const connect = async (port: number, options: Partial<TlsOptions>) => startTls(await dial(port), { serverName: 'localhost', verify: 'full', timeout: 5000, ...options });

  before(async () => {
    pki = await testPki();
    files = await mkdtemp(join(tmpdir(), 'bbgate-pin-'));
  });
  after(() => servers.forEach((s) => s.kill()));

  it('a pin alone trusts exactly a self-signed certificate, and says that chain and name go unchecked', async () => {
    const port = await sServer(pki.selfSigned);
    // Without the pin: the self-signed certificate is refused, and the message offers the pin.
    const refused = await rejectsWith(connect(port, {}), 'TLS_SELF_SIGNED', `or pin it with fingerprint=${fingerprint(pki.selfSigned)} `);
    assert.match(refused, /its SHA-256 fingerprint is [0-9A-F:]{95}/);
    const logger = recordingLogger();
    await works(port, { fingerprint: fingerprint(pki.selfSigned), logger });
    assert.ok(logger.entries.some((e) => /fingerprint= pins; with no trustRoots, its chain and name are not checked/.test(e.message)), logger.text());
  });

  it('a pin alone does not check the name: a certificate for wrong.example, pinned, is the master', async () => {
    const port = await sServer(pki.wrongHost, pki.intermediate);
    await works(port, { fingerprint: fingerprint(pki.wrongHost) });
  });

  it('a wrong pin fails with TLS_FINGERPRINT naming the certificate, its fingerprint and the pinned one', async () => {
    const port = await sServer(pki.selfSigned);
    const pinned = fingerprint(pki.otherServer);
    await rejectsWith(
      connect(port, { fingerprint: pinned }),
      'TLS_FINGERPRINT',
      `"CN=localhost`,
      `has the SHA-256 fingerprint ${fingerprint(pki.selfSigned)}, not the pinned ${pinned}`,
    );
  });

  it('with trustRoots, the pin is checked besides the chain: both must hold', async () => {
    const port = await sServer(pki.server, pki.intermediate);
    const trust = await pki.trustDir(pki.root);
    await works(port, { trustRoots: trust, fingerprint: fingerprint(pki.server) });
    await rejectsWith(connect(port, { trustRoots: trust, fingerprint: fingerprint(pki.otherServer) }), 'TLS_FINGERPRINT', 'not the pinned');
    // The right pin does not excuse a chain the trustRoots do not vouch for.
    await rejectsWith(connect(port, { trustRoots: await pki.trustDir(pki.otherRoot), fingerprint: fingerprint(pki.server) }), 'TLS_UNTRUSTED');
  });

  it('trustRoots= may name a PEM file: a bundle of the intermediate and the root serves a server that sends its leaf only', async () => {
    const bundle = join(files, 'ca-bundle.crt');
    await writeFile(bundle, `# our CAs\n${pki.intermediate.cert}${pki.root.cert}`);
    const roots = await loadTrustRoots(bundle);
    assert.equal(roots.kind, 'file');
    assert.equal(roots.certificates.length, 2);
    const port = await sServer(pki.server);
    await works(port, { trustRoots: bundle });
    // A file without the root the chain ends at: untrusted, and the message names the file.
    const intermediateOnly = join(files, 'intermediate.pem');
    await writeFile(intermediateOnly, pki.otherRoot.cert);
    await rejectsWith(connect(port, { trustRoots: intermediateOnly }), 'TLS_UNTRUSTED', `the trustRoots file ${intermediateOnly} (1 certificate)`, `add that CA's certificate to ${intermediateOnly}`);
  });

  it('a trustRoots file with no usable certificate, and one that cannot be read, fail with TLS_NO_TRUST_ROOTS', async () => {
    const key = join(files, 'key.pem');
    await writeFile(key, pki.client.key);
    await rejectsWith(loadTrustRoots(key), 'TLS_NO_TRUST_ROOTS', `the trustRoots file ${key} holds no usable certificate (no certificate in it, only PRIVATE KEY)`);
    const text = join(files, 'notes.txt');
    await writeFile(text, 'the CA is on the wiki\n');
    await rejectsWith(loadTrustRoots(text), 'TLS_NO_TRUST_ROOTS', 'holds no usable certificate (not PEM: no -----BEGIN CERTIFICATE----- block)');
    const expired = join(files, 'expired.pem');
    await writeFile(expired, pki.expired.cert);
    await rejectsWith(loadTrustRoots(expired), 'TLS_NO_TRUST_ROOTS', /holds no usable certificate \(the certificate \(CN=localhost.*\) is expired on/);
    const dangling = join(files, 'gone.pem');
    await symlink(join(files, 'moved-away.pem'), dangling);
    await rejectsWith(loadTrustRoots(dangling), 'TLS_NO_TRUST_ROOTS', `trustRoots ${dangling} does not exist: give a directory of .pem files, or one PEM file`);
    await rejectsWith(loadTrustRoots(join(key, 'x.pem')), 'TLS_NO_TRUST_ROOTS', 'does not exist (a part of its path is a file)');
    const fifo = join(files, 'fifo.pem');
    execFileSync('mkfifo', [fifo]);
    await rejectsWith(loadTrustRoots(fifo), 'TLS_NO_TRUST_ROOTS', 'is neither a directory nor a regular file');
  });
});
