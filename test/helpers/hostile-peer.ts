// A scripted hostile peer for the fault matrix (test/faults): it plays a Buildbot master (and the
// HTTP proxy or WebSocket gateway in front of it), or a worker, correctly up to one stage of the
// connection, and there closes cleanly, resets, stalls forever or sends garbage. In between it
// speaks just enough real PB (Banana bytes, a challenge, a perspective, answers) for bbgate's
// probe, worker and relay to get that far; with no fault it is a good peer throughout.
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureVersion } from 'node:tls';
import WebSocket, { createWebSocketStream, WebSocketServer } from 'ws';
import { BananaParser } from '../../src/pb/banana/parser.js';
import { encodeSexp, type Sexp } from '../../src/pb/banana/writer.js';

export type Fault = 'close' | 'reset' | 'stall' | 'garbage';
export const FAULTS: readonly Fault[] = ['close', 'reset', 'stall', 'garbage'];

/**
 * Where the peer playing the master breaks off: right at TCP accept; in the proxy's CONNECT
 * reply (its status line, its header block, the body of a refusal); in the TLS handshake
 * (before the server's first flight, or right after the handshake); in the answer to the
 * WebSocket upgrade; in the PB dialect offer, the version, the login challenge, the verdict on
 * the password, or the first command after it.
 */
export type MasterStage =
  | 'tcp' | 'proxy-status' | 'proxy-headers' | 'proxy-body' | 'tls-before' | 'tls-after' | 'websocket'
  | 'pb-offer' | 'pb-version' | 'login-challenge' | 'login-verdict' | 'first-command';

/**
 * Where the peer playing a worker breaks off: right after connecting; before its ClientHello or
 * right after the TLS handshake; in its upgrade request; in its dialect choice, its version, its
 * login call, its respond() call, or its answer to the master's first command.
 */
export type WorkerStage =
  | 'tcp' | 'tls-before' | 'tls-after' | 'websocket'
  | 'pb-offer' | 'pb-version' | 'login-challenge' | 'login-verdict' | 'first-command';

/** What an HTTP client, a TLS stack or a Banana parser cannot read: no HTTP status, no TLS record, a Banana type byte that does not exist. */
export const GARBAGE = Buffer.from([0x01, 0xff, 0x00, 0x47, 0x41, 0x52, 0x42, 0x41, 0x47, 0x45, 0x0d, 0x0a, 0x0d, 0x0a]);

const text = (s: string) => Buffer.from(s, 'latin1');
const str = (v: Sexp | undefined) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : undefined);
export const OFFER = encodeSexp([text('pb'), text('none')]);

/**
 * Breaks off: `partial` (the first bytes of what was due) goes out first, so that a peer that
 * stops mid-message is covered too; garbage replaces the message.
 */
function breakOff(stream: Duplex, raw: Socket, fault: Fault, partial: Buffer): void {
  if (fault === 'garbage') {
    stream.write(GARBAGE);
    return;
  }
  if (partial.length) stream.write(partial);
  if (fault === 'close') stream.end();
  // The RST goes out once the partial bytes are on the wire, as a peer that crashes mid-message would.
  else if (fault === 'reset') setImmediate(() => raw.resetAndDestroy());
  // 'stall': nothing more, ever; the socket stays open until the test ends.
}

const half = (b: Buffer) => b.subarray(0, Math.max(1, b.length >> 1));

/** Reads what a peer sends: raw bytes and HTTP heads first, then Banana expressions. */
class Reader {
  private buffer = Buffer.alloc(0);
  private readonly expressions: Sexp[] = [];
  private parser: BananaParser | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer) => {
    if (this.parser) this.parser.feed(chunk);
    else this.buffer = Buffer.concat([this.buffer, chunk]);
    this.notify();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.notify();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onEnd);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async until<T>(take: () => T | undefined): Promise<T> {
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      if (this.ended) throw new Error('the other side went away');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Some bytes, whatever they are. */
  some(): Promise<Buffer> {
    return this.until(() => {
      if (!this.buffer.length) return undefined;
      const got = this.buffer;
      this.buffer = Buffer.alloc(0);
      return got;
    });
  }

  /** An HTTP request or response head, up to its blank line. */
  head(): Promise<string> {
    return this.until(() => {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = this.buffer.subarray(0, end).toString('latin1');
      this.buffer = this.buffer.subarray(end + 4);
      return head;
    });
  }

  /** From here on the bytes are Banana; after a dialect choice of "pb", with the vocabulary. */
  banana(): void {
    const parser = new BananaParser((expr) => {
      if (this.expressions.length === 0 && !parser.vocab && str(expr) === 'pb') parser.vocab = true;
      this.expressions.push(expr);
    });
    this.parser = parser;
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    if (rest.length) parser.feed(rest);
  }

  setVocab(on: boolean): void {
    this.parser!.vocab = on;
  }

  expr(): Promise<Sexp> {
    return this.until(() => this.expressions.shift());
  }

  /** A PB call (`message`) the peer makes, skipping reference bookkeeping. */
  async call(): Promise<Sexp[]> {
    for (;;) {
      const e = await this.expr();
      if (Array.isArray(e) && str(e[0]) === 'message') return e;
    }
  }

  /** Stops reading, for another layer (TLS, WebSocket) to take the socket over with what is unread. */
  detach(): Buffer {
    this.stream.off('data', this.onData).off('end', this.onEnd).off('close', this.onEnd).off('error', this.onEnd);
    return this.buffer;
  }
}

