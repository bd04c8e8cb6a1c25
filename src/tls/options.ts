/**
 * How much of the server's identity is checked: `full` the chain and the name (Twisted's `tls:`,
 * and `ssl:` with `hostname=`), `chain` the chain only (`ssl:` with `caCertsDir=` but no
 * `hostname=`), `none` nothing at all (`ssl:` with neither: Twisted's silent trap, kept for
 * compatibility and loudly logged).
 */
export type TlsVerify = 'full' | 'chain' | 'none';

export interface TlsLogger {
  warn(fields: object, message: string): void;
  info?(fields: object, message: string): void;
}

export interface TlsOptions {
  /**
   * The host we dialled: a DNS name (checked against the certificate's DNS names and sent as
   * SNI) or an IP literal, brackets optional (checked against its IP addresses; never sent as
   * SNI, which has no room for addresses). Required for `verify: 'full'`.
   */
  serverName?: string;
  /**
   * A directory of CA certificates (`*.pem`), or one PEM file of them; when given, the only CAs
   * trusted. Absent: this machine's CA store, as Twisted's default (see platform-trust.ts), unless
   * `fingerprint` is given.
   */
  trustRoots?: string;
  /**
   * The SHA-256 fingerprint the server's certificate must have, as 64 upper-case hex digits (see
   * `pinOf`). With `trustRoots`, checked after the chain and name; without, instead of
   * them: the server's certificate is then trusted for being exactly that one.
   */
  fingerprint?: string;
  /** Our certificate (PEM path), for servers that require one; holds the key too unless `privateKey` is given. */
  certificate?: string;
  privateKey?: string;
  verify: TlsVerify;
  /** Milliseconds for the whole handshake, the server's acceptance of our certificate included. Default 30000. */
  timeout?: number;
  logger?: TlsLogger;
}
