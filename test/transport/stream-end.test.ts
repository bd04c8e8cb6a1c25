// Waits on a stream whose peer hung up before the wait began: each must end with a typed
// error, never wait forever. Before src/stream-end.ts, every one of these hung (and a
// process with nothing else to do exited 0 in silence).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { PassThrough, Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { Broker } from '../../src/pb/broker.js';
import { hasEnded, whenEnded } from '../../src/stream-end.js';
import { FirstBytesTap } from '../../src/tls/first-bytes.js';
import { Reconnector, type Session } from '../../src/transport/reconnect.js';
import { parseEndpoint } from '../../src/address/connection-string.js';
import type { WsEndpoint } from '../../src/address/endpoint.js';
import { upgradeToWebSocket } from '../../src/transport/websocket.js';
import { dial, plainPeer } from '../tls/support.js';

/** A duplex whose readable side has ended and whose 'end' has already been emitted. */
async function endedStream(): Promise<Duplex> {
  const stream = new PassThrough();
  stream.resume();
  stream.end();
  await once(stream, 'end');
  return stream;
}

/** A TCP connection whose peer sent FIN, with that end already seen by the time it is returned. */
async function hungUpSocket(): Promise<{ socket: Socket; close(): Promise<void> }> {
  const peer = await plainPeer((s) => s.end());
  const socket = await dial(peer.port);
  socket.resume();
  await once(socket, 'end');
  socket.pause();
  return { socket, close: peer.close };
}

describe('stream-end: hasEnded and whenEnded', () => {
  it('a live stream has not ended; whenEnded calls back at its end, once', async () => {
    const stream = new PassThrough();
    assert.equal(hasEnded(stream), false);
    const calls: (Error | undefined)[] = [];
    whenEnded(stream, (err) => calls.push(err));
    stream.resume();
    stream.end();
    await once(stream, 'close');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, [undefined]);
  });

  it('an end that came before the wait still ends it', async () => {
    const stream = await endedStream();
    assert.equal(hasEnded(stream), true);
    const err = await new Promise<Error | undefined>((resolve) => whenEnded(stream, resolve));
    assert.equal(err, undefined);
  });

  it('an end nobody has read yet (a paused stream with nothing buffered) counts as ended', () => {
    const stream = new PassThrough();
    stream.end();
    // The writable side's end reaches the readable side synchronously for a PassThrough
    // only once flushed: push the end directly as a socket's peer FIN does.
    stream.push(null);
    assert.equal(stream.readableEnded, false, 'no one has read the end');
    assert.equal(hasEnded(stream), true);
  });

  it('data still buffered is not an end', () => {
    const stream = new PassThrough();
    stream.push(Buffer.from('greeting'));
    stream.push(null);
    assert.equal(hasEnded(stream), false);
  });

  it('a destroyed stream, and one that failed, end the wait (with the error)', async () => {
    const destroyed = new PassThrough();
    destroyed.destroy();
    assert.equal(hasEnded(destroyed), true);
    assert.equal(await new Promise<Error | undefined>((resolve) => whenEnded(destroyed, resolve)), undefined);
    const failed = new PassThrough();
    failed.on('error', () => undefined);
    const seen = new Promise<Error | undefined>((resolve) => whenEnded(failed, resolve));
    failed.destroy(new Error('reset'));
    assert.equal((await seen)?.message, 'reset');
  });

  it('stopping the watch means no call', async () => {
    const stream = new PassThrough();
    let called = false;
    const stop = whenEnded(stream, () => (called = true));
    stop();
    stream.destroy();
    await once(stream, 'close');
    await new Promise((r) => setImmediate(r));
    assert.equal(called, false);
  });
});

