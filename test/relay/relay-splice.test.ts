// The relay's splice against a scripted PB peer, for what a real master does not do on demand:
// bytes packed after the greeting, the "none" dialect, and a worker that half-closes while a
// slow master still has megabytes to read.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { encodeSexp } from '../../src/pb/banana/writer.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

const OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none')]);
/** The relay's greeting: the master's dialects, then its mark. */
const RELAY_OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none'), Buffer.from('bbgate-relay')]);
const version = (vocab: boolean) => encodeSexp([Buffer.from('version'), 6], vocab);
const login = (vocab: boolean) =>
  encodeSexp([Buffer.from('message'), 1, Buffer.from('root'), Buffer.from('login'), 1, [Buffer.from('tuple'), Buffer.from('w')], [Buffer.from('dictionary')]], vocab);

/** A master that greets like Twisted, then sends `after` in the same write as its version, and counts what it gets. */
function scriptedMaster(after: Buffer, readSlowly = false): { server: Server; received: Promise<Buffer> } {
  let settle!: (b: Buffer) => void;
  const received = new Promise<Buffer>((resolve) => (settle = resolve));
  const server = createServer((socket: Socket) => {
    const chunks: Buffer[] = [];
    socket.write(OFFER);
    let greeted = false;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (!greeted) {
        greeted = true;
        const vocab = chunk[1] === 0x82 && chunk.subarray(2, 4).toString() === 'pb';
        socket.write(Buffer.concat([version(vocab), after]));
      }
      if (readSlowly) {
        socket.pause();
        setTimeout(() => socket.resume(), 10);
      }
    });
    socket.on('end', () => {
      settle(Buffer.concat(chunks));
      socket.end();
    });
  });
  return { server, received };
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function worker(port: number): { socket: Socket; data: Buffer[]; closed: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port });
  const data: Buffer[] = [];
  socket.on('data', (c: Buffer) => data.push(c));
  return { socket, data, closed: new Promise((resolve) => socket.on('close', () => resolve())) };
}

describe('the relay\'s splice, against a scripted PB peer', () => {
  const relays: TestRelay[] = [];
  const servers: Server[] = [];
  after(async () => {
    for (const r of relays) await r.stop();
    for (const s of servers) s.close();
  });
  async function through(after: Buffer, readSlowly = false) {
    const master = scriptedMaster(after, readSlowly);
    servers.push(master.server);
    const relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${await listening(master.server)}`, allow: ['w'] });
    relays.push(relay);
    return { relay, received: master.received };
  }

  it('passes on what the master packed after its version, and speaks the "none" dialect end to end', async () => {
    const early = encodeSexp([Buffer.from('message'), 1, Buffer.from('root'), Buffer.from('print'), 0, [Buffer.from('tuple')], [Buffer.from('dictionary')]], false);
    const { relay, received } = await through(early);
    const w = worker(relay.port());
    const choice = encodeSexp(Buffer.from('none'));
    w.socket.write(Buffer.concat([choice, version(false), login(false)]));
    await waitFor(() => Buffer.concat(w.data).length >= RELAY_OFFER.length + version(false).length + early.length, 'the greeting and the early call');
    assert.deepEqual(Buffer.concat(w.data), Buffer.concat([RELAY_OFFER, version(false), early]), 'the offer and version from the relay, then the master\'s early call; the master\'s own version swallowed');
    w.socket.end();
    assert.deepEqual(await received, Buffer.concat([choice, version(false), login(false)]), 'the master gets the worker\'s choice, version and login as the worker sent them');
  });

  it('passes on whatever the master packs after its verdict on the password, Banana or not', async () => {
    const respondCall = encodeSexp([Buffer.from('message'), 2, 1, Buffer.from('respond'), 1, [Buffer.from('tuple'), Buffer.alloc(16, 7)], [Buffer.from('dictionary')]], true);
    const verdict = encodeSexp([Buffer.from('answer'), 2, [Buffer.from('remote'), 2]], true);
    // ("challenge" is a vocabulary word, so it goes out as a token, not as its letters.)
    const challenge = encodeSexp([Buffer.from('answer'), 1, Buffer.from('challenge')], true);
    // No valid Banana: 100 prefix bytes in a row; a reader that went on judging would cut the connection.
    const raw = Buffer.alloc(100, 0x41);
    const server = createServer((socket) => {
      socket.write(OFFER);
      let seen = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const first = seen.length === 0;
        seen = Buffer.concat([seen, chunk]);
        if (first) socket.write(Buffer.concat([version(true), challenge]));
        if (seen.includes(respondCall)) socket.write(Buffer.concat([verdict, raw]));
      });
      socket.on('error', () => undefined);
    });
    servers.push(server);
    const relay = await startRelay({ listen: ['tcp:0:interface=127.0.0.1'], upstream: `tcp:127.0.0.1:${await listening(server)}`, allow: ['w'] });
    relays.push(relay);
    const w = worker(relay.port());
    w.socket.write(Buffer.concat([encodeSexp(Buffer.from('pb')), version(true), login(true)]));
    await waitFor(() => Buffer.concat(w.data).includes(challenge), 'the challenge');
    w.socket.write(respondCall);
    await waitFor(() => Buffer.concat(w.data).includes(raw), 'the bytes after the verdict');
    assert.ok(Buffer.concat(w.data).includes(Buffer.concat([verdict, raw])), 'the verdict and the bytes after it reach the worker');
    await relay.waitForLog((l) => l.msg === 'worker logged in');
    assert.ok(!relay.lines.some((l) => l.msg === 'connection closed'), 'the connection stays up');
    w.socket.destroy();
  });

  it('delivers everything a worker sent before it half-closed, to a master that reads slowly', async () => {
    const { relay, received } = await through(Buffer.alloc(0), true);
    const w = worker(relay.port());
    const hello = Buffer.concat([encodeSexp(Buffer.from('pb')), version(true), login(true)]);
    // More than the kernel buffers hold, so that the relay still has bytes queued for the master
    // when the worker's FIN arrives: 32 answers of 500 KB (Banana a worker may send before its
    // password is accepted).
    const bulk = Buffer.concat(Array.from({ length: 32 }, (_, i) => encodeSexp([Buffer.from('answer'), i, Buffer.alloc(500_000, i)], true)));
    w.socket.write(hello);
    w.socket.end(bulk);
    const got = await received;
    assert.equal(got.length, hello.length + bulk.length);
    assert.ok(got.subarray(hello.length).equals(bulk));
  });
});
