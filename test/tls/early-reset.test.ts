// A peer that resets the connection while the trust roots are still loading: a typed error,
// never an uncaught one (which would end the worker instead of retrying).
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { startTls } from '../../src/tls/index.js';
import { testPki } from '../helpers/pki.js';

describe('startTls and an early reset', () => {
  it('reports a reset that comes before the handshake starts as a typed error', async () => {
    const pki = await testPki();
    // Many files, so the reset lands while they load.
    const trustRoots = await pki.trustDir(...Array.from({ length: 300 }, (_, i) => ({ ...pki.root, name: `root-${i}` })));
    const server = createServer((s) => setTimeout(() => s.resetAndDestroy(), 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      for (let i = 0; i < 20; i++) {
        const socket = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
        await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        await assert.rejects(startTls(socket, { serverName: 'localhost', trustRoots, verify: 'full' }), (err: unknown) => err instanceof BbgateError);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      server.close();
    }
  });
});
