// A throwaway PKI for the TLS tests: RSA certificates built with node-forge, written as PEM
// files to a temporary directory removed at exit. Keys come from Node's crypto (forge's own RSA
// key generation takes seconds per key) and are cached per process, as is the PKI itself.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export interface Credential {
  name: string;
  /** The certificate, PEM. */
  cert: string;
  /** The private key, PKCS#8 PEM. */
  key: string;
  certFile: string;
  keyFile: string;
}

export interface IssueOptions {
  name: string;
  commonName?: string;
  /** Signs the certificate; absent: self-signed. */
  issuer?: Credential;
  ca?: boolean;
  /** Leaves only: `DNS:name` and `IP:address` entries. */
  sans?: string[];
  usage?: 'server' | 'client';
  /** Days from now; negative is in the past. */
  validFromDays?: number;
  validToDays?: number;
  /** A second certificate with the same name must not reuse the first one's key. */
  keyName?: string;
}

export interface TestPki {
  dir: string;
  root: Credential;
  intermediate: Credential;
  /** localhost, 127.0.0.1 and ::1, issued by the intermediate. */
  server: Credential;
  /** The server certificate followed by the intermediate: what a server presents. */
  serverChain: string;
  /** A worker's certificate (clientAuth), issued by the root. */
  client: Credential;
  expired: Credential;
  notYetValid: Credential;
  /** Issued by the intermediate for wrong.example only. */
  wrongHost: Credential;
  /** A self-signed leaf (CA:FALSE) for localhost and 127.0.0.1. */
  selfSigned: Credential;
  /** A root no one else trusts, and a localhost certificate it issued. */
  otherRoot: Credential;
  otherServer: Credential;
  issue(options: IssueOptions): Promise<Credential>;
  /** A fresh directory holding `NAME.pem` for each credential's certificate (no credentials: an empty one). */
  trustDir(...credentials: Credential[]): Promise<string>;
}

const keys = new Map<string, { pem: string; publicKey: forge.pki.PublicKey }>();

function keyFor(name: string) {
  let key = keys.get(name);
  if (!key) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    key = {
      pem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      publicKey: forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string),
    };
    keys.set(name, key);
  }
  return key;
}

const DAY = 86_400_000;

function altName(entry: string) {
  const colon = entry.indexOf(':');
  const value = entry.slice(colon + 1);
  return entry.slice(0, colon) === 'IP' ? { type: 7, ip: value } : { type: 2, value };
}

function buildCertificate(options: IssueOptions, issuerCert: forge.pki.Certificate | undefined): forge.pki.Certificate {
  const key = keyFor(options.keyName ?? options.name);
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.publicKey;
  // A leading 01 keeps the DER integer positive and minimally encoded, as OpenSSL insists.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() + (options.validFromDays ?? -1) * DAY);
  cert.validity.notAfter = new Date(Date.now() + (options.validToDays ?? 30) * DAY);
  const subject = [{ name: 'commonName', value: options.commonName ?? options.name }, { name: 'organizationName', value: 'bbgate tests' }];
  cert.setSubject(subject);
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: options.ca ?? false, critical: true },
    options.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (issuerCert) extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuerCert.generateSubjectKeyIdentifier().getBytes() });
  if (!options.ca) extensions.push({ name: 'extKeyUsage', serverAuth: options.usage !== 'client', clientAuth: options.usage === 'client' });
  if (options.sans?.length) extensions.push({ name: 'subjectAltName', altNames: options.sans.map(altName) });
  cert.setExtensions(extensions);
  return cert;
}

/** What forge's cert.sign() does, with Node's native RSA instead of forge's JavaScript one (40 times faster). */
function signWithNode(cert: forge.pki.Certificate, keyPem: string): void {
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption!;
  // Missing from @types/node-forge, present in forge since 0.7.
  cert.tbsCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
  cert.signature = sign('sha256', tbs, keyPem).toString('binary');
}

async function writeCredential(dir: string, name: string, cert: string, key: string): Promise<Credential> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, cert);
  await writeFile(keyFile, key, { mode: 0o600 });
  return { name, cert, key, certFile, keyFile };
}

