// A loopback TCP forwarder that adds latency: every chunk is held for `delayMs` before it is
// passed on, in each direction, and chunks keep their order. A round trip through it costs
// 2 × delayMs more than plain loopback.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface DelayRelay {
  port: number;
  /** Added to every chunk, each way; order is kept. May be changed while connections are open. */
  delayMs: number;
  close(): Promise<void>;
}

/** A TCP forwarder to 127.0.0.1:targetPort that holds every chunk for delayMs before passing it on, in order. */
export async function startDelayRelay(targetPort: number, delayMs = 0): Promise<DelayRelay> {
  const sockets = new Set<Socket>();
  const state: DelayRelay = { port: 0, delayMs, close: async () => {} };
  const forward = (from: Socket, to: Socket) => {
    const queue: { due: number; data: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const drain = () => {
      timer = undefined;
      while (queue.length && queue[0]!.due <= performance.now()) to.write(queue.shift()!.data);
      if (queue.length) timer = setTimeout(drain, queue[0]!.due - performance.now());
      else if (ended) to.end();
    };
    from.on('data', (data: Buffer) => {
      queue.push({ due: performance.now() + state.delayMs, data });
      if (!timer) drain();
    });
    // The end is passed on after the data still held back, as a real link would deliver it.
    from.on('close', () => {
      ended = true;
      if (!timer) drain();
    });
  };
  const server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      // Chunks go out as they come due: Nagle's algorithm here would hold a small one back
      // until the last was acknowledged, a stall the endpoints would not have on their own.
      s.setNoDelay(true);
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}
