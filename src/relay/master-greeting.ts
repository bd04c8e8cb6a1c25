import type { Duplex } from 'node:stream';
import { PbError } from '../errors.js';
import { decodeDialectOffer } from '../pb/index.js';
import type { WorkerHello } from './worker-hello.js';
import { expectVersion, HandshakeError } from './worker-hello.js';
import { sniff } from './sniffer.js';

const MAX_GREETING_BYTES = 16 * 1024;

/**
 * Plays the worker's part toward the master: takes the master's dialect
 * offer, answers with the worker's own choice, replays the worker's version
 * and login byte for byte, and swallows the master's version announcement
 * (the worker already had one from the relay). Resolves with whatever the
 * master sent after that, which belongs to the worker.
 */
export async function greetMaster(stream: Duplex, hello: WorkerHello, timeoutMs: number): Promise<Buffer> {
  let offered: string[] | undefined;
  const { raw, end } = await sniff(stream, {
    maxBytes: MAX_GREETING_BYTES,
    timeoutMs,
    step: (expr, parser) => {
      if (offered === undefined) {
        offered = decodeDialectOffer(expr);
        if (offered === undefined) throw new PbError('PB_NOT_PB', 'the master did not open with a PB dialect offer');
        if (!offered.includes(hello.dialect)) {
          throw new PbError('PB_DIALECT', `the master offers dialects [${offered.join(', ')}], not the worker's "${hello.dialect}"`);
        }
        parser.vocab = hello.dialect === 'pb';
        stream.write(hello.choice);
        stream.write(hello.replay);
        return false;
      }
      expectVersion(expr, 'the master');
      return true;
    },
    closed: () => new PbError('PB_CONNECTION_LOST', offered === undefined
      ? 'the master closed the connection without a PB greeting'
      : 'the master closed the connection before announcing its PB version'),
    timedOut: () => new PbError('PB_NOT_PB', `no PB greeting from the master within ${timeoutMs / 1000} s`),
    invalid: (err) => err instanceof PbError ? err
      : err instanceof HandshakeError ? new PbError('PB_PROTOCOL', err.message)
      : new PbError('PB_NOT_PB', `the master does not speak PB: ${(err as Error).message}`, { cause: err }),
    tooLarge: () => new PbError('PB_NOT_PB', `the master sent more than ${MAX_GREETING_BYTES} bytes without a PB greeting`),
  });
  return raw.subarray(end);
}
