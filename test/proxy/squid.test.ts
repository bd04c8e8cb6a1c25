// CONNECT tunnels through a real squid 5 on loopback, to a PB-like target that speaks first.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { connectThroughProxy } from '../../src/proxy/index.js';
import { rejectsWith, secretForms } from './expect.js';
import { closedPort, readUntil, startTarget, type Peer } from './peers.js';

const GREETING = 'PB-GREETING\n';
const USER = 'w0rker';
const PASSWORD = 'p@ss:w/rd %41é';
const SECRETS = [...secretForms(USER, PASSWORD), USER];

async function exchange(socket: import('node:net').Socket): Promise<void> {
  assert.equal(await readUntil(socket, GREETING), GREETING);
  socket.write('ping\n');
  assert.equal(await readUntil(socket, 'ping\n'), 'ping\n');
}

describe('CONNECT through a real squid', () => {
  let target: Peer;
  let target6: Peer;
  let down: number;
  let squid: RunningSquid;

  before(async () => {
    target = await startTarget(GREETING);
    target6 = await startTarget(GREETING, '::1');
    down = await closedPort();
    squid = await startSquid({ allowPorts: [target.port, target6.port, down] });
  });
  after(async () => {
    await squid?.stop();
    await target?.close();
    await target6?.close();
  });

  it('opens a tunnel that carries bytes both ways, starting with what the target sends first', async () => {
    const tunnel = await connectThroughProxy(parseProxyString(`tcp:127.0.0.1:${squid.port}`), '127.0.0.1', target.port, { timeoutMs: 5000 });
    assert.equal(tunnel.statusLine, 'HTTP/1.1 200 Connection established');
    await exchange(tunnel.socket);
    tunnel.socket.end();
    await once(tunnel.socket, 'close');
    // squid logs a tunnel when it closes.
    await waitFor(() => squid.accessLog().includes(`TCP_TUNNEL/200`), "the tunnel in squid's access log");
    assert.match(squid.accessLog(), new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT 127\\.0\\.0\\.1:${target.port} `));
  });

  it('tunnels to an IPv6 target, bracketed in the request', async () => {
    const tunnel = await connectThroughProxy(parseProxyString(squid.url), '::1', target6.port, { timeoutMs: 5000 });
    await exchange(tunnel.socket);
    tunnel.socket.destroy();
  });

  it('reports PROXY_BAD_GATEWAY when squid cannot reach the target (503, ERR_CONNECT_FAIL)', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(squid.url), '127.0.0.1', down, { timeoutMs: 5000 }),
      'PROXY_BAD_GATEWAY',
      new RegExp(`^the proxy http://127\\.0\\.0\\.1:${squid.port} could not reach the master at 127\\.0\\.0\\.1:${down}: it answered "HTTP/1\\.1 503 Service Unavailable" \\(X-Squid-Error: ERR_CONNECT_FAIL 111\\)`),
    );
  });

  it('closes the tunnel when the proxy dies mid-session, and then reports PROXY_REFUSED', async () => {
    const doomed = await startSquid({ allowPorts: [target.port] });
    const tunnel = await connectThroughProxy(parseProxyString(doomed.url), '127.0.0.1', target.port, { timeoutMs: 5000 });
    await exchange(tunnel.socket);
    const closed = once(tunnel.socket, 'close');
    tunnel.socket.on('error', () => undefined);
    await doomed.stop();
    await closed;
    await rejectsWith(
      connectThroughProxy(parseProxyString(doomed.url), '127.0.0.1', target.port, { timeoutMs: 5000 }),
      'PROXY_REFUSED',
      new RegExp(`^cannot reach the proxy http://127\\.0\\.0\\.1:${doomed.port} \\(to tunnel to 127\\.0\\.0\\.1:${target.port}\\): connection refused`),
    );
  });
});

describe('squid refusing ports', () => {
  let target: Peer;
  before(async () => (target = await startTarget(GREETING)));
  after(() => target?.close());

  it('stock rules (CONNECT to 443 only) refuse the master port: PROXY_FORBIDDEN', async () => {
    const squid = await startSquid();
    try {
      await rejectsWith(
        connectThroughProxy(parseProxyString(squid.url), '127.0.0.1', target.port, { timeoutMs: 5000 }),
        'PROXY_FORBIDDEN',
        new RegExp(`^the proxy ${squid.url} refuses to tunnel to 127\\.0\\.0\\.1:${target.port}: it answered "HTTP/1\\.1 403 Forbidden" \\(X-Squid-Error: ERR_ACCESS_DENIED 0\\); proxies often allow CONNECT only to port 443, so ask its administrators to allow port ${target.port}$`),
      );
    } finally {
      await squid.stop();
    }
  });

  it('an explicitly denied port is refused even when other ports are open', async () => {
    const squid = await startSquid({ allowPorts: 'any', denyPorts: [target.port] });
    try {
      await rejectsWith(connectThroughProxy(parseProxyString(squid.url), '127.0.0.1', target.port, { timeoutMs: 5000 }), 'PROXY_FORBIDDEN', /403 Forbidden/);
    } finally {
      await squid.stop();
    }
  });
});

