// Peers that do not speak TLS at all: a plain PB master, a web server, a port that hangs up, a
// port that says nothing. The error must say what is on the other end.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTls } from '../../src/tls/index.js';
import { testPki } from '../helpers/pki.js';
import { dial, PB_OFFER, plainPeer, rejectsWith, type Running } from './support.js';

describe('startTls: peers that do not speak TLS', () => {
  const running: Running[] = [];
  let rootDir: string;
  before(async () => {
    const pki = await testPki();
    rootDir = await pki.trustDir(pki.root);
  });
  after(() => Promise.all(running.map((r) => r.close())));

  async function peer(onConnection: Parameters<typeof plainPeer>[0]): Promise<number> {
    const p = await plainPeer(onConnection);
    running.push(p);
    return p.port;
  }

  const tls = async (port: number, timeout = 5000) =>
    startTls(await dial(port), { serverName: 'localhost', trustRoots: rootDir, verify: 'full', timeout });

  it('a plain PB master: shows its dialect offer escaped and recognises it', async () => {
    const port = await peer((socket) => socket.write(PB_OFFER));
    await rejectsWith(
      tls(port),
      'TLS_NOT_TLS',
      'the peer answered with plain bytes, not TLS ("\\x02\\x80\\x02\\x82pb\\x04\\x82none": a Buildbot PB greeting, sent without TLS)',
      'is this a plain tcp: port?',
    );
  });

  it('a plain PB master that speaks only after a moment, when our ClientHello is already out', async () => {
    const port = await peer((socket) => setTimeout(() => socket.write(PB_OFFER), 50));
    await rejectsWith(tls(port), 'TLS_NOT_TLS', 'a Buildbot PB greeting');
  });

  it('a web server: shows its answer as text', async () => {
    const server = createHttpServer((_req, res) => res.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    running.push({ port: 0, close: () => new Promise((resolve) => server.close(() => resolve())) });
    server.closeAllConnections();
    await rejectsWith(tls((server.address() as AddressInfo).port), 'TLS_NOT_TLS', '"HTTP/1.1 400 Bad Request', 'an HTTP server', 'is this a plain tcp: port?');
  });

  it('an SSH server', async () => {
    const port = await peer((socket) => socket.write('SSH-2.0-OpenSSH_9.2p1\r\n'));
    await rejectsWith(tls(port), 'TLS_NOT_TLS', '"SSH-2.0-OpenSSH_9.2p1\\r\\n": an SSH server');
  });

  it('a port that hangs up at once', async () => {
    const port = await peer((socket) => socket.end());
    await rejectsWith(tls(port), 'TLS_HANDSHAKE', 'the peer closed the connection during the TLS handshake without a word', 'plain tcp: service');
  });

  it('a port that resets the connection', async () => {
    const port = await peer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    await rejectsWith(tls(port), 'TLS_HANDSHAKE', 'without a word');
  });

  it('a connection that closed before it was handed over', async () => {
    const port = await peer((socket) => socket.end());
    const raw = await dial(port);
    await new Promise((resolve) => raw.once('close', resolve));
    await rejectsWith(startTls(raw, { serverName: 'localhost', verify: 'full', timeout: 5000 }), 'TLS_HANDSHAKE', 'without a word');
  });

  it('a port that says nothing: NET_TIMEOUT within the handshake timeout', async () => {
    const port = await peer(() => {});
    await rejectsWith(tls(port, 300), 'NET_TIMEOUT', 'no answer to the TLS handshake within 0.3 s', 'said nothing');
  });
});
