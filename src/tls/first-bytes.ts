import { Duplex } from 'node:stream';
import { SHOWN_BYTES } from '../peer-bytes.js';

/**
 * Passes a connection through unchanged and keeps the first bytes the peer sent. When a
 * handshake fails because the peer speaks something other than TLS, OpenSSL has consumed those
 * bytes and says only "wrong version number"; they are what tells the user what is on that port.
 * (TLS then runs over a JavaScript stream instead of the socket's handle: on loopback, about
 * 550 MB/s either way, within the noise.)
 */
export class FirstBytesTap extends Duplex {
  private readonly kept: Buffer[] = [];
  private keptLength = 0;

  constructor(private readonly inner: Duplex, limit = SHOWN_BYTES + 1) {
    super({ allowHalfOpen: true });
    inner.on('data', (chunk: Buffer) => {
      if (this.keptLength < limit) {
        this.kept.push(chunk.subarray(0, limit - this.keptLength));
        this.keptLength += Math.min(chunk.length, limit - this.keptLength);
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    // A close without an end is an abort: nothing more will come either way. After a
    // clean end the tap closes too, once TLS has read what it holds: otherwise the TLS
    // socket above would never hear 'close', and a wait for it would never end.
    const innerClosed = () => {
      if (!inner.readableEnded || this.readableEnded) this.destroy();
      else this.once('end', () => this.destroy());
    };
    inner.on('close', innerClosed);
    // A connection that ended or closed before it was handed over emits nothing more.
    if (inner.readableEnded) this.push(null);
    if (inner.destroyed) innerClosed();
  }

  /** Up to `limit` bytes (by default one more than messages show, so they can say there was more), as the peer sent them. */
  get firstBytes(): Buffer {
    return Buffer.concat(this.kept);
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.inner.write(chunk)) callback();
    else this.inner.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inner.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.inner.destroy(err ?? undefined);
    callback(err);
  }
}