/** A TLS server's credentials, and the versions it will speak. */
export interface TlsServerSide {
  key: string;
  cert: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
}

export interface MasterScript {
  /** Absent: a good master. */
  stage?: MasterStage;
  fault?: Fault;
  /** Play an HTTP CONNECT proxy first (the tunnel then leads to this same master). */
  proxy?: boolean;
  /** Then TLS (tls: endpoints). */
  tls?: TlsServerSide;
  /** Then a WebSocket upgrade (ws:// endpoints). */
  websocket?: boolean;
}

export interface HostileMaster {
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Another script for the connections that follow (a hostile master turned good, say). */
  script: MasterScript;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and plays `script` to every connection. */
export async function startHostileMaster(script: MasterScript): Promise<HostileMaster> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const peer: HostileMaster = {
    port: 0,
    get connections() {
      return connections;
    },
    script,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    playMaster(socket, peer.script).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.port = (server.address() as AddressInfo).port;
  return peer;
}

async function playMaster(socket: Socket, script: MasterScript): Promise<void> {
  const at = (stage: MasterStage) => script.stage === stage && script.fault !== undefined;
  const fault = script.fault!;
  if (at('tcp')) return breakOff(socket, socket, fault, Buffer.alloc(0));
  let stream: Duplex = socket;
  // Made only when something is read: a reader on the raw socket would take the ClientHello from TLS.
  let reader: Reader | undefined;

  if (script.proxy) {
    reader = new Reader(socket);
    await reader.head();
    const status = text('HTTP/1.1 200 Connection established\r\n');
    if (at('proxy-status')) return breakOff(socket, socket, fault, half(status));
    const headers = text('Proxy-Agent: hostile-peer\r\nX-Tunnel: yes\r\n\r\n');
    if (at('proxy-headers')) return breakOff(socket, socket, fault, Buffer.concat([status, half(headers)]));
    if (at('proxy-body')) {
      // A refusal with a body that never comes whole: the status line alone must decide.
      const refusal = text('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 400\r\n\r\n');
      return breakOff(socket, socket, fault, Buffer.concat([refusal, text('the master is down; ')]));
    }
    socket.write(Buffer.concat([status, headers]));
  }

  if (script.tls) {
    if (at('tls-before')) {
      await (reader ?? new Reader(socket)).some(); // the ClientHello, or its start
      return breakOff(socket, socket, fault, Buffer.alloc(0));
    }
    reader?.detach();
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: createSecureContext({
        key: script.tls.key,
        cert: script.tls.cert,
        ...(script.tls.minVersion ? { minVersion: script.tls.minVersion } : {}),
        ...(script.tls.maxVersion ? { maxVersion: script.tls.maxVersion } : {}),
      }),
    });
    secure.on('error', () => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    if (at('tls-after')) return breakOff(secure, socket, fault, Buffer.alloc(0));
    stream = secure;
    reader = undefined;
  }

  if (script.websocket) {
    const head = await (reader ??= new Reader(stream)).head();
    if (at('websocket')) return breakOff(stream, socket, fault, half(text('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n')));
    // The head is read; ws answers it properly from the request rebuilt for it.
    reader.detach();
    stream = await acceptWebSocket(stream, head);
    reader = new Reader(stream);
  }

  reader ??= new Reader(stream);
  reader.banana();
  if (at('pb-offer')) return breakOff(stream, socket, fault, half(OFFER));
  stream.write(OFFER);
  const choice = str(await reader.expr());
  const vocab = choice === 'pb';
  const version = encodeSexp([text('version'), 6], vocab);
  if (at('pb-version')) return breakOff(stream, socket, fault, half(version));
  stream.write(version);
  await reader.expr(); // the client's version
  const login = await reader.call();
  const challenge = encodeSexp([text('answer'), login[1]!, [text('tuple'), text('0123456789abcdef'), [text('remote'), 1]]], vocab);
  if (at('login-challenge')) return breakOff(stream, socket, fault, half(challenge));
  stream.write(challenge);
  const respond = await reader.call();
  // Any password will do: this master is about how connections end, not who may log in.
  const verdict = encodeSexp([text('answer'), respond[1]!, [text('remote'), 2]], vocab);
  if (at('login-verdict')) return breakOff(stream, socket, fault, half(verdict));
  stream.write(verdict);
  const mind = Array.isArray(respond[5]) ? (respond[5][2] as Sexp[] | undefined) : undefined;
  const mindId = Array.isArray(mind) && str(mind[0]) === 'remote' ? mind[1]! : undefined;
  const first = encodeSexp([text('message'), 1, mindId ?? 0, text('print'), 1, [text('tuple'), text('attached')], [text('dictionary')]], vocab);
  if (at('first-command')) return breakOff(stream, socket, fault, half(first));
  if (mindId !== undefined) stream.write(first);
  // Then a master that answers every call (keepalive, shutdown, ...) with None.
  for (;;) {
    const call = await reader.call();
    if (call[4] === 1) stream.write(encodeSexp([text('answer'), call[1]!, [text('None')]], vocab));
  }
}

