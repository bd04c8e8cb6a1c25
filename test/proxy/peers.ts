// Loopback peers for proxy tests: a PB-like target and scriptable fake proxies.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface Peer {
  port: number;
  /** What each connection sent before the peer answered (fake proxies: the CONNECT request head). */
  requests: string[];
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** Sends `greeting` as soon as a client connects, as a PB server does, then echoes. */
export function startTarget(greeting = 'GREETING\n', host = '127.0.0.1'): Promise<Peer> {
  return listen(host, (socket) => {
    socket.write(greeting);
    socket.pipe(socket);
  });
}

/** Reads a request head, then hands the socket and head to `answer`. */
export function startFakeProxy(answer: (socket: Socket, head: string) => void, host = '127.0.0.1'): Promise<Peer> {
  let peer: Peer;
  return listen(host, (socket) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      // Without a 'data' listener a flowing socket drops what arrives; `answer` resumes it (e.g. by piping).
      socket.pause();
      peer.requests.push(head);
      answer(socket, head);
    };
    socket.on('data', onData);
  }).then((p) => (peer = p));
}

/** A listener that answers on connect, before reading anything. */
export function startGreeter(bytes: Buffer | string): Promise<Peer> {
  return listen('127.0.0.1', (socket) => socket.write(bytes));
}

/** A port on 127.0.0.1 where nothing listens (bound a moment ago, then closed). */
export async function closedPort(): Promise<number> {
  const p = await listen('127.0.0.1', () => undefined);
  await p.close();
  return p.port;
}

/** Writes `text` one byte per event-loop turn. */
export async function trickle(socket: Socket, text: string): Promise<void> {
  for (const ch of text) {
    if (socket.destroyed) return;
    socket.write(ch);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function listen(host: string, onConnection: (socket: Socket) => void): Promise<Peer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests: [],
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Collects what `socket` receives until it includes `expected` (or fails after `timeoutMs`). */
export function readUntil(socket: Socket, expected: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => done(new Error(`received ${JSON.stringify(got)}, still waiting for ${JSON.stringify(expected)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes(expected)) done();
    };
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      if (err) reject(err);
      else resolve(got);
    };
    socket.on('data', onData);
  });
}
