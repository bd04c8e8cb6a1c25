export { describeCertificate, pinOf, type CertificateDescription } from './describe.js';
export type { TlsLogger, TlsOptions, TlsVerify } from './options.js';
export { startTls } from './start.js';
export { loadTrustRoots, type SkippedTrustFile, type TrustRoots } from './trust-roots.js';