const handshakes = new WebSocketServer({ noServer: true, perMessageDeflate: false });

/** Hands `stream` (its request head already read) to ws, which answers 101 and frames the rest. */
function acceptWebSocket(stream: Duplex, head: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    // Node's HTTP server parses the head we read again, from a stream that replays it first.
    const http = createHttpServer();
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, rest: Buffer) => {
      handshakes.handleUpgrade(req, socket, rest, (ws: WebSocket) => resolve(createWebSocketStream(ws)));
    });
    http.on('clientError', (err) => reject(err));
    stream.unshift(text(`${head}\r\n\r\n`));
    http.emit('connection', stream);
  });
}

export interface WorkerScript {
  stage?: WorkerStage;
  fault?: Fault;
  /** TLS to the listener: trust these roots (PEM), and speak these versions. */
  tls?: { ca: string; minVersion?: SecureVersion; maxVersion?: SecureVersion };
  /** A WebSocket upgrade to this path first. */
  websocketPath?: string;
  name?: string;
}

export interface WorkerRun {
  /** Resolves when the script is done: at its fault (the connection may stay open: a stall), or when the peer hangs up. */
  done: Promise<void>;
  /** Ends the connection, stalled or not. */
  destroy(): void;
}

/** Connects to 127.0.0.1:port as a worker and plays `script`. */
export function playHostileWorker(port: number, script: WorkerScript): WorkerRun {
  const socket = netConnect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  let top: Duplex = socket;
  const done = (async () => {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const at = (stage: WorkerStage) => script.stage === stage && script.fault !== undefined;
    const fault = script.fault!;
    if (at('tcp') || (at('tls-before') && script.tls)) return breakOff(socket, socket, fault, Buffer.alloc(0));
    let stream: Duplex = socket;
    if (script.tls) {
      const secure = tlsConnect({
        socket,
        ca: script.tls.ca,
        servername: 'localhost',
        ...(script.tls.minVersion ? { minVersion: script.tls.minVersion } : {}),
        ...(script.tls.maxVersion ? { maxVersion: script.tls.maxVersion } : {}),
      });
      secure.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('close', () => reject(new Error('closed during the TLS handshake')));
      });
      if (at('tls-after')) return breakOff(secure, socket, fault, Buffer.alloc(0));
      stream = top = secure;
    }
    if (script.websocketPath !== undefined) {
      const request = text(`GET ${script.websocketPath} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      if (at('websocket')) return breakOff(stream, socket, fault, half(request));
      stream = top = await upgradeAsClient(stream, script.websocketPath);
    }
    const reader = new Reader(stream);
    reader.banana();
    await reader.expr(); // the offer
    const choice = encodeSexp(text('pb'));
    if (at('pb-offer')) return breakOff(stream, socket, fault, half(choice));
    stream.write(choice);
    reader.setVocab(true);
    await reader.expr(); // the version
    const version = encodeSexp([text('version'), 6], true);
    if (at('pb-version')) return breakOff(stream, socket, fault, half(version));
    stream.write(version);
    const loginCall = encodeSexp([text('message'), 1, text('root'), text('login'), 1, [text('tuple'), text(script.name ?? 'w')], [text('dictionary')]], true);
    if (at('login-challenge')) return breakOff(stream, socket, fault, half(loginCall));
    stream.write(loginCall);
    const challenge = await reader.expr();
    const challenger = Array.isArray(challenge) && Array.isArray(challenge[2]) ? (challenge[2][2] as Sexp[])[1]! : 1;
    const respondCall = encodeSexp([text('message'), 2, challenger, text('respond'), 1, [text('tuple'), text('0123456789abcdef'), [text('remote'), 1]], [text('dictionary')]], true);
    if (at('login-verdict')) return breakOff(stream, socket, fault, half(respondCall));
    stream.write(respondCall);
    await reader.expr(); // the verdict
    const command = await reader.call();
    const answer = encodeSexp([text('answer'), command[1]!, [text('None')]], true);
    if (at('first-command')) return breakOff(stream, socket, fault, half(answer));
    if (command[4] === 1) stream.write(answer);
  })();
  return { done, destroy: () => (top.destroy(), socket.destroy()) };
}

/** A WebSocket client over an open stream (ws never dials here: createConnection hands it ours). */
function upgradeAsClient(stream: Duplex, path: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://localhost${path}`, { createConnection: () => stream as Socket, perMessageDeflate: false });
    ws.once('open', () => resolve(createWebSocketStream(ws)));
    ws.once('error', reject);
  });
}