function makeIssuer(dir: string) {
  const issued = new Map<string, { cert: forge.pki.Certificate; keyName: string }>();
  return async (options: IssueOptions): Promise<Credential> => {
    const issuer = options.issuer && issued.get(options.issuer.name);
    if (options.issuer && !issuer) throw new Error(`unknown issuer ${options.issuer.name}`);
    const keyName = options.keyName ?? options.name;
    const cert = buildCertificate(options, issuer?.cert);
    signWithNode(cert, keyFor(issuer?.keyName ?? keyName).pem);
    issued.set(options.name, { cert, keyName });
    // forge writes CRLF line ends; Twisted's PEM readers (extraCertChain=) want LF, as openssl writes.
    return writeCredential(dir, options.name, forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), keyFor(keyName).pem);
  };
}

async function temporaryDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function build(): Promise<TestPki> {
  const dir = await temporaryDir('bbgate-pki-');
  const issue = makeIssuer(dir);
  const local = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
  const root = await issue({ name: 'root-ca', commonName: 'bbgate Test Root CA', ca: true, validFromDays: -10, validToDays: 3650 });
  const intermediate = await issue({ name: 'intermediate-ca', commonName: 'bbgate Test Intermediate CA', ca: true, issuer: root });
  const server = await issue({ name: 'server', commonName: 'localhost', issuer: intermediate, sans: local });
  const otherRoot = await issue({ name: 'other-root-ca', commonName: 'Unrelated Root CA', ca: true });
  let dirs = 0;
  return {
    dir,
    root,
    intermediate,
    server,
    serverChain: server.cert + intermediate.cert,
    client: await issue({ name: 'client', commonName: 'worker-1', issuer: root, usage: 'client' }),
    // Server certificates share the server's key: a key per certificate would only cost time.
    expired: await issue({ name: 'expired', keyName: 'server', commonName: 'localhost', issuer: intermediate, sans: local, validFromDays: -30, validToDays: -2 }),
    notYetValid: await issue({ name: 'not-yet-valid', keyName: 'server', commonName: 'localhost', issuer: intermediate, sans: local, validFromDays: 2, validToDays: 30 }),
    wrongHost: await issue({ name: 'wrong-host', keyName: 'server', commonName: 'wrong.example', issuer: intermediate, sans: ['DNS:wrong.example', 'DNS:www.wrong.example'] }),
    selfSigned: await issue({ name: 'self-signed', commonName: 'localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'] }),
    otherRoot,
    otherServer: await issue({ name: 'other-server', keyName: 'server', commonName: 'localhost', issuer: otherRoot, sans: local }),
    issue,
    async trustDir(...credentials) {
      const trust = join(dir, `trust-${++dirs}`);
      await mkdir(trust);
      for (const c of credentials) await writeFile(join(trust, `${c.name}.pem`), c.cert);
      return trust;
    },
  };
}

let pki: Promise<TestPki> | undefined;

/** The PKI, built once per process. */
export function testPki(): Promise<TestPki> {
  return (pki ??= build());
}

export interface EcdsaPki {
  root: Credential;
  server: Credential;
}

/**
 * An ECDSA (P-256) root and a localhost server certificate it issued, made with the `openssl`
 * command because forge cannot sign or even parse EC certificates. Undefined without `openssl`.
 */
export async function ecdsaPki(): Promise<EcdsaPki> {
  const dir = await temporaryDir('bbgate-pki-ec-');
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', path('ec-root.key'), '-out', path('ec-root.pem'), '-days', '30',
    '-subj', '/O=bbgate tests/CN=bbgate Test ECDSA Root CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-new', ...ec, '-keyout', path('ec-server.key'), '-out', path('ec-server.csr'), '-subj', '/O=bbgate tests/CN=localhost');
  await writeFile(path('ec-server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n');
  openssl('x509', '-req', '-in', path('ec-server.csr'), '-CA', path('ec-root.pem'), '-CAkey', path('ec-root.key'), '-CAcreateserial',
    '-days', '30', '-extfile', path('ec-server.ext'), '-out', path('ec-server.pem'));
  const load = async (name: string): Promise<Credential> => ({
    name,
    cert: await readFile(path(`${name}.pem`), 'utf8'),
    key: await readFile(path(`${name}.key`), 'utf8'),
    certFile: path(`${name}.pem`),
    keyFile: path(`${name}.key`),
  });
  return { root: await load('ec-root'), server: await load('ec-server') };
}