describe('the layers over a stream that ended before they began', () => {
  it('Broker: ready and the peer version reject, close() resolves', async () => {
    const broker = new Broker(await endedStream(), { role: 'client' });
    await assert.rejects(broker.ready, (err: BbgateError) => err.code === 'PB_CONNECTION_LOST' && /without a PB greeting/.test(err.message));
    await assert.rejects(broker.peerVersion, (err: BbgateError) => err.code === 'PB_CONNECTION_LOST');
    assert.equal(broker.connected, false);
    await broker.close();
  });

  it('Broker: over a real TCP connection whose peer sent FIN before the broker existed', async () => {
    const { socket, close } = await hungUpSocket();
    const broker = new Broker(socket, { role: 'client' });
    await assert.rejects(broker.ready, (err: BbgateError) => err.code === 'PB_CONNECTION_LOST');
    await broker.close();
    assert.equal(socket.destroyed, true);
    await close();
  });

  it('FirstBytesTap: a connection that ended cleanly closes the tap once its end has been read', async () => {
    const { socket, close } = await hungUpSocket();
    const tap = new FirstBytesTap(socket);
    tap.resume();
    await once(tap, 'close');
    await close();
  });

  it('FirstBytesTap: a clean close that comes later closes the tap too (the TLS socket above hears it)', async () => {
    const peer = await plainPeer((s) => setImmediate(() => s.end('bye')));
    const socket = await dial(peer.port);
    const tap = new FirstBytesTap(socket);
    const chunks: Buffer[] = [];
    tap.on('data', (c: Buffer) => chunks.push(c));
    await once(tap, 'close');
    assert.equal(Buffer.concat(chunks).toString(), 'bye', 'what came before the end is delivered');
    assert.equal(tap.firstBytes.toString(), 'bye');
    await peer.close();
  });

  it('the WebSocket upgrade over a connection whose peer already hung up: WS_PROTOCOL, not a wait', async () => {
    const { socket, close } = await hungUpSocket();
    const endpoint = parseEndpoint(`ws://127.0.0.1:${socket.remotePort}/pb#timeout=60`) as WsEndpoint;
    await assert.rejects(upgradeToWebSocket(socket, endpoint), (err: BbgateError) =>
      err.code === 'WS_PROTOCOL' && /closed the connection without answering the WebSocket upgrade/.test(err.message));
    await close();
  });

  it('the WebSocket upgrade to a silent server times out on its own timer', async () => {
    const silent = await plainPeer(() => undefined);
    const socket = await dial(silent.port);
    const endpoint = parseEndpoint(`ws://127.0.0.1:${silent.port}/pb#timeout=1`) as WsEndpoint;
    await assert.rejects(upgradeToWebSocket(socket, endpoint), (err: BbgateError) => err.code === 'NET_TIMEOUT' && /no answer to the WebSocket upgrade/.test(err.message));
    await silent.close();
  });
});

describe('Reconnector.interrupt: a wait nothing else can end', () => {
  const reason = () => new BbgateError('INTERNAL_STALL', 'stalled');

  it('an attempt that never settles is abandoned, counted as a failure, and retried', async () => {
    let attempts = 0;
    const r = new Reconnector<Session>({ policy: { initial: 0.01, factor: 1, max: 0.01 }, connect: () => (attempts++, new Promise<never>(() => undefined)) });
    r.start();
    while (attempts < 1) await new Promise((res) => setImmediate(res));
    assert.equal(r.interrupt(reason()), true);
    const [retry] = (await once(r, 'retry')) as [{ attempt: number; error: BbgateError }];
    assert.equal(retry.error.code, 'INTERNAL_STALL');
    assert.equal(retry.attempt, 2);
    while (attempts < 2) await new Promise((res) => setImmediate(res));
    await r.stop();
  });

  it('a session whose end never comes is closed with the reason, and the loop reconnects', async () => {
    const closedWith: (Error | undefined)[] = [];
    let attempts = 0;
    const r = new Reconnector<Session>({
      policy: { initial: 0.01, factor: 1, max: 0.01 },
      connect: async () => {
        attempts++;
        return { closed: new Promise<Error>(() => undefined), close: (why?: Error) => void closedWith.push(why) };
      },
    });
    r.start();
    await once(r, 'session');
    assert.equal(r.connected, true);
    assert.equal(r.interrupt(reason()), true);
    const [retry] = (await once(r, 'retry')) as [{ error: BbgateError }];
    assert.equal(retry.error.code, 'INTERNAL_STALL');
    assert.equal((closedWith[0] as BbgateError).code, 'INTERNAL_STALL');
    await once(r, 'session');
    assert.equal(attempts, 2);
    await r.stop();
  });

  it('stop() resolves only after the live session has finished closing', async () => {
    const order: string[] = [];
    const r = new Reconnector<Session>({
      connect: async () => {
        let closed!: (e: Error) => void;
        return {
          closed: new Promise<Error>((resolve) => (closed = resolve)),
          close: () => {
            order.push('close called');
            setTimeout(() => {
              order.push('session closed');
              closed(new BbgateError('PB_CONNECTION_LOST', 'closed'));
            }, 30);
          },
        };
      },
    });
    r.start();
    await once(r, 'session');
    await r.stop();
    order.push('stop resolved');
    assert.deepEqual(order, ['close called', 'session closed', 'stop resolved']);
  });

  it('stop() called by a listener of the session event settles, and closes that session', async () => {
    let closes = 0;
    const r = new Reconnector<Session>({
      connect: async () => {
        let closed!: (e: Error) => void;
        return { closed: new Promise<Error>((resolve) => (closed = resolve)), close: () => (closes++, closed(new BbgateError('PB_CONNECTION_LOST', 'closed'))) };
      },
    });
    const stopped = new Promise<void>((resolve) => r.once('session', () => void r.stop().then(resolve)));
    r.start();
    await stopped;
    assert.equal(closes, 1);
  });

  it('while sleeping before a retry there is nothing to interrupt', async () => {
    const r = new Reconnector<Session>({ policy: { initial: 30, factor: 1, max: 30 }, connect: () => Promise.reject(new BbgateError('NET_REFUSED', 'refused')) });
    r.start();
    await once(r, 'retry');
    assert.equal(r.interrupt(reason()), false);
    await r.stop();
  });
});
