// A loopback TCP forwarder that can go silent the way a NAT box does when it forgets a mapping:
// established connections stop carrying bytes in either direction but are never closed, while
// new connections work. It can also rewrite what the target sends, chunk by chunk.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Silently drop every byte on the connections open now. */
  blackholeExisting(): void;
  /** Cut every connection open now, both ways, as a restarted router would. */
  resetExisting(): void;
  close(): Promise<void>;
}

export interface TcpRelayOptions {
  /** What to forward in place of the target's `index`-th chunk (from 1) on each connection. */
  fromTarget?: (chunk: Buffer, index: number) => Buffer;
}

export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1', options: TcpRelayOptions = {}): Promise<TcpRelay> {
  const live = new Set<{ client: Socket; upstream: Socket; silent: boolean }>();
  let count = 0;
  const server = createServer((client) => {
    count++;
    const upstream = createConnection(targetPort, targetHost);
    const link = { client, upstream, silent: false };
    live.add(link);
    let chunks = 0;
    const rewrite = options.fromTarget ?? ((d: Buffer) => d);
    client.on('data', (d) => link.silent || upstream.write(d));
    upstream.on('data', (d: Buffer) => link.silent || client.write(rewrite(d, ++chunks)));
    const end = () => {
      live.delete(link);
      if (!link.silent) {
        client.destroy();
        upstream.destroy();
      }
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => count,
    blackholeExisting() {
      for (const link of live) link.silent = true;
    },
    resetExisting() {
      for (const { client, upstream } of live) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
    },
    async close() {
      for (const { client, upstream } of live) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
