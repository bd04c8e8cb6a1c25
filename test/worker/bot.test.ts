// What the Bot does with refused commands and with peers that go silent before login.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { PbFailure } from '../../src/pb/failure.js';
import { RemoteReference, type KwArgs, type ReferenceOwner, type RemoteCall } from '../../src/pb/references.js';
import type { PbValue } from '../../src/pb/values.js';
import { WorkerForBuilder } from '../../src/worker/bot.js';
import { COMMANDS } from '../../src/worker/commands/index.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { waitFor, within } from '../helpers/wait.js';

/** A broker stand-in that counts decrefs. */
class CountingOwner implements ReferenceOwner {
  connected = true;
  released: number[] = [];
  callRemote(_t: number | 'root', _m: string, _a: readonly unknown[], _k: KwArgs): Promise<PbValue> {
    return Promise.resolve(null);
  }
  releaseRemote(ref: RemoteReference): void {
    this.released.push(ref.luid as number);
  }
  onDisconnect(): () => void {
    return () => undefined;
  }
}

const call = (args: PbValue[]): RemoteCall => ({ method: 'startCommand', args, kwargs: new Map(), arg: (i) => args[i] });

describe('WorkerForBuilder', () => {
  it('releases the master\'s references when it refuses a command (unknown name, missing argument)', () => {
    const owner = new CountingOwner();
    const quiet = { info: () => undefined, warn: () => undefined };
    const builder = new WorkerForBuilder('b', { basedir: '/nonexistent', deleteLeftoverDirs: false, commands: COMMANDS, environ: {}, logger: quiet, onShutdown: () => undefined });
    assert.throws(() => builder.remote_startCommand(call([new RemoteReference(owner, 1), '0', 'frobnicate', new Map()])),
      (err: unknown) => err instanceof PbFailure && err.type === 'buildbot_worker.base.UnknownCommand');
    assert.throws(() => builder.remote_startCommand(call([new RemoteReference(owner, 2), '1', 'uploadFile', new Map<PbValue, PbValue>([['writer', new RemoteReference(owner, 3)]])])),
      (err: unknown) => err instanceof PbFailure && err.type === 'builtins.ValueError');
    assert.deepEqual(owner.released.sort(), [1, 2, 3]);
  });
});

describe('a peer that accepts the connection and says nothing', () => {
  async function silentPeer(): Promise<{ port: number; held: Socket[]; close(): void }> {
    const held: Socket[] = [];
    const server = createServer((s) => {
      s.on('error', () => undefined);
      held.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      held,
      close() {
        for (const s of held) s.destroy();
        server.close();
      },
    };
  }

  it('times out the PB greeting and retries', async () => {
    const peer = await silentPeer();
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${peer.port}:timeout=1`, workername: 'w', password: 'p', maxdelay: 0.1 });
    try {
      await worker.waitForLog(/connection failed: no PB greeting and login answer within 1 s/, 5000);
      await waitFor(() => peer.held.length >= 2, 'the next attempt');
      assert.equal(await worker.stop(), 0);
    } finally {
      peer.close();
    }
  });

  it('stop() ends the worker mid-attempt, without waiting out the attempt (whose timeout is 10 minutes)', async () => {
    const peer = await silentPeer();
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${peer.port}:timeout=600`, workername: 'w', password: 'p' });
    try {
      await waitFor(() => peer.held.length === 1, 'the attempt to connect');
      const closed = once(peer.held[0]!, 'close');
      assert.equal(await within(worker.stop(), 10_000, 'stop() during a connection attempt'), 0);
      await within(closed, 10_000, 'the worker closing the attempt');
    } finally {
      peer.close();
    }
  });
});
