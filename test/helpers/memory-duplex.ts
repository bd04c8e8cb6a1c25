// Two connected in-memory stream ends, for driving brokers without sockets.
import { Duplex } from 'node:stream';

/**
 * One end of an in-memory connection. As on a socket, bytes written reach the
 * other end on a later turn of the event loop, so an exception in a 'data'
 * listener surfaces as an uncaught exception, not inside the writer's call.
 * Ending or destroying one end ends the other's readable side, like a FIN.
 */
class MemoryEnd extends Duplex {
  peer!: MemoryEnd;
  private eof = false;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    setImmediate(() => this.peer.receive(chunk));
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    setImmediate(() => this.peer.receive(null));
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    setImmediate(() => this.peer.receive(null));
    callback(err);
  }

  private receive(chunk: Buffer | null): void {
    if (this.eof || this.destroyed) return;
    if (chunk === null) this.eof = true;
    this.push(chunk);
  }
}

/**
 * Resolves once every byte written to either end so far has reached the other end's listeners
 * (each write is delivered on the next turn, and a reader's answer on the turn after): the
 * barrier before asserting that nothing more was sent.
 */
export function delivered(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(() => setImmediate(resolve))));
}

export function memoryPair(): [Duplex, Duplex] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
