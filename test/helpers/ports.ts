// A free TCP port on 127.0.0.1: bind port 0, read what the kernel gave, let it go. Another process
// can take it before the caller binds it, so callers that start servers on it retry on EADDRINUSE.
import { createServer, type AddressInfo } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
