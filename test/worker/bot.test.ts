// What the Bot does with refused commands and with peers that go silent before login.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { PbFailure } from '../../src/pb/values/failure.js';
import { BananaParser } from '../../src/pb/banana/parser.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';
import { Broker } from '../../src/pb/broker.js';
import { unjelly } from '../../src/pb/jelly/decode.js';
import { WorkerForBuilder } from '../../src/worker/bot.js';
import { COMMANDS } from '../../src/worker/commands/index.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { waitFor, within } from '../helpers/wait.js';
import { memoryPair } from '../helpers/memory-duplex.js';

const b = (s: string) => Buffer.from(s);
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WorkerForBuilder', () => {
  it('gives back the master\'s references when it refuses a command (unknown name, missing argument)', async () => {
    const quiet = { info: () => undefined, warn: () => undefined };
    const builder = new WorkerForBuilder('b', { basedir: '/nonexistent', deleteLeftoverDirs: false, commands: COMMANDS, environ: {}, logger: quiet, onShutdown: () => undefined });
    // The master's side, scripted: it reaches the builder as the broker's root.
    const [near, far] = memoryPair();
    const back: Sexp[] = [];
    const parser = new BananaParser((e) => back.push(e));
    far.on('data', (d: Buffer) => parser.feed(d));
    const broker = new Broker(near, { role: 'client', root: builder });
    far.write(encodeSexp([b('pb'), b('none')]));
    parser.vocab = true;
    await broker.ready;
    const startCommand = (id: number, args: Sexp[]) => far.write(encodeSexp([b('message'), id, b('root'), b('startCommand'), 1, [b('tuple'), ...args], [b('dictionary')]], true));
    startCommand(1, [[b('remote'), 1], [b('unicode'), b('0')], [b('unicode'), b('frobnicate')], [b('dictionary')]]);
    startCommand(2, [[b('remote'), 2], [b('unicode'), b('1')], [b('unicode'), b('uploadFile')], [b('dictionary'), [[b('unicode'), b('writer')], [b('remote'), 3]]]]);
    for (let i = 0; i < 50 && back.length < 7; i++) await turn();
    const commands = back.slice(2).map((e) => [Buffer.from((e as Sexp[])[0] as Buffer).toString(), (e as Sexp[])[1]]);
    assert.deepEqual(commands, [['error', 1], ['decref', 1], ['error', 2], ['decref', 2], ['decref', 3]]);
    const failures = back.slice(2).filter((e) => Buffer.from((e as Sexp[])[0] as Buffer).toString() === 'error').map((e) => unjelly((e as Sexp[])[2]!));
    assert.deepEqual(failures.map((f) => (f as PbFailure).type), ['buildbot_worker.base.UnknownCommand', 'builtins.ValueError']);
    assert.equal(broker.remoteReferenceCount, 0);
    // The peer hangs up (an in-memory stream never closes on our end() alone).
    const lost = new Promise((resolve) => broker.onDisconnect(resolve));
    far.destroy();
    await lost;
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
