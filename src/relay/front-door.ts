// What every relay listener does before its own protocol starts: accept on a plain TCP server,
// count the connection, take a trusted load balancer's PROXY header off, count the connection
// against its source, and hand the socket to
// the protocol's server; read its certificate and key before listening; and bind, with a bind
// failure reported as a configuration error.
import { readFile } from 'node:fs/promises';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { TlsOptions, TLSSocket } from 'node:tls';
import { BbgateError } from '../errors.js';
import { hostPort } from '../address/host-port.js';
import type { AddressSet } from './policy.js';
import { connectionAddresses, proxyHeaderGate } from './proxy-protocol.js';

export interface FrontDoorOptions {
  /** Sees each raw connection first; false destroys it at once (the relay counts connections here). */
  onSocket?: (socket: Socket) => boolean;
  /** Sees each connection once its source is known (after any PROXY header); false destroys it at once. */
  onSource?: (socket: Socket) => boolean;
  /** Load balancers whose connections open with a PROXY header. */
  proxyFrom?: AddressSet;
  /** How long a PROXY header may take. */
  timeoutMs: number;
  /** A connection from proxyFrom without a valid header, dropped; `peer` is the load balancer. */
  onProxyHeaderError: (peer: string, err: Error) => void;
  /** Node's HTTP server keeps a half-closed socket open; its TLS server, and PB, do not. */
  allowHalfOpen?: boolean;
}

/**
 * The plain TCP server every listener accepts on. The protocol's own server (TLS, HTTP) never
 * listens: it is handed each connection once any PROXY header is off, which it would otherwise
 * read as the start of a ClientHello or a request.
 */
export function frontDoor(options: FrontDoorOptions, next: (socket: Socket) => void): Server {
  const server = createTcpServer({ noDelay: true, allowHalfOpen: options.allowHalfOpen ?? false });
  const pass = proxyHeaderGate(options.proxyFrom, options.timeoutMs, options.onProxyHeaderError);
  server.on('connection', (socket: Socket) => {
    if (options.onSocket && !options.onSocket(socket)) {
      socket.destroy();
      return;
    }
    pass(socket, (client) => {
      if (options.onSource && !options.onSource(client)) {
        client.destroy();
        return;
      }
      next(client);
    });
  });
  return server;
}

/** Binds `server`, or rejects with RELAY_CONFIG worded by `message` (given "HOST:PORT" and why). */
export function listenOrFail(server: Server, host: string | undefined, port: number, message: (where: string, why: string) => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      reject(err instanceof BbgateError ? err : new BbgateError('RELAY_CONFIG', message(hostPort(host ?? '*', port), bindProblem(err)), { cause: err }));
    };
    server.once('error', failed);
    server.listen({ port, ...(host !== undefined ? { host } : {}) }, () => {
      server.off('error', failed);
      // Errors after listening belong to single connections, never to the process.
      server.on('error', () => undefined);
      resolve();
    });
  });
}

function bindProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is in use';
    case 'EADDRNOTAVAIL':
      return 'no such address on this host';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'cannot resolve the host name';
    default:
      return err.message;
  }
}

export interface TlsIdentityFiles {
  /** Twisted's names: certKey holds the certificate (and may hold its chain), extraCertChain more of it. */
  certKey: string;
  privateKey: string;
  extraCertChain?: string;
}

/** The certificate (with any extra chain) and key, read before listening; `label` names the listener in errors. */
export async function readTlsIdentity(files: TlsIdentityFiles, label: string): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (what: string, path: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new BbgateError('RELAY_CONFIG', `${label}: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = await read('certKey', files.certKey);
  const chain = files.extraCertChain === undefined ? [] : [Buffer.from('\n'), await read('extraCertChain', files.extraCertChain)];
  return { cert: Buffer.concat([cert, ...chain]), key: await read('privateKey', files.privateKey) };
}

/** Node's server options that require a client certificate issued by one of `clientCa` (PEM); none without it. */
export function requireClientCertificate(clientCa: string[] | undefined): TlsOptions {
  return clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {};
}

/** Node checks the certificate and key when the server is made (PEM that parses, a key that matches): a configuration error, not a crash. */
export function tlsServerOrFail<T>(label: string, create: () => T): T {
  try {
    return create();
  } catch (err) {
    throw new BbgateError('RELAY_CONFIG', `${label}: the certificate and key cannot be used: ${(err as Error).message}`, { cause: err });
  }
}

/** Reports each failed TLS handshake, and destroys its socket, which Node 20 leaves open after a handshake timeout. */
export function onTlsFailure(server: { on(event: 'tlsClientError', listener: (err: Error, socket: TLSSocket) => void): unknown }, report: (peer: string, err: Error) => void): void {
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    const { address, port } = connectionAddresses(socket).remote;
    socket.destroy();
    report(hostPort(address, port), err);
  });
}
