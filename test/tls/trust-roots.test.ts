// loadTrustRoots on directories as users leave them: Twisted's *.pem rule, multi-certificate
// bundles, and every file that cannot serve reported with its reason.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadTrustRoots } from '../../src/tls/index.js';
import { ecdsaPki, testPki, type TestPki } from '../helpers/pki.js';
import { recordingLogger, rejectsWith } from './support.js';

function der(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

describe('loadTrustRoots', () => {
  let pki: TestPki;
  before(async () => {
    pki = await testPki();
  });

  const freshDir = () => pki.trustDir();

  it('reads every *.pem file, every certificate of a bundle, and reports each file it leaves out', async () => {
    const dir = await freshDir();
    const expiredCa = await pki.issue({ name: 'expired-ca', commonName: 'Expired CA', ca: true, validFromDays: -60, validToDays: -1 });
    const files: Record<string, string | Buffer> = {
      'root.pem': pki.root.cert,
      'SHOUTING.PEM': pki.otherRoot.cert,
      'bundle.pem': `# a bundle\n${pki.intermediate.cert}\n${pki.root.cert}\n${expiredCa.cert}`,
      'pinned-leaf.pem': pki.selfSigned.cert,
      'issued-leaf.pem': pki.server.cert,
      'expired-ca.pem': expiredCa.cert,
      'ca.crt': pki.root.cert,
      'README': 'certificates for the master\n',
      'junk.pem': 'hello, world\n',
      'der.pem': der(pki.root.cert),
      'key.pem': pki.client.key,
      'broken.pem': '-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n',
      // A bundle whose second certificate was cut short (a truncated copy): the first is trusted, the cut one reported.
      'cut-bundle.pem': `${pki.otherRoot.cert}\n${pki.root.cert.split('\n').slice(0, 10).join('\n')}\n`,
      'cut.pem': pki.root.cert.replace('-----END CERTIFICATE-----', ''),
    };
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    await mkdir(join(dir, 'subdir.pem'));
    const logger = recordingLogger();
    const roots = await loadTrustRoots(dir, logger);

    const subjects = roots.certificates.map((c) => c.subject.split('\n')[0]).sort();
    assert.deepEqual(subjects, ['CN=Unrelated Root CA', 'CN=bbgate Test Intermediate CA', 'CN=bbgate Test Root CA', 'CN=localhost']);
    assert.equal(roots.pem.length, 4);
    assert.ok(roots.pem.every((p) => p.startsWith('-----BEGIN CERTIFICATE-----')));

    const reasons = Object.fromEntries(roots.skipped.map((s) => [s.file, s.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), [
      'README', 'broken.pem', 'bundle.pem', 'ca.crt', 'cut-bundle.pem', 'cut.pem', 'der.pem', 'expired-ca.pem', 'issued-leaf.pem', 'junk.pem', 'key.pem', 'subdir.pem',
    ]);
    assert.equal(reasons['cut-bundle.pem'], 'a certificate cut short: -----BEGIN CERTIFICATE----- without its -----END CERTIFICATE----- line');
    assert.equal(reasons['cut.pem'], 'a certificate cut short: -----BEGIN CERTIFICATE----- without its -----END CERTIFICATE----- line');
    assert.equal(reasons['ca.crt'], 'ignored: only *.pem files are read, as Twisted does');
    assert.match(reasons['bundle.pem']!, /^certificate 3 of 3 \(CN=Expired CA, O=bbgate tests\) is expired on \d{4}-/);
    assert.match(reasons['expired-ca.pem']!, /^the certificate \(CN=Expired CA, O=bbgate tests\) is expired on/);
    assert.match(reasons['issued-leaf.pem']!, /neither a CA certificate nor self-signed/);
    assert.equal(reasons['junk.pem'], 'not PEM: no -----BEGIN CERTIFICATE----- block');
    assert.match(reasons['der.pem']!, /^not PEM: binary data, DER perhaps \(convert it: openssl x509 -inform der/);
    assert.equal(reasons['key.pem'], 'no certificate in it, only PRIVATE KEY');
    assert.match(reasons['broken.pem']!, /^the certificate cannot be parsed/);
    assert.equal(reasons['subdir.pem'], 'a directory, not a file');

    // Every skip is logged; a stray README only as a note, a forgotten .crt as a warning.
    const log = (file: string) => logger.entries.filter((e) => e.fields.file === file).map((e) => e.level);
    assert.deepEqual(log('README'), ['info']);
    assert.deepEqual(log('ca.crt'), ['warn']);
    assert.deepEqual(log('junk.pem'), ['warn']);
    assert.ok(logger.entries.some((e) => e.fields.file === 'key.pem' && /holds a private key/.test(e.message)));
    assert.ok(logger.entries.some((e) => e.fields.file === 'bundle.pem' && e.fields.certificates === 2 && /Twisted would take only the first/.test(e.message)));
    assert.doesNotMatch(logger.text(), /PRIVATE KEY-----|MII/, 'no key or certificate material in the logs');
  });

  it('reports a file it cannot read (a dangling symbolic link, which even root cannot read)', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'root.pem'), pki.root.cert);
    await symlink(join(dir, 'moved-away.pem'), join(dir, 'gone.pem'));
    const roots = await loadTrustRoots(dir);
    assert.deepEqual(roots.skipped, [{ file: 'gone.pem', reason: 'unreadable: it does not exist (a dangling symbolic link?)' }]);
  });

  it('trusts a certificate once, however many files hold it', async () => {
    const roots = await loadTrustRoots(await pki.trustDir(pki.root, { ...pki.root, name: 'copy-of-root' }));
    assert.equal(roots.certificates.length, 1);
    assert.deepEqual(roots.skipped, []);
  });

  it('fails with TLS_NO_TRUST_ROOTS on an empty directory', async () => {
    const dir = await freshDir();
    await rejectsWith(loadTrustRoots(dir), 'TLS_NO_TRUST_ROOTS', `the trustRoots directory ${dir} is empty`, 'as a .pem file');
  });

  it('fails with TLS_NO_TRUST_ROOTS when nothing is usable, listing why', async () => {
    const dir = await freshDir();
    for (let i = 1; i <= 6; i++) await writeFile(join(dir, `ca-${i}.crt`), pki.root.cert);
    await writeFile(join(dir, 'junk.pem'), 'nothing');
    await rejectsWith(
      loadTrustRoots(dir),
      'TLS_NO_TRUST_ROOTS',
      `the trustRoots directory ${dir} holds no usable certificate`,
      'ca-1.crt: ignored: only *.pem files are read, as Twisted does',
      'and 2 more',
    );
  });

  it('fails with TLS_NO_TRUST_ROOTS on a missing directory; a file is read as one PEM file (see pin.test.ts)', async () => {
    await rejectsWith(loadTrustRoots('/nonexistent/bbgate-cas'), 'TLS_NO_TRUST_ROOTS', '/nonexistent/bbgate-cas does not exist');
    const roots = await loadTrustRoots(pki.root.certFile);
    assert.deepEqual([roots.kind, roots.path, roots.certificates.length], ['file', pki.root.certFile, 1]);
  });

  it('reads an ECDSA CA (made by the openssl command; node-forge cannot parse EC certificates)', async () => {
    const ec = await ecdsaPki();
    const dir = await freshDir();
    await writeFile(join(dir, 'ec-root.pem'), ec.root.cert);
    const roots = await loadTrustRoots(dir);
    assert.equal(roots.certificates[0]!.subject.split('\n').at(-1), 'CN=bbgate Test ECDSA Root CA');
    assert.equal(createPrivateKey(ec.root.key).asymmetricKeyType, 'ec');
  });
});
