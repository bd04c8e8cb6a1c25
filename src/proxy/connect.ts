import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostPort, isPort } from '../address/host-port.js';
import { VERSION } from '../version.js';
import { basicToken, type ProxyConfig } from '../address/proxy-string.js';
import { closedFailure, ProxyError, replyFailure, socketFailure, timeoutFailure, type Attempt, type Phase } from './failures.js';
import { parseConnectReply } from './reply.js';

export interface TunnelOptions {
  /** Bounds the whole handshake: reaching the proxy, TLS with it, and its answer. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** CA certificates (PEM) that verify an https:// proxy, in place of Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface Tunnel {
  /** The connection to the proxy, now a byte pipe to host:port; bytes the far end sent along with the reply are buffered in it, first in line. */
  socket: Socket;
  statusLine: string;
  headers: Record<string, string>;
}

/**
 * Opens an HTTP CONNECT tunnel to host:port through the proxy. Written on
 * `net`/`tls` rather than undici's Client#connect, which drops the reason
 * phrase of the status line and cannot say which step failed.
 */
export async function connectThroughProxy(proxy: ProxyConfig, host: string, port: number, options: TunnelOptions): Promise<Tunnel> {
  const target = hostPort(host, port);
  const attempt: Attempt = { proxy: proxy.url.origin, target, port };
  checkTarget(host, port, attempt);
  options.signal?.throwIfAborted();
  const proxyHost = proxy.url.hostname.replace(/^\[(.*)\]$/, '$1');
  const tls = proxy.url.protocol === 'https:';
  const credentials = proxy.username !== undefined || proxy.password !== undefined;

  return new Promise((resolve, reject) => {
    const deadline = Date.now() + options.timeoutMs;
    const connectMs = Math.min(options.timeoutMs, (proxy.connectTimeoutS ?? Infinity) * 1000);
    let phase: Phase = 'connect';
    let settled = false;
    let timer = setTimeout(() => fail(timeoutFailure('connect', connectMs / 1000, attempt)), connectMs);
    let received = Buffer.alloc(0);

    const endpoint = {
      host: proxyHost,
      port: Number(proxy.url.port) || (tls ? 443 : 80),
      ...(proxy.bindAddress ? { localAddress: proxy.bindAddress } : {}),
    };
    const socket: Socket = tls ? tlsConnect({ ...endpoint, ALPNProtocols: ['http/1.1'], ...(options.ca ? { ca: options.ca } : {}) }) : netConnect(endpoint);

    const enter = (next: Phase) => {
      phase = next;
      clearTimeout(timer);
      timer = setTimeout(() => fail(timeoutFailure(next, options.timeoutMs / 1000, attempt)), deadline - Date.now());
      if (next === 'reply') socket.write(request(target, proxy));
    };
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) received = Buffer.concat([received, chunk]);
      const reply = parseConnectReply(received);
      if (reply.kind === 'incomplete') return;
      if (reply.kind === 'not-http') {
        fail(new ProxyError('PROXY_NOT_HTTP', `the proxy ${attempt.proxy} does not speak HTTP (asked to tunnel to ${target}): ${reply.detail}`));
      } else if (reply.statusCode < 200 || reply.statusCode > 299) {
        fail(replyFailure(reply, attempt, credentials));
      } else {
        settle();
        if (reply.rest.length) socket.unshift(reply.rest);
        socket.setNoDelay(true);
        resolve({ socket, statusLine: reply.statusLine, headers: reply.headers });
      }
    };
    const onError = (err: Error) => fail(socketFailure(err, phase, attempt));
    const onClose = () => fail(closedFailure(phase, received.length, attempt));
    const onAbort = () => fail(options.signal!.reason);

    const onConnect = () => enter(tls ? 'tls' : 'reply');
    const onSecureConnect = () => enter('reply');

    socket.once('connect', onConnect);
    if (tls) socket.once('secureConnect', onSecureConnect);
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('end', onClose);
    socket.on('close', onClose);
    options.signal?.addEventListener('abort', onAbort, { once: true });

    function settle(): boolean {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect).off('secureConnect', onSecureConnect);
      socket.off('readable', onReadable).off('error', onError).off('end', onClose).off('close', onClose);
      return true;
    }
    function fail(err: unknown): void {
      if (!settle()) return;
      socket.destroy();
      reject(err);
    }
  });
}

function request(target: string, proxy: ProxyConfig): string {
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`, `User-Agent: bbgate/${VERSION}`];
  if (proxy.username !== undefined || proxy.password !== undefined) {
    lines.push(`Proxy-Authorization: Basic ${basicToken(proxy)}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The target goes into the request line and Host: anything but a plain name or address could smuggle in headers. */
function checkTarget(host: string, port: number, a: Attempt): void {
  if (!isIP(host) && !/^[A-Za-z0-9_.-]+$/.test(host)) {
    throw new ProxyError('ENDPOINT_SYNTAX', `cannot ask the proxy ${a.proxy} for ${JSON.stringify(host)}: not a host name or IP address`);
  }
  if (!isPort(port)) {
    throw new ProxyError('ENDPOINT_SYNTAX', `cannot ask the proxy ${a.proxy} for ${a.target}: ports are whole numbers from 1 to 65535`);
  }
}
