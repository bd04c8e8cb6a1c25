import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BbgateError, fileReadFailure } from '../errors.js';
import { describeCertificate } from './describe.js';
import type { TlsLogger } from './options.js';
import { isPrivateKeyLabel, pemBlocks } from './pem.js';

export interface SkippedTrustFile {
  file: string;
  reason: string;
}

export interface TrustRoots {
  /** trustRoots= as given: a directory of `*.pem` files (Twisted's), or one PEM file holding one or more certificates (bbgate's). */
  path: string;
  kind: 'directory' | 'file';
  certificates: X509Certificate[];
  /** The same certificates as PEM, for `tls.connect({ ca })`. */
  pem: string[];
  /** Every file, or certificate within a file, that is not trusted, and why. */
  skipped: SkippedTrustFile[];
}

/** Twisted's own test: whatever follows the last dot is `pem`, in any case. */
function isPemName(name: string): boolean {
  return name.split('.').pop()!.toLowerCase() === 'pem';
}

/** Files that look meant as certificates, whose being ignored deserves a warning rather than a note. */
const CERTIFICATE_LIKE = /\.(crt|cer|cert|der)$/i;

// Not checkIssued(): OpenSSL's version refuses a leaf whose keyUsage lacks keyCertSign.
function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.verify(cert.publicKey);
}

/**
 * Why a certificate cannot serve as a trust root, if it cannot. A self-signed leaf is kept: Twisted
 * accepts any certificate as a root, and trusting exactly the server's own self-signed certificate
 * is the usual way to pin it. Any other non-CA certificate is useless to OpenSSL (Node does not
 * accept partial chains), as is a certificate outside its validity period.
 */
function unusable(cert: X509Certificate, now: number): string | undefined {
  const { validFrom, validTo } = describeCertificate(cert);
  if (now > Date.parse(validTo)) return `expired on ${validTo}`;
  if (now < Date.parse(validFrom)) return `not valid before ${validFrom}`;
  if (!cert.ca && !isSelfSigned(cert)) {
    return "neither a CA certificate nor self-signed, so it can neither have issued the server's certificate nor pin it";
  }
  return undefined;
}

function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return 'a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'unreadable: permission denied';
  if (code === 'ENOENT') return 'unreadable: it does not exist (a dangling symbolic link?)';
  return `unreadable: ${code ?? (err as Error).message}`;
}

function notPem(data: Buffer): string {
  // DER certificates start with a SEQUENCE tag; text never holds a NUL.
  return data[0] === 0x30 || data.includes(0)
    ? 'not PEM: binary data, DER perhaps (convert it: openssl x509 -inform der -in FILE -out FILE.pem)'
    : 'not PEM: no -----BEGIN CERTIFICATE----- block';
}

interface FileVerdict {
  certificates: X509Certificate[];
  rejected: string[];
  holdsPrivateKey: boolean;
}

/** `-----BEGIN CERTIFICATE-----` lines beyond the complete blocks: a file cut short (or a copy and paste that was). */
function unterminated(text: string, complete: number): string | undefined {
  const begun = text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (begun <= complete) return undefined;
  const count = begun - complete;
  return `${count === 1 ? 'a certificate' : `${count} certificates`} cut short: -----BEGIN CERTIFICATE----- without its -----END CERTIFICATE----- line`;
}

function examine(data: Buffer, now: number): FileVerdict {
  const text = data.toString('latin1');
  const blocks = pemBlocks(text);
  const holdsPrivateKey = blocks.some((b) => isPrivateKeyLabel(b.label));
  const certBlocks = blocks.filter((b) => b.label === 'CERTIFICATE');
  const cutShort = unterminated(text, certBlocks.length);
  if (certBlocks.length === 0) {
    const rejected = cutShort ?? (blocks.length === 0 ? notPem(data) : `no certificate in it, only ${[...new Set(blocks.map((b) => b.label))].join(', ')}`);
    return { certificates: [], rejected: [rejected], holdsPrivateKey };
  }
  const verdict: FileVerdict = { certificates: [], rejected: cutShort ? [cutShort] : [], holdsPrivateKey };
  certBlocks.forEach((block, i) => {
    const which = certBlocks.length > 1 ? `certificate ${i + 1} of ${certBlocks.length}` : 'the certificate';
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block.text);
    } catch (err) {
      verdict.rejected.push(`${which} cannot be parsed (${(err as Error).message})`);
      return;
    }
    const reason = unusable(cert, now);
    if (reason) verdict.rejected.push(`${which} (${describeCertificate(cert).subject}) is ${reason}`);
    else verdict.certificates.push(cert);
  });
  return verdict;
}

const ADVICE = "put the CA certificate that issued the master's certificate there";

function trustError(message: string, cause?: unknown): BbgateError {
  return new BbgateError('TLS_NO_TRUST_ROOTS', message, cause === undefined ? undefined : { cause });
}

/** A directory (Twisted's form) or a regular file (bbgate's); anything else is refused. */
async function kindOf(path: string): Promise<TrustRoots['kind']> {
  let found;
  try {
    found = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'does not exist (a part of its path is a file)' : `cannot be read (${fileReadFailure(err)})`;
    throw trustError(`trustRoots ${path} ${why}: give a directory of .pem files, or one PEM file`, err);
  }
  if (found.isDirectory()) return 'directory';
  if (found.isFile()) return 'file';
  throw trustError(`trustRoots ${path} is neither a directory nor a regular file: give a directory of .pem files, or one PEM file`);
}

