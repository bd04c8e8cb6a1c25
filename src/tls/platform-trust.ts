import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { pemBlocks } from './pem.js';

/** Where systems keep OpenSSL's CA bundle, the administrator's own CAs included. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // macOS, the BSDs
];

export interface PlatformTrust {
  pem: string[];
  /** What was read, for messages. */
  sources: string[];
}

function parses(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

async function certificatesIn(file: string): Promise<string[] | undefined> {
  try {
    const blocks = pemBlocks(await readFile(file, 'latin1'));
    // One malformed entry would make OpenSSL refuse the whole list.
    return blocks.filter((b) => b.label === 'CERTIFICATE' && parses(b.text)).map((b) => b.text);
  } catch {
    return undefined;
  }
}

async function load(extraFile: string | undefined, systemFile: string | undefined): Promise<PlatformTrust> {
  const trust: PlatformTrust = { pem: [...rootCertificates], sources: ["Node's built-in list of public CAs"] };
  for (const candidates of [extraFile ? [extraFile] : [], systemFile ? [systemFile] : SYSTEM_BUNDLES]) {
    for (const file of candidates) {
      const pem = await certificatesIn(file);
      if (pem) {
        trust.pem.push(...pem);
        trust.sources.push(file);
        break;
      }
    }
  }
  return trust;
}

const loaded = new Map<string, Promise<PlatformTrust>>();

/**
 * The CAs trusted without a trustRoots directory. Twisted's default is OpenSSL's default store:
 * the system bundle (SSL_CERT_FILE overrides it), which holds any CA the administrator added.
 * Node 20 trusts only its built-in list, so a master whose CA was added to the system would be
 * trusted by the Python worker and not by bbgate. Hence the union of Node's list,
 * NODE_EXTRA_CA_CERTS (which Node itself drops as soon as a `ca` is given) and the system bundle.
 * Read once per process, as Node reads its own, per value of those two variables.
 */
export function platformTrust(): Promise<PlatformTrust> {
  const { NODE_EXTRA_CA_CERTS: extra, SSL_CERT_FILE: system } = process.env;
  const key = `${extra ?? ''}\0${system ?? ''}`;
  let trust = loaded.get(key);
  if (!trust) loaded.set(key, (trust = load(extra, system)));
  return trust;
}
