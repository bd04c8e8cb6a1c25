import { UTF8, type PythonCodec } from '../python/codec.js';

/**
 * One output stream of a process as text, decoded as the tac's unicode_encoding
 * says (UTF-8 by default) with U+FFFD for invalid bytes, never splitting a
 * character across reads. A stream nobody wants (want_stdout=0) is read and
 * dropped without decoding.
 */
export class OutputStream {
  private readonly decoder;
  private emit: ((text: string) => void) | null;

  constructor(emit: ((text: string) => void) | null, codec: PythonCodec = UTF8) {
    this.emit = emit;
    this.decoder = codec.decoder();
  }

  push(chunk: Uint8Array): void {
    if (!this.emit) return;
    const text = this.decoder.decode(chunk, { stream: true });
    if (text) this.emit(text);
  }

  /** An incomplete character at the very end becomes U+FFFD; 3.7 silently drops it. */
  end(): void {
    if (!this.emit) return;
    const rest = this.decoder.decode();
    if (rest) this.emit(rest);
  }

  /** Passes nothing more on, not even a held partial character (max_lines closed the stream). */
  close(): void {
    this.emit = null;
  }
}
