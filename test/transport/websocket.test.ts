// WebSocket transports against real peers on loopback: a real Buildbot 3.7 master behind
// listenWebSocket (each accepted stream piped to the master's PB port by a few lines here, not a
// relay), real squid with Basic auth, wss:// with the test PKI; `bbgate probe` as a user runs it,
// and a bbgate worker that runs a real build over ws://. Every failure must name its layer.
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { listenWebSocket, type AcceptedStream } from '../../src/relay/websocket-listener.js';
import { dial } from '../../src/route/dial.js';
import { parseEndpoint } from '../../src/address/connection-string.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { HOST_ALIAS, startSquid, type RunningSquid } from '../helpers/squid.js';
import { within } from '../helpers/wait.js';

const PROXY_USER = 'alice';
const PROXY_PASSWORD = 'pr0xy:pass@';
const login = ['--name', 'ww', '--password', 'ww-s3cret', '--json'];

type Listener = Awaited<ReturnType<typeof listenWebSocket>>;

/** A raw TCP server that does `onConnection` with each socket, for peers that misbehave on purpose. */
async function rawServer(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Reads one HTTP request head off a raw socket. */
async function requestHead(socket: Socket): Promise<string> {
  let head = '';
  while (!head.includes('\r\n\r\n')) head += ((await within(once(socket, 'data'), 15_000, 'an HTTP request head')) as [Buffer])[0].toString('latin1');
  return head;
}

/** A plain HTTP GET to the listener: status and body. */
function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('WebSocket transports (ws://, wss://) to a real Buildbot master', () => {
  let pki: TestPki;
  let master: RunningMaster;
  let plain: Listener;
  let secure: Listener;
  let squid: RunningSquid;
  let trust: string;
  let wrongTrust: string;
  const accepted: AcceptedStream[] = [];
  const raw: Server[] = [];
  const proxyUrl = () => `http://${PROXY_USER}:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${squid.port}`;

  // The test's stand-in for a relay: bytes in both directions, nothing else.
  const toMaster = (a: AcceptedStream) => {
    accepted.push(a);
    const upstream = connect(master.pbPort, '127.0.0.1');
    pipeline(a.stream, upstream, a.stream, () => undefined);
  };

  before(async () => {
    pki = await testPki();
    trust = await pki.trustDir(pki.root);
    wrongTrust = await pki.trustDir(pki.otherRoot);
    master = await startMaster({
      workers: [{ name: 'ww', password: 'ww-s3cret' }, { name: 'wb', password: 'wb-s3cret' }],
      builders: [
        { name: 'idle', workernames: ['ww'] },
        { name: 'hello', workernames: ['wb'], steps: [`steps.ShellCommand(command=['sh', '-c', 'echo over websocket; head -c 200000 /dev/zero | tr "\\\\0" y | wc -c'], name='hello')`] },
      ],
    });
    plain = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb' }, toMaster);
    secure = await listenWebSocket(
      { host: '127.0.0.1', port: 0, path: '/pb', tls: { certKey: pki.server.certFile, privateKey: pki.server.keyFile, extraCertChain: pki.intermediate.certFile } },
      toMaster,
    );
    squid = await startSquid({ auth: { users: { [PROXY_USER]: PROXY_PASSWORD } }, allowPorts: [plain.address.port, secure.address.port], hosts: { [HOST_ALIAS]: '127.0.0.1' } });
  });
  after(async () => {
    for (const a of accepted) a.stream.destroy();
    for (const s of raw) s.close();
    await squid?.stop();
    await plain?.close();
    await secure?.close();
    await master?.stop();
  });

  async function probe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args], env);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }
  const last = (r: ProbeJson) => r.steps.at(-1)!;

  it('probes ws:// and logs in, with a websocket step (exit 0); the password appears nowhere', async () => {
    const { status, report, text } = await probe([`ws://127.0.0.1:${plain.address.port}/pb`, ...login]);
    assert.equal(status, 0, text);
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'websocket', 'pb', 'login', 'keepalive']);
    // The connect timeout in force: the probe's --timeout (10 s by default) caps the URL's 30.
    assert.equal(report.steps[0]!.message, `ws://127.0.0.1:${plain.address.port}/pb#timeout=10`);
    assert.equal(report.steps[4]!.message, 'GET /pb upgraded to WebSocket (HTTP 101)');
    assert.match(report.steps[6]!.message, /logged in as "ww".*builders: idle/);
    assert.doesNotMatch(text, /s3cret/);
    // The text report lines the step up with the others.
    const run = await bbgate(['probe', `ws://127.0.0.1:${plain.address.port}/pb`, '--name', 'ww', '--password', 'ww-s3cret', '--verbose']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^✔ websocket +[\d.]+ ms {2}GET \/pb upgraded to WebSocket \(HTTP 101\)$/m);
    assert.match(run.stdout, /^ {22}· sec-websocket-accept: /m);
    assert.doesNotMatch(run.stdout + run.stderr, /s3cret/);
  });

  it('probes ws:// through squid with Basic auth (exit 0), from the flag and from HTTPS_PROXY; no credential leaks', async () => {
    const { status, report, text } = await probe([`ws://127.0.0.1:${plain.address.port}/pb`, '--proxy-connection-string', proxyUrl(), ...login]);
    assert.equal(status, 0, text);
    assert.deepEqual(report.steps.map((s) => s.step), ['parse', 'proxy', 'connect', 'websocket', 'pb', 'login', 'keepalive']);
    assert.match(report.steps[2]!.message, /answered "HTTP\/1\.1 200 .*" to CONNECT 127\.0\.0\.1:\d+/);
    assert.doesNotMatch(text, /s3cret|pr0xy/);
    assert.match(squid.accessLog(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${plain.address.port} ${PROXY_USER}`));
    // By a name squid resolves to 127.0.0.1: HTTPS_PROXY never applies to a loopback master.
    const viaEnv = await probe([`ws://${HOST_ALIAS}:${plain.address.port}/pb`, ...login], { HTTPS_PROXY: proxyUrl() });
    assert.equal(viaEnv.status, 0, viaEnv.text);
    assert.match(viaEnv.report.steps[1]!.message, /from HTTPS_PROXY/);
    assert.equal(viaEnv.report.steps[2]!.step, 'connect');
    assert.doesNotMatch(viaEnv.text, /s3cret|pr0xy/);
  });

  it('probes wss:// verified against #trustRoots=, directly and through squid (exit 0)', async () => {
    const url = `wss://127.0.0.1:${secure.address.port}/pb#trustRoots=${trust}`;
    const direct = await probe([url, ...login]);
    assert.equal(direct.status, 0, direct.text);
    assert.deepEqual(direct.report.steps.map((s) => s.step), ['parse', 'proxy', 'dns', 'tcp', 'tls', 'websocket', 'pb', 'login', 'keepalive']);
    assert.match(direct.report.steps[4]!.message, /TLSv1\.[23].*certificate CN=localhost.*issued by/);
    const proxied = await probe([url, '--proxy-connection-string', proxyUrl(), ...login]);
    assert.equal(proxied.status, 0, proxied.text);
    assert.deepEqual(proxied.report.steps.map((s) => s.step), ['parse', 'proxy', 'connect', 'tls', 'websocket', 'pb', 'login', 'keepalive']);
    assert.doesNotMatch(proxied.text, /s3cret|pr0xy/);
  });

  it('probes wss:// pinned by #fingerprint= alone (with colons, as openssl prints it), and refuses another pin (exit 4)', async () => {
    const colons = new X509Certificate(pki.server.cert).fingerprint256;
    const pinned = await probe([`wss://127.0.0.1:${secure.address.port}/pb#fingerprint=sha256:${colons}`, ...login]);
    assert.equal(pinned.status, 0, pinned.text);
    assert.match(pinned.report.steps[4]!.message, new RegExp(`fingerprint=${colons.replace(/:/g, '')} \\(as pinned\\)`));
    const wrong = await probe([`wss://127.0.0.1:${secure.address.port}/pb#fingerprint=${new X509Certificate(pki.otherServer.cert).fingerprint256}`, ...login]);
    assert.equal(wrong.status, 4, wrong.text);
    assert.equal(last(wrong.report).code, 'TLS_FINGERPRINT');
  });

  it('a wrong path is WS_UPGRADE_REFUSED (exit 6), quoting the 404 and what the listener said', async () => {
    const { status, report } = await probe([`ws://127.0.0.1:${plain.address.port}/wrong?x=1`, ...login]);
    assert.equal(status, 6);
    const failed = last(report);
    assert.equal(failed.step, 'websocket');
    assert.equal(failed.code, 'WS_UPGRADE_REFUSED');
    assert.equal(
      failed.message,
      `ws://127.0.0.1:${plain.address.port}/wrong?x=1 answered "HTTP 404 Not Found" instead of upgrading to WebSocket (it said: "no WebSocket listener at this path; this listener's path is /pb")`,
    );
    assert.match(failed.hint ?? '', /check the path/);
    // The same over wss://, where the refusal comes through TLS.
    const tls = await probe([`wss://127.0.0.1:${secure.address.port}/#trustRoots=${trust}`, ...login]);
    assert.equal(tls.status, 6);
    assert.equal(last(tls.report).code, 'WS_UPGRADE_REFUSED');
    assert.match(last(tls.report).message, /^wss:\/\/127\.0\.0\.1:\d+\/ answered "HTTP 404 Not Found"/);
  });

  it('a wss:// certificate from an untrusted CA is TLS_UNTRUSTED (exit 4), and wss:// to a ws:// port is TLS_NOT_TLS', async () => {
    const untrusted = await probe([`wss://127.0.0.1:${secure.address.port}/pb#trustRoots=${wrongTrust}`, ...login]);
    assert.equal(untrusted.status, 4);
    assert.equal(last(untrusted.report).step, 'tls');
    assert.equal(last(untrusted.report).code, 'TLS_UNTRUSTED');
    // Full verification is the default: without trustRoots the platform's CAs do not know the test root.
    const platform = await probe([`wss://127.0.0.1:${secure.address.port}/pb`, ...login]);
    assert.equal(platform.status, 4);
    assert.equal(last(platform.report).code, 'TLS_UNTRUSTED');
    const notTls = await probe([`wss://127.0.0.1:${plain.address.port}/pb#trustRoots=${trust}`, ...login]);
    assert.equal(notTls.status, 4);
    assert.equal(last(notTls.report).code, 'TLS_NOT_TLS');
  });

  it('a port that does not speak HTTP (the master\'s PB port) is WS_PROTOCOL (exit 6), naming what it sent', async () => {
    const { status, report } = await probe([`ws://127.0.0.1:${master.pbPort}/pb`, ...login]);
    assert.equal(status, 6);
    assert.equal(last(report).step, 'websocket');
    assert.equal(last(report).code, 'WS_PROTOCOL');
    // The master hangs up on the request while part of it is still unread, so its kernel sends a
    // reset, which can overtake its greeting on a loaded machine: then only the hang-up is seen.
    assert.match(last(report).message, /the answer to the WebSocket upgrade \(GET \/pb\) is not HTTP \("\\x02\\x80.*a Buildbot PB greeting|the server closed the connection without answering the WebSocket upgrade \(GET \/pb\)/);
    assert.match(last(report).hint ?? '', /relay's WebSocket listener/);
  });

  it('a peer that hangs up on the upgrade is WS_PROTOCOL; one that never answers is NET_TIMEOUT naming the seconds', async () => {
    const hangUp = await rawServer((socket) => void requestHead(socket).then(() => socket.destroy()));
    const silent = await rawServer(() => undefined);
    raw.push(hangUp.server, silent.server);
    const closed = await probe([`ws://127.0.0.1:${hangUp.port}/pb`, ...login]);
    assert.equal(closed.status, 6);
    assert.equal(last(closed.report).code, 'WS_PROTOCOL');
    assert.match(last(closed.report).message, /closed the connection without answering the WebSocket upgrade \(GET \/pb\)/);
    const timeout = await probe([`ws://127.0.0.1:${silent.port}/pb`, '--timeout', '1', ...login]);
    assert.equal(timeout.status, 2);
    assert.equal(last(timeout.report).step, 'websocket');
    assert.equal(last(timeout.report).code, 'NET_TIMEOUT');
    assert.equal(last(timeout.report).message, `ws://127.0.0.1:${silent.port}/pb: no answer to the WebSocket upgrade (GET /pb) within 1 s`);
  });

  it('a server that upgrades and then sends a broken frame fails the stream with WS_PROTOCOL', async () => {
    const broken = await rawServer(async (socket) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(await requestHead(socket))![1]!;
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      // The bad frame answers the client's first message, so the client is listening by then.
      await once(socket, 'data');
      socket.write(Buffer.from([0x83, 0x00])); // opcode 3 is reserved
    });
    raw.push(broken.server);
    const stream: Duplex = await dial({ endpoint: parseEndpoint(`ws://127.0.0.1:${broken.port}/pb`), environmentProxy: false });
    const failed = once(stream, 'error').catch((e: unknown) => [e]);
    stream.write(Buffer.from('hello'));
    const [err] = (await failed) as [BbgateError];
    assert.ok(err instanceof BbgateError, String(err));
    assert.equal(err.code, 'WS_PROTOCOL');
    assert.match(err.message, /^the WebSocket peer broke the protocol: Invalid WebSocket frame: invalid opcode 3$/);
  });

  it('a bbgate worker with a ws:// connection string attaches and runs a real build', async () => {
    const worker = await startTestWorker({ connection: `ws://127.0.0.1:${plain.address.port}/pb`, workername: 'wb', password: 'wb-s3cret' });
    try {
      await worker.waitForLog(/Connected to buildmaster/);
      const build = await master.runBuild('hello');
      assert.equal(build.results, Results.SUCCESS, build.stateString);
      const step = build.steps.find((s) => s.name === 'hello');
      assert.ok(step, JSON.stringify(build.steps.map((s) => s.name)));
      assert.equal(step.logs[0]!.stdout, 'over websocket\n200000\n');
      assert.doesNotMatch(worker.lines.join('\n'), /s3cret/);
    } finally {
      assert.equal(await worker.stop(), 0);
    }
  });
});

describe('listenWebSocket on its own', () => {
  it('answers a plain GET on its path with 426 and any other path with 404, naming only its path', async () => {
    const listener = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb' }, () => assert.fail('nothing should be upgraded'));
    try {
      const onPath = await httpGet(listener.address.port, '/pb');
      assert.equal(onPath.status, 426);
      assert.equal(onPath.headers.upgrade, 'websocket');
      assert.equal(onPath.body, 'this is a WebSocket listener: connect with a WebSocket client (Upgrade: websocket) to /pb\n');
      const elsewhere = await httpGet(listener.address.port, '/secret/admin');
      assert.equal(elsewhere.status, 404);
      assert.equal(elsewhere.body, "no WebSocket listener at this path; this listener's path is /pb\n");
      // An upgrade that is not a WebSocket one (no key) is ws's 400, not a crash.
      const bad = await httpGet(listener.address.port, '/pb', { Connection: 'Upgrade', Upgrade: 'websocket' });
      assert.equal(bad.status, 400);
    } finally {
      await listener.close();
    }
  });

  it('survives a client that breaks the protocol and one that sends more than maxPayload; the stream errors instead', async () => {
    const streams: AcceptedStream[] = [];
    const listener = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb', maxPayload: 1024 }, (a) => streams.push(a));
    try {
      for (const frame of [Buffer.from([0x83, 0x80, 0, 0, 0, 0]), Buffer.concat([Buffer.from([0x82, 0xfe, 0x08, 0x00, 0, 0, 0, 0]), Buffer.alloc(2048)])]) {
        const socket = connect(listener.address.port, '127.0.0.1');
        socket.on('error', () => undefined);
        await once(socket, 'connect');
        socket.write(`GET /pb HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`);
        const head = ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
        assert.match(head, /^HTTP\/1\.1 101 /);
        const accepted = streams.at(-1)!;
        assert.equal(accepted.remoteAddress, '127.0.0.1');
        assert.equal(accepted.remotePort, socket.localPort);
        assert.equal(accepted.localPort, listener.address.port);
        const errored = once(accepted.stream, 'error');
        socket.write(frame);
        const [err] = (await errored) as [NodeJS.ErrnoException];
        assert.match(err.code ?? '', /^WS_ERR_(INVALID_OPCODE|UNSUPPORTED_MESSAGE_LENGTH)$/);
        socket.destroy();
      }
      // Still serving.
      assert.equal((await httpGet(listener.address.port, '/x')).status, 404);
    } finally {
      await listener.close();
    }
  });

  it('rejects with RELAY_CONFIG naming host:port when the port is taken, and naming the file it cannot read', async () => {
    const first = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb' }, () => undefined);
    try {
      await assert.rejects(listenWebSocket({ host: '127.0.0.1', port: first.address.port, path: '/pb' }, () => undefined), (err: BbgateError) => {
        assert.equal(err.code, 'RELAY_CONFIG');
        assert.equal(err.message, `cannot listen for WebSocket connections on 127.0.0.1:${first.address.port}: the address is in use`);
        return true;
      });
    } finally {
      await first.close();
    }
    const pki = await testPki();
    await assert.rejects(
      listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb', tls: { certKey: '/nonexistent/cert.pem', privateKey: pki.server.keyFile } }, () => undefined),
      (err: BbgateError) => {
        assert.equal(err.code, 'RELAY_CONFIG');
        assert.equal(err.message, 'WebSocket listener 127.0.0.1:0: cannot read certKey /nonexistent/cert.pem: ENOENT');
        return true;
      },
    );
    await assert.rejects(
      listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb', tls: { certKey: pki.server.certFile, privateKey: pki.otherRoot.keyFile } }, () => undefined),
      (err: BbgateError) => {
        assert.equal(err.code, 'RELAY_CONFIG');
        assert.match(err.message, /^WebSocket listener 127\.0\.0\.1:0: the certificate and key cannot be used: .*key values mismatch/);
        return true;
      },
    );
  });
});

describe('message sizes between bbgate\'s WebSocket client and the listener', () => {
  it('a 3 MiB write arrives intact, in messages the default listener and one that takes only 64 KiB both accept', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    for (const maxPayload of [undefined, 64 * 1024]) {
      let arrived!: Promise<Buffer>;
      const listener = await listenWebSocket({ host: '127.0.0.1', port: 0, path: '/pb', ...(maxPayload ? { maxPayload } : {}) }, ({ stream }) => {
        arrived = new Promise((resolve, reject) => {
          const chunks: Buffer[] = [];
          let length = 0;
          stream.on('data', (c: Buffer) => {
            chunks.push(c);
            length += c.length;
            if (length >= data.length) resolve(Buffer.concat(chunks));
          });
          stream.once('error', reject);
          stream.once('end', () => reject(new Error(`the stream ended after ${length} bytes`)));
        });
      });
      const client: Duplex = await dial({ endpoint: parseEndpoint(`ws://127.0.0.1:${listener.address.port}/pb`), environmentProxy: false });
      client.on('error', () => undefined);
      try {
        client.write(data);
        const received = await arrived;
        assert.equal(received.length, data.length);
        assert.ok(received.equals(data), `maxPayload ${maxPayload ?? 'default'}: the bytes differ`);
      } finally {
        client.destroy();
        await listener.close();
      }
    }
  });

  it('the client fails the stream with WS_PROTOCOL at the header of a message larger than 256 KiB', async () => {
    const { server, port } = await rawServer(async (socket) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(await requestHead(socket))![1]!;
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      await once(socket, 'data');
      // FIN + binary, unmasked, a 64-bit length of 2 MiB, and none of the payload.
      const length = Buffer.alloc(8);
      length.writeBigUInt64BE(2n * 1024n * 1024n);
      socket.write(Buffer.concat([Buffer.from([0x82, 0x7f]), length]));
    });
    try {
      const stream: Duplex = await dial({ endpoint: parseEndpoint(`ws://127.0.0.1:${port}/pb`), environmentProxy: false });
      const failed = once(stream, 'error').catch((e: unknown) => [e]);
      stream.write(Buffer.from('hello'));
      const [err] = (await failed) as [BbgateError];
      assert.ok(err instanceof BbgateError, String(err));
      assert.equal(err.code, 'WS_PROTOCOL');
      assert.equal(err.message, 'the WebSocket peer broke the protocol: Max payload size exceeded');
    } finally {
      server.close();
    }
  });
});