describe('squid with Basic authentication, over http:// and https://', () => {
  let target: Peer;
  let squid: RunningSquid;
  const url = (base: string, user = USER, password = PASSWORD) => base.replace('//', `//${encodeURIComponent(user)}:${encodeURIComponent(password)}@`);

  before(async () => {
    target = await startTarget(GREETING);
    squid = await startSquid({ auth: { users: { [USER]: PASSWORD } }, allowPorts: [target.port], tls: true });
  });
  after(async () => {
    await squid?.stop();
    await target?.close();
  });

  it('tunnels with the right credentials (URL-decoded before they are sent)', async () => {
    const tunnel = await connectThroughProxy(parseProxyString(url(squid.url)), '127.0.0.1', target.port, { timeoutMs: 5000 });
    await exchange(tunnel.socket);
    tunnel.socket.destroy();
  });

  it('says PROXY_AUTH_FAILED, naming Basic, for wrong credentials', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(url(squid.url, USER, 'wrong')), '127.0.0.1', target.port, { timeoutMs: 5000 }),
      'PROXY_AUTH_FAILED',
      new RegExp(`^the proxy ${squid.url} rejected the Basic credentials \\(to tunnel to 127\\.0\\.0\\.1:${target.port}\\): it answered "HTTP/1\\.1 407 Proxy Authentication Required" to the last Basic message; check the user name and password in the proxy URL$`),
      [...SECRETS, 'wrong'],
    );
  });

  it('says PROXY_AUTH_REQUIRED, and that none were sent, without credentials', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(squid.url), '127.0.0.1', target.port, { timeoutMs: 5000 }),
      'PROXY_AUTH_REQUIRED',
      /it offers Basic; no credentials were sent: put them in the proxy URL, http:\/\/USER:PASSWORD@HOST:PORT$/,
    );
  });

  it('tunnels through TLS to an https:// proxy trusted with a CA option (TLS inside the tunnel is the caller\'s)', async () => {
    const tunnel = await connectThroughProxy(parseProxyString(url(squid.tlsUrl!)), '127.0.0.1', target.port, { timeoutMs: 5000, ca: squid.ca! });
    assert.equal(tunnel.socket.constructor.name, 'TLSSocket');
    await exchange(tunnel.socket);
    tunnel.socket.destroy();
  });

  it('says PROXY_TLS when the https:// proxy\'s certificate is not trusted', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(url(squid.tlsUrl!)), '127.0.0.1', target.port, { timeoutMs: 5000 }),
      'PROXY_TLS',
      new RegExp(`^TLS with the proxy ${squid.tlsUrl} failed \\(to tunnel to 127\\.0\\.0\\.1:${target.port}\\): DEPTH_ZERO_SELF_SIGNED_CERT`),
      SECRETS,
    );
  });

  it('says PROXY_TLS when an https:// URL points at the plain-HTTP port', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(url(`https://127.0.0.1:${squid.port}`)), '127.0.0.1', target.port, { timeoutMs: 5000, ca: squid.ca! }),
      'PROXY_TLS',
      /^TLS with the proxy https:\/\/127\.0\.0\.1:\d+ failed/,
      SECRETS,
    );
  });

  it('says PROXY_NOT_HTTP, recognising TLS, when an http:// URL points at the TLS port', async () => {
    await rejectsWith(
      connectThroughProxy(parseProxyString(url(`http://127.0.0.1:${squid.tlsPort}`)), '127.0.0.1', target.port, { timeoutMs: 5000 }),
      'PROXY_NOT_HTTP',
      new RegExp(`^the proxy http://127\\.0\\.0\\.1:${squid.tlsPort} does not speak HTTP \\(asked to tunnel to 127\\.0\\.0\\.1:${target.port}\\): it answered "\\\\x15\\\\x03.*" \\(a TLS record: is it an https:// proxy\\?\\), which is not HTTP$`),
      SECRETS,
    );
  });
});
