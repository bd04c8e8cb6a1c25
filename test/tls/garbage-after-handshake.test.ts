// A bad TLS record that arrives in the same read as the server's last handshake flight: Node
// emits its error in the same tick as 'secureConnect', before anyone who takes the socket
// next can listen. It must be a typed handshake failure, never an uncaught error (which ends
// a worker with no retry, a probe with a stack trace, or a relay with every worker on it).
import assert from 'node:assert/strict';
import { createConnection, type AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { startTls } from '../../src/tls/index.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';

/** An application-data record whose contents no key decrypts. */
const BAD_RECORD = Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32, 0xab)]);

describe('startTls: garbage in the same read as the end of the handshake', () => {
  let pki: TestPki;
  let roots: string;
  before(async () => {
    pki = await testPki();
    roots = await pki.trustDir(pki.root);
  });

  /**
   * A real TLS server behind a forwarder that appends BAD_RECORD to the server's `flight`-th
   * chunk: the first for TLS 1.3 (its whole handshake flight), the second for TLS 1.2
   * (ChangeCipherSpec and Finished).
   */
  async function spoiledServer(version: 'TLSv1.3' | 'TLSv1.2', flight: number): Promise<{ port: number; close(): Promise<void> }> {
    const tls = createTlsServer({ key: pki.server.key, cert: pki.serverChain, minVersion: version, maxVersion: version }, (s) => s.on('error', () => undefined));
    tls.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const relay = await startTcpRelay((tls.address() as AddressInfo).port, '127.0.0.1', {
      fromTarget: (chunk, index) => (index === flight ? Buffer.concat([chunk, BAD_RECORD]) : chunk),
    });
    return {
      port: relay.port,
      close: async () => {
        await relay.close();
        tls.close();
      },
    };
  }

  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  before(() => process.on('uncaughtException', onUncaught));
  after(() => process.off('uncaughtException', onUncaught));

  for (const [version, flight] of [['TLSv1.3', 1], ['TLSv1.2', 2]] as const) {
    it(`${version}: a typed TLS_HANDSHAKE failure, and nothing uncaught`, async () => {
      const server = await spoiledServer(version, flight);
      try {
        for (let i = 0; i < 10; i++) {
          const socket = createConnection(server.port, '127.0.0.1');
          await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
          await assert.rejects(startTls(socket, { serverName: 'localhost', trustRoots: roots, verify: 'full', timeout: 10_000 }), (err: unknown) =>
            err instanceof BbgateError && err.code === 'TLS_HANDSHAKE');
        }
        // Anything uncaught from the ten surfaces within a few ticks of its socket's failure.
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(uncaught, []);
      } finally {
        await server.close();
      }
    });
  }
});
