import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BbgateError } from '../errors.js';
import { describeCertificate } from './describe.js';
import type { TlsLogger } from './options.js';
import { isPrivateKeyLabel, pemBlocks } from './pem.js';

/** Our side of mutual TLS, checked before any connection so a mistake is named as ours, not the server's. */
export interface ClientCertificate {
  /** Our certificate, then any chain that followed it in the file, PEM. */
  cert: string;
  /** The private key, PKCS#8 PEM. A secret: never logged, never in a message. */
  key: string;
  leaf: X509Certificate;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function clientCertError(message: string, cause?: unknown): BbgateError {
  return new BbgateError('TLS_CLIENT_CERT', message, { cause });
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'latin1');
  } catch (err) {
    throw clientCertError(`cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
}

function parseCertificates(text: string, path: string): { leaf: X509Certificate; chain: X509Certificate[] } {
  const [first, ...rest] = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE');
  if (!first) throw clientCertError(`${path} holds no certificate (no -----BEGIN CERTIFICATE----- block)`);
  try {
    return { leaf: new X509Certificate(first.text), chain: rest.map((b) => new X509Certificate(b.text)) };
  } catch (err) {
    throw clientCertError(`the client certificate in ${path} cannot be parsed: ${(err as Error).message}`, err);
  }
}

function parseKey(text: string, path: string, inCertificateFile: boolean): KeyObject {
  const block = pemBlocks(text).find((b) => isPrivateKeyLabel(b.label));
  if (!block) {
    throw clientCertError(
      inCertificateFile
        ? `${path} holds no private key: give privateKey=, or append the key to that file`
        : `${path} holds no private key (no -----BEGIN … PRIVATE KEY----- block)`,
    );
  }
  try {
    return createPrivateKey(block.text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE' || block.label.startsWith('ENCRYPTED')) {
      throw clientCertError(`the private key in ${path} is encrypted; bbgate, like Twisted, needs it unencrypted (openssl pkey -in ${path} -out NEW.key)`, err);
    }
    throw clientCertError(`the private key in ${path} cannot be parsed: ${(err as Error).message}`, err);
  }
}

/**
 * Loads the worker's certificate and key as Twisted's `tls:` endpoint takes them: `certificate`
 * holds the certificate (and any chain after it), and the key too unless `privateKey` names
 * another file.
 */
export async function loadClientCertificate(certificate: string, privateKey: string | undefined, logger?: TlsLogger): Promise<ClientCertificate> {
  const certText = await readText(certificate, 'client certificate');
  const { leaf, chain } = parseCertificates(certText, certificate);
  const keyPath = privateKey ?? certificate;
  const key = parseKey(privateKey === undefined ? certText : await readText(privateKey, 'private key'), keyPath, privateKey === undefined);
  const described = describeCertificate(leaf);
  if (!leaf.checkPrivateKey(key)) {
    throw clientCertError(`the private key in ${keyPath} does not belong to the certificate in ${certificate} (${described.subject})`);
  }
  const now = Date.now();
  if (now > Date.parse(described.validTo) || now < Date.parse(described.validFrom)) {
    logger?.warn({ certificate, validFrom: described.validFrom, validTo: described.validTo }, 'our client certificate is outside its validity period: servers will refuse it');
  }
  if (leaf.keyUsage && !leaf.keyUsage.includes(CLIENT_AUTH)) {
    logger?.warn({ certificate, extendedKeyUsage: leaf.keyUsage }, 'our client certificate is not meant for TLS clients (its extendedKeyUsage lacks clientAuth): servers may refuse it');
  }
  return {
    cert: [leaf, ...chain].map((c) => c.toString()).join(''),
    key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    leaf,
  };
}
