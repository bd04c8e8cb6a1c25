import { lookup } from 'node:dns/promises';
import { createConnection, isIP, type Socket } from 'node:net';
import { BbgateError, networkError } from '../errors.js';
import { withDeadline } from '../deadline.js';
import type { TcpEndpoint } from '../address/endpoint.js';
import { hostPort } from '../address/host-port.js';

/** Every address a host name resolves to (an IP literal resolves to itself), within `timeout` seconds. */
export async function resolveHost(host: string, timeout = 30): Promise<string[]> {
  if (isIP(host)) return [host];
  try {
    // A resolver that does not answer would otherwise hold the connection attempt for its own retries.
    const found = await withDeadline(lookup(host, { all: true, verbatim: true }), timeout * 1000,
      () => new BbgateError('NET_DNS', `no answer from the resolver for "${host}" within ${timeout} s`));
    return found.map((a) => a.address);
  } catch (err) {
    if (err instanceof BbgateError) throw err;
    throw new BbgateError('NET_DNS', `cannot resolve "${host}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Opens a TCP connection to `address` (already resolved), failing with a typed error. */
export function connectTcp(endpoint: Pick<TcpEndpoint, 'port' | 'timeout' | 'bindAddress'>, address: string): Promise<Socket> {
  const where = hostPort(address, endpoint.port);
  return new Promise((resolve, reject) => {
    const socket = createConnection({
      host: address,
      port: endpoint.port,
      ...(endpoint.bindAddress ? { localAddress: endpoint.bindAddress } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BbgateError('NET_TIMEOUT', `${where}: no answer within ${endpoint.timeout} s (a firewall may be dropping the connection)`));
    }, endpoint.timeout * 1000);
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(networkError(err, where));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