async function listDirectory(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    throw trustError(`the trustRoots directory ${dir} cannot be read (${fileReadFailure(err)})`, err);
  }
}

function noRootsError(dir: string, names: string[], skipped: SkippedTrustFile[]): BbgateError {
  const advice = `${ADVICE}, as a .pem file`;
  if (names.length === 0) return trustError(`the trustRoots directory ${dir} is empty: ${advice}`);
  const shown = skipped.slice(0, 5).map((s) => `${s.file}: ${s.reason}`);
  if (skipped.length > shown.length) shown.push(`and ${skipped.length - shown.length} more`);
  return trustError(`the trustRoots directory ${dir} holds no usable certificate (${shown.join('; ')}): ${advice}`);
}

/** Gathers the certificates of each file read, once each, and logs what is left out. */
class Gathering {
  readonly roots: TrustRoots;
  private readonly fingerprints = new Set<string>();
  private readonly now = Date.now();

  constructor(path: string, kind: TrustRoots['kind'], private readonly logger: TlsLogger | undefined) {
    this.roots = { path, kind, certificates: [], pem: [], skipped: [] };
  }

  /** `file` is the name within the directory, or the file's path. */
  skip(file: string, reason: string, quietly = false): void {
    this.roots.skipped.push({ file, reason });
    const fields = { trustRoots: this.roots.path, file, reason };
    if (quietly) this.logger?.info?.(fields, 'trustRoots: file skipped');
    else this.logger?.warn(fields, 'trustRoots: file skipped');
  }

  add(file: string, data: Buffer): void {
    const verdict = examine(data, this.now);
    for (const reason of verdict.rejected) this.skip(file, reason);
    const fields = { trustRoots: this.roots.path, file };
    if (verdict.holdsPrivateKey) this.logger?.warn(fields, 'trustRoots: this file holds a private key, which does not belong with trusted certificates');
    if (verdict.certificates.length > 1 && this.roots.kind === 'directory') {
      this.logger?.info?.({ ...fields, certificates: verdict.certificates.length }, 'trustRoots: every certificate of this file is trusted (Twisted would take only the first)');
    }
    for (const cert of verdict.certificates) {
      if (this.fingerprints.has(cert.fingerprint256)) continue;
      this.fingerprints.add(cert.fingerprint256);
      this.roots.certificates.push(cert);
      this.roots.pem.push(cert.toString());
    }
  }

  /** The roots, once something usable was found (`empty` says why not, otherwise). */
  finish(empty: () => BbgateError): TrustRoots {
    const { roots, logger } = this;
    if (roots.certificates.length === 0) throw empty();
    if (!roots.certificates.some(isSelfSigned)) {
      logger?.warn(
        { trustRoots: roots.path, certificates: roots.certificates.map((c) => describeCertificate(c).subject) },
        'trustRoots: no certificate here is a root (self-signed); OpenSSL needs the chain to end at a root in trustRoots, so add the root CA as well',
      );
    }
    logger?.info?.({ trustRoots: roots.path, certificates: roots.certificates.length, skipped: roots.skipped.length }, 'trustRoots loaded');
    return roots;
  }
}

/** Twisted's form: every `*.pem` file of the directory. */
async function loadDirectory(dir: string, logger?: TlsLogger): Promise<TrustRoots> {
  const names = await listDirectory(dir);
  const gathering = new Gathering(dir, 'directory', logger);
  for (const file of names) {
    if (!isPemName(file)) {
      gathering.skip(file, 'ignored: only *.pem files are read, as Twisted does', !CERTIFICATE_LIKE.test(file));
      continue;
    }
    let data: Buffer;
    try {
      data = await readFile(join(dir, file));
    } catch (err) {
      gathering.skip(file, readFailure(err));
      continue;
    }
    gathering.add(file, data);
  }
  return gathering.finish(() => noRootsError(dir, names, gathering.roots.skipped));
}

/** bbgate's form, as curl's --cacert: one PEM file (a CA bundle), every certificate in it. */
async function loadFile(file: string, logger?: TlsLogger): Promise<TrustRoots> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    throw trustError(`the trustRoots file ${file} cannot be read (${fileReadFailure(err)})`, err);
  }
  const gathering = new Gathering(file, 'file', logger);
  gathering.add(file, data);
  const reasons = gathering.roots.skipped.map((s) => s.reason);
  return gathering.finish(() => trustError(`the trustRoots file ${file} holds no usable certificate (${reasons.join('; ')}): ${ADVICE}, in PEM`));
}

/**
 * Reads trustRoots: a directory as Twisted does (every `*.pem` file, nothing else), except that
 * every certificate of a multi-certificate file is trusted, not just the first; or, a bbgate
 * extension buildbot-worker cannot read, one PEM file holding one or more certificates. Every
 * file or certificate left out is reported and logged instead of silently dropped.
 * Throws TLS_NO_TRUST_ROOTS when nothing usable remains: trusting nothing fails every connection.
 */
export async function loadTrustRoots(path: string, logger?: TlsLogger): Promise<TrustRoots> {
  return (await kindOf(path)) === 'file' ? loadFile(path, logger) : loadDirectory(path, logger);
}
