// The relay's WebSocket listener against hostile and slow clients on loopback: what it buffers
// (maxPayload), how long it keeps a client that never finishes its TLS handshake or HTTP request,
// the raw-socket hook the relay counts connections with, PROXY headers from trusted load
// balancers (read before HTTP), and a close() that does not wait for upgraded connections (the
// relay's drain ends those itself).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { TLSSocket } from 'node:tls';
import { AddressSet } from '../../src/relay/policy.js';
import { proxyV2Header } from '../../src/relay/proxy-protocol.js';
import { listenWebSocket, type AcceptedStream, type WebSocketListener } from '../../src/relay/websocket-listener.js';
import { dial } from '../../src/route/dial.js';
import { parseEndpoint } from '../../src/address/connection-string.js';
import type { BbgateError } from '../../src/errors.js';
import { basicAuthorization, upgradeToMsgpack } from '../../src/msgpack/connect.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { within } from '../helpers/wait.js';

const TIMEOUT_MS = 500;
/** How long a wait may take before the test fails instead of hanging: a deadline, not a measure of speed. */
const DEADLINE_MS = 15_000;

/** A raw TCP client, with everything it receives. */
async function rawClient(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** Upgrades a raw client by hand, and waits for the 101. */
async function upgradeRaw(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<unknown> }> {
  const client = await rawClient(port);
  client.socket.write(`GET /pb HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`);
  while (!client.received().includes('\r\n\r\n')) await within(once(client.socket, 'data'), DEADLINE_MS, 'the upgrade answer');
  assert.match(client.received().toString('latin1'), /^HTTP\/1\.1 101 /);
  return client;
}

/** The stream's next chunk. */
async function nextChunk(stream: Duplex): Promise<Buffer> {
  return ((await once(stream, 'data')) as [Buffer])[0];
}

/** Each accepted stream echoes what it gets. */
function echo(accepted: AcceptedStream[]): (a: AcceptedStream) => void {
  return (a) => {
    accepted.push(a);
    a.stream.pipe(a.stream);
  };
}

describe('the WebSocket listener', () => {
  let pki: TestPki;
  let trust: string;
  const tls = () => ({ certKey: pki.server.certFile, privateKey: pki.server.keyFile, extraCertChain: pki.intermediate.certFile });
  const open: Duplex[] = [];
  const listeners: WebSocketListener[] = [];
  async function listen(options: Partial<Parameters<typeof listenWebSocket>[0]>, onStream: (a: AcceptedStream) => void = () => undefined): Promise<WebSocketListener> {
    const listener = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb', ...options }, onStream);
    listeners.push(listener);
    return listener;
  }
  async function dialListener(listener: WebSocketListener, secure = false): Promise<Duplex> {
    const url = secure ? `wss://127.0.0.1:${listener.address.port}/pb#trustRoots=${trust}` : `ws://127.0.0.1:${listener.address.port}/pb`;
    const stream = await dial({ endpoint: parseEndpoint(url), environmentProxy: false });
    stream.on('error', () => undefined);
    open.push(stream);
    return stream;
  }

  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
  });
  after(async () => {
    for (const stream of open) stream.destroy();
    for (const listener of listeners) await listener.close();
  });

  it('refuses a msgpack_experimental_v7 worker (Basic authorization in the upgrade) with 403, saying the relay carries PB only', async () => {
    const accepted: AcceptedStream[] = [];
    const listener = await listen({}, (a) => accepted.push(a));
    for (const path of ['/', '/pb']) {
      const stream = await dial({ endpoint: parseEndpoint(`tcp:127.0.0.1:${listener.address.port}`), environmentProxy: false });
      const refused = await upgradeToMsgpack(stream, { url: `ws://127.0.0.1:${listener.address.port}${path}`, path, timeout: 5 }, basicAuthorization(Buffer.from('w'), Buffer.from('pw'))).then(
        () => assert.fail('upgraded'),
        (err: BbgateError) => err,
      );
      assert.equal(refused.code, 'WS_UPGRADE_REFUSED');
      assert.match(refused.message, /answered "HTTP 403 Forbidden".*carries PB only: msgpack_experimental_v7 workers are refused/);
    }
    assert.equal(accepted.length, 0);
  });

  it('closes (1009) a client at the header of a message larger than 256 KiB, before buffering any of it', async () => {
    const accepted: AcceptedStream[] = [];
    const listener = await listen({}, (a) => accepted.push(a));
    const client = await upgradeRaw(listener.address.port);
    const head = client.received().length;
    const errored = once(accepted[0]!.stream, 'error');
    // FIN + binary, masked, 64-bit length of 2 MiB, a zero mask, and no payload at all.
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(2n * 1024n * 1024n);
    client.socket.write(Buffer.concat([Buffer.from([0x82, 0xff]), length, Buffer.alloc(4)]));
    await within(client.closed, DEADLINE_MS, 'the connection closed');
    // A close frame with status 1009 (message too big).
    assert.deepEqual([...client.received().subarray(head)], [0x88, 0x02, 0x03, 0xf1]);
    const [err] = (await errored) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  });

  it('drops a ws:// client that sends nothing, or half a request, and a wss:// one that never starts TLS; upgraded ones stay', async () => {
    const accepted: AcceptedStream[] = [];
    const plain = await listen({ handshakeTimeoutMs: TIMEOUT_MS }, echo(accepted));
    const secure = await listen({ handshakeTimeoutMs: TIMEOUT_MS, tls: tls() }, echo(accepted));
    const upgraded = [await dialListener(plain), await dialListener(secure, true)];
    const silent = await rawClient(plain.address.port);
    const halfway = await rawClient(plain.address.port);
    halfway.socket.write('GET /pb HTTP/1.1\r\nHost: x\r\n');
    const silentTls = await rawClient(secure.address.port);
    await within(Promise.all([silent.closed, halfway.closed, silentTls.closed]), DEADLINE_MS, 'the silent clients closed');
    assert.match(silent.received().toString('latin1'), /^HTTP\/1\.1 408 /);
    assert.equal(silentTls.received().length, 0);
    // Well past the timeout, the upgraded connections still carry bytes both ways.
    for (const stream of upgraded) {
      const back = nextChunk(stream);
      stream.write('still here');
      assert.equal((await within(back, DEADLINE_MS, 'the echo')).toString(), 'still here');
    }
  });

  it('reports a client whose upgrade request fails (cut off, reset, not HTTP) as a websocket failure, and a failed TLS handshake once, as tls', async () => {
    const failures: { stage: string; err: string }[] = [];
    let reported: () => void = () => undefined;
    const onClientError = (_peer: string, err: Error, stage: string) => {
      failures.push({ stage, err: err.message });
      reported();
    };
    const plain = await listen({ handshakeTimeoutMs: TIMEOUT_MS, onClientError });
    const secure = await listen({ handshakeTimeoutMs: TIMEOUT_MS, tls: tls(), onClientError });
    const all = new Promise<void>((resolve) => (reported = () => failures.length >= 4 && resolve()));
    const halfway = await rawClient(plain.address.port);
    halfway.socket.end('GET /pb HTTP/1.1\r\nHost: x\r\n');
    const reset = await rawClient(plain.address.port);
    reset.socket.write('GET /pb HTTP/1.1\r\nHost: x\r\n');
    const garbage = await rawClient(plain.address.port);
    garbage.socket.write(Buffer.from([0x01, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    const notTls = await rawClient(secure.address.port);
    notTls.socket.write('GET /pb HTTP/1.1\r\nHost: x\r\n\r\n');
    reset.socket.resetAndDestroy();
    await within(all, 6 * TIMEOUT_MS, 'four failures reported');
    assert.deepEqual(failures.map((f) => f.stage).sort(), ['tls', 'websocket', 'websocket', 'websocket'], JSON.stringify(failures));
  });

  it('shows onSocket each raw connection before TLS or HTTP, and destroys those it refuses at once', async () => {
    for (const secure of [false, true]) {
      const seen: Socket[] = [];
      let admit = true;
      const accepted: AcceptedStream[] = [];
      const listener = await listen(
        {
          ...(secure ? { tls: tls() } : {}),
          onSocket: (socket) => {
            seen.push(socket);
            return admit;
          },
        },
        echo(accepted),
      );
      const first = await dialListener(listener, secure);
      assert.equal(seen.length, 1);
      assert.ok(!(seen[0] instanceof TLSSocket), 'the raw socket, not its TLS layer');
      assert.equal(seen[0]!.remoteAddress, '127.0.0.1');
      admit = false;
      // Without onSocket, neither would be closed before the 10 s handshake timeout.
      const refused = await rawClient(listener.address.port);
      if (!secure) refused.socket.write('GET /pb HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      await within(refused.closed, DEADLINE_MS, 'the refused connection closed');
      assert.equal(refused.received().length, 0, 'not a byte of TLS or HTTP');
      assert.equal(seen.length, 2);
      assert.equal(seen[1]!.remotePort, refused.socket.localPort);
      assert.equal(accepted.length, 1);
      // The admitted connection is unaffected, and the listener admits again when told to.
      const back = nextChunk(first);
      first.write('ok');
      assert.equal((await back).toString(), 'ok');
      admit = true;
      await dialListener(listener, secure);
      assert.equal(accepted.length, 2);
    }
  });

  it('with proxyFrom, reads a trusted connection\'s PROXY header before HTTP and takes the peer from it; others are served as they are', async () => {
    const seen: Socket[] = [];
    const failures: { peer: string; err: Error; stage: string }[] = [];
    const accepted: AcceptedStream[] = [];
    const listener = await listen({
      handshakeTimeoutMs: TIMEOUT_MS,
      proxyFrom: new AddressSet(['127.0.0.1/32'], (problem) => assert.fail(problem)),
      onClientError: (peer, err, stage) => failures.push({ peer, err, stage }),
      onSocket: (socket) => seen.push(socket) > 0,
    }, echo(accepted));
    const upgrade = `GET /pb HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`;
    const upgraded = async (client: Awaited<ReturnType<typeof rawClient>>) => {
      while (!client.received().includes('\r\n\r\n')) await within(once(client.socket, 'data'), DEADLINE_MS, 'the upgrade answer');
      assert.match(client.received().toString('latin1'), /^HTTP\/1\.1 101 /);
    };

    // v1 with the request in the same packet.
    const v1 = await rawClient(listener.address.port);
    open.push(v1.socket);
    v1.socket.write(`PROXY TCP4 198.51.100.7 10.0.0.5 40000 443\r\n${upgrade}`);
    await upgraded(v1);
    assert.deepEqual(
      [accepted[0]!.remoteAddress, accepted[0]!.remotePort, accepted[0]!.localAddress, accepted[0]!.localPort],
      ['198.51.100.7', 40000, '10.0.0.5', 443],
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.remoteAddress, '127.0.0.1', 'onSocket sees the raw socket, the load balancer\'s');

    // v2, the request only after a pause.
    const v2 = await rawClient(listener.address.port);
    open.push(v2.socket);
    v2.socket.write(proxyV2Header({ address: '2001:db8::7', port: 1 }, { address: '2001:db8::1', port: 2 }));
    await new Promise((r) => setTimeout(r, 50));
    v2.socket.write(upgrade);
    await upgraded(v2);
    assert.equal(accepted[1]!.remoteAddress, '2001:db8::7');

    // HTTP's own timeout still holds after the header.
    const slow = await rawClient(listener.address.port);
    slow.socket.write(`PROXY TCP4 198.51.100.8 10.0.0.5 40001 443\r\nGET /pb HTTP/1.1\r\n`);
    await within(slow.closed, DEADLINE_MS, 'the slow request closed');
    assert.match(slow.received().toString('latin1'), /^HTTP\/1\.1 408 /);
    // Reported as a failed upgrade, from the address its header gave.
    assert.deepEqual(failures.map((f) => [f.stage, f.peer]), [['websocket', '198.51.100.8:40001']]);
    failures.length = 0;

    // From a trusted address without a header: dropped before HTTP sees a byte, and reported.
    const bare = await rawClient(listener.address.port);
    const barePort = bare.socket.localPort;
    bare.socket.write(upgrade);
    await within(bare.closed, DEADLINE_MS, 'the connection without a header closed');
    assert.equal(bare.received().length, 0);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.peer, `127.0.0.1:${barePort}`);
    assert.match(failures[0]!.err.message, /not a PROXY protocol header/);

    // From elsewhere: an ordinary client, its own address the peer.
    const direct = await dial({ endpoint: parseEndpoint(`ws://127.0.0.1:${listener.address.port}/pb#bindAddress=127.0.0.9`), environmentProxy: false });
    open.push(direct);
    assert.equal(accepted[2]!.remoteAddress, '127.0.0.9');
    assert.equal(seen.length, 5);
    assert.equal(failures.length, 1);
  });

  it('close() stops listening and resolves with a WebSocket open, which keeps working; idle HTTP connections are closed', async () => {
    const accepted: AcceptedStream[] = [];
    const listener = await listen({}, echo(accepted));
    const stream = await dialListener(listener);
    const idle = await rawClient(listener.address.port);
    idle.socket.write('GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!idle.received().includes('\r\n\r\n')) await within(once(idle.socket, 'data'), DEADLINE_MS, 'the answer to the idle request');
    await within(listener.close(), DEADLINE_MS, 'close()');
    await within(idle.closed, DEADLINE_MS, 'the idle keep-alive connection closed');
    const refused = connect(listener.address.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    const back = nextChunk(stream);
    stream.write('after close');
    assert.equal((await within(back, DEADLINE_MS, 'the echo')).toString(), 'after close');
  });
});
