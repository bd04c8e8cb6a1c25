// The parsed forms of a client connection string: what the dialer (../route/dial.ts) takes.

/** A parsed `tcp:` client endpoint, Twisted's grammar. */
export interface TcpEndpoint {
  type: 'tcp';
  host: string;
  port: number;
  /** Connect timeout in seconds (Twisted's default is 30). */
  timeout: number;
  bindAddress?: string;
}

/** A parsed `tls:` or `ssl:` client endpoint: TCP, then TLS over it. */
export interface TlsEndpoint {
  type: 'tls';
  host: string;
  port: number;
  timeout: number;
  bindAddress?: string;
  /** What the certificate is checked against and what SNI carries; for tls: the host, for ssl: hostname=. */
  serverName?: string;
  /** Directory of CA certificates (tls: trustRoots=, ssl: caCertsDir=); absent → the platform store. */
  trustRoots?: string;
  /** Client certificate PEM path (tls: certificate=, ssl: certKey=). */
  certificate?: string;
  /** Client key PEM path; if absent while certificate is set, the certificate file must also hold the key. */
  privateKey?: string;
  /**
   * fingerprint= (tls: and wss:// only, a bbgate extension): the SHA-256 the server's certificate
   * must have, as 64 upper-case hex digits. With trustRoots, checked besides the chain and name;
   * without, instead of them.
   */
  fingerprint?: string;
  /**
   * 'full' = chain + hostname (all tls:, and ssl: with hostname=); 'chain' = chain only
   * (ssl: caCertsDir= without hostname=); 'none' = nothing verified (ssl: with neither).
   */
  verify: 'full' | 'chain' | 'none';
  /** Which syntax it came from, for messages. */
  syntax: 'tls' | 'ssl';
  /** Dangerous-but-legal settings (the ssl: traps), to be logged and shown by the probe. */
  warnings: string[];
}

interface WsCommon {
  type: 'ws';
  host: string;
  /** Default 80 for ws://, 443 for wss://. */
  port: number;
  /** What the upgrade request asks for: the URL's path (at least "/") and its query string. */
  path: string;
  /** Seconds for the connect, the TLS handshake and the upgrade, each (default 30). */
  timeout: number;
  bindAddress?: string;
}

/**
 * A parsed `ws://` or `wss://` URL: TCP (or a CONNECT tunnel), TLS for wss://,
 * then an HTTP upgrade to WebSocket, for relays reachable only over HTTP(S).
 * wss:// always verifies chain and name, as tls: does.
 */
export type WsEndpoint =
  | (WsCommon & { secure: false } & { [K in TlsField]?: never })
  | (WsCommon & Pick<TlsEndpoint, TlsField> & { secure: true; serverName: string; verify: 'full'; warnings: string[] });

/** What only wss:// has; typed `never` on ws:// so that code reading them off any endpoint but tcp: still compiles. */
type TlsField = 'serverName' | 'trustRoots' | 'certificate' | 'privateKey' | 'fingerprint';

export type Endpoint = TcpEndpoint | TlsEndpoint | WsEndpoint;
