// The msgpack session against a master that misbehaves (a ws server on loopback playing the
// master's part): failed requests, unknown ops, text frames, bytes that are not msgpack, maps
// without op or seq_number, and a close with requests pending. Each ends typed, never hangs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket, { WebSocketServer } from 'ws';
import { BbgateError } from '../../src/errors.js';
import { MsgpackRemoteError, MsgpackSession } from '../../src/msgpack/session.js';

describe('MsgpackSession against a misbehaving master', () => {
  let server: WebSocketServer;
  /** What the test's "master" does with each new connection. */
  let onConnection: (peer: WebSocket) => void = () => undefined;
  const warnings: string[] = [];

  before(async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    server.on('connection', (peer) => onConnection(peer));
    await once(server, 'listening');
  });
  after(() => server.close());

  async function session(master: (peer: WebSocket) => void, handle = (op: string): unknown => (op === 'keepalive' ? null : Promise.reject(new Error(`Command ${op} does not exist.`)))): Promise<MsgpackSession> {
    onConnection = master;
    const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await once(ws, 'open');
    return new MsgpackSession(ws, (op) => handle(op), { warn: (_fields, message) => void warnings.push(message) });
  }
  const next = async (peer: WebSocket) => decode(((await once(peer, 'message')) as [Buffer])[0]) as Record<string, unknown>;

  it('a request the master fails is MSGPACK_REMOTE_ERROR with its text; a good one resolves with the result', async () => {
    const s = await session((peer) => {
      peer.on('message', (data: Buffer) => {
        const msg = decode(data) as Record<string, unknown>;
        const reply = msg.op === 'update' ? { op: 'response', seq_number: msg.seq_number, result: "unknown \"command_id\"", is_exception: true } : { op: 'response', seq_number: msg.seq_number, result: Buffer.from('data') };
        peer.send(encode(reply));
      });
    });
    const failed = await s.request('update', { command_id: '7', args: [] }).catch((e: unknown) => e);
    assert.ok(failed instanceof MsgpackRemoteError);
    assert.equal(failed.code, 'MSGPACK_REMOTE_ERROR');
    assert.equal(failed.message, 'the master failed update: unknown "command_id"');
    assert.deepEqual(await s.request('update_read_file', { command_id: '7', length: 4 }), Buffer.from('data'));
    s.close();
  });

  it("answers an unknown op as buildbot-worker does, ignores a text frame, and numbers its requests from 0", async () => {
    let peer!: WebSocket;
    const s = await session((p) => (peer = p));
    await new Promise((r) => setImmediate(r));
    peer.send('{"op": "print"}');
    peer.send(encode({ op: 'bogus', seq_number: 5 }));
    assert.deepEqual(await next(peer), { op: 'response', seq_number: 5, result: 'Command bogus does not exist.', is_exception: true });
    peer.send(encode({ op: 'keepalive', seq_number: 6 }));
    assert.deepEqual(await next(peer), { op: 'response', seq_number: 6, result: null });
    assert.ok(warnings.some((w) => /text WebSocket message/.test(w)));
    const pending = s.request('complete', { command_id: '1', args: null });
    assert.deepEqual(await next(peer), { command_id: '1', args: null, op: 'complete', seq_number: 0 });
    peer.send(encode({ op: 'response', seq_number: 0, result: null }));
    assert.equal(await pending, null);
    s.close();
  });

  for (const [what, bytes] of [
    ['bytes that are not msgpack', Buffer.from([0xc1])],
    ['a msgpack array', Buffer.from(encode([1, 2]))],
    ['a map without op and seq_number', Buffer.from(encode({ result: 1 }))],
  ] as const) {
    it(`${what} ends the session with MSGPACK_PROTOCOL, failing the pending request`, async () => {
      let peer!: WebSocket;
      const s = await session((p) => (peer = p));
      const pending = s.request('update', { command_id: '1', args: [] }).catch((e: unknown) => e);
      await next(peer);
      peer.send(bytes);
      const err = await pending;
      assert.ok(err instanceof BbgateError);
      assert.equal(err.code, 'MSGPACK_PROTOCOL', err.message);
      assert.equal((await s.closed).code, 'MSGPACK_PROTOCOL');
      assert.equal(s.connected, false);
    });
  }

  it('a master that closes fails the pending requests with MSGPACK_CONNECTION_LOST, and later ones at once', async () => {
    let peer!: WebSocket;
    const s = await session((p) => (peer = p));
    const pending = s.request('update', { command_id: '1', args: [] }).catch((e: unknown) => e);
    await next(peer);
    peer.close(1011, 'going away');
    const err = (await pending) as BbgateError;
    assert.equal(err.code, 'MSGPACK_CONNECTION_LOST');
    assert.match(err.message, /code 1011: going away/);
    assert.equal(((await s.request('complete').catch((e: unknown) => e)) as BbgateError).code, 'MSGPACK_CONNECTION_LOST');
  });
});
