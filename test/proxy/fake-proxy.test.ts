// The CONNECT client against scripted fake proxies: the exact request, replies in pieces,
// bytes that follow the reply, and proxies that misbehave.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { connectThroughProxy } from '../../src/proxy/index.js';
import { VERSION } from '../../src/version.js';
import { rejectsWith, secretForms } from './expect.js';
import { closedPort, readUntil, startFakeProxy, startGreeter, trickle, type Peer } from './peers.js';

const OK = 'HTTP/1.1 200 Connection established\r\n\r\n';
const opts = { timeoutMs: 3000 };

describe('CONNECT against fake proxies', () => {
  const peers: Peer[] = [];
  const fake = async (answer: Parameters<typeof startFakeProxy>[0]) => {
    const p = await startFakeProxy(answer);
    peers.push(p);
    return p;
  };
  const proxyAt = (p: Peer, userinfo = '') => parseProxyString(`http://${userinfo}127.0.0.1:${p.port}`);
  after(() => Promise.all(peers.map((p) => p.close())));

  it('sends the request line, a bracketed Host, a User-Agent and, forced with #auth=basic, preemptive Basic with the decoded credentials', async () => {
    const p = await fake((s) => s.write(OK));
    const tunnel = await connectThroughProxy(parseProxyString(`http://b%C3%B6b:p%40ss%3Aw%2Frd@127.0.0.1:${p.port}#auth=basic`), '::1', 9989, opts);
    tunnel.socket.destroy();
    const token = Buffer.from('böb:p@ss:w/rd', 'utf8').toString('base64');
    assert.equal(p.requests[0], `CONNECT [::1]:9989 HTTP/1.1\r\nHost: [::1]:9989\r\nUser-Agent: bbgate/${VERSION}\r\nProxy-Authorization: Basic ${token}\r\n\r\n`);
  });

  it('sends no Proxy-Authorization without credentials', async () => {
    const p = await fake((s) => s.write(OK));
    (await connectThroughProxy(proxyAt(p), 'master.example.org', 9989, opts)).socket.destroy();
    assert.equal(p.requests[0], `CONNECT master.example.org:9989 HTTP/1.1\r\nHost: master.example.org:9989\r\nUser-Agent: bbgate/${VERSION}\r\n\r\n`);
  });

  it('reads a reply that arrives a byte at a time, and keeps the bytes that follow it for the tunnel', async () => {
    const p = await fake((s) => {
      void trickle(s, 'HTTP/1.0 200 OK\r\nVia: 1.1 fake\r\nProxy-Agent: x\r\n\r\nPB-GREETING\n').then(() => s.pipe(s));
    });
    const tunnel = await connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, opts);
    assert.equal(tunnel.statusLine, 'HTTP/1.0 200 OK');
    assert.deepEqual(tunnel.headers, { via: '1.1 fake', 'proxy-agent': 'x' });
    assert.equal(await readUntil(tunnel.socket, 'PB-GREETING\n'), 'PB-GREETING\n');
    tunnel.socket.write('echo\n');
    assert.equal(await readUntil(tunnel.socket, 'echo\n'), 'echo\n');
    tunnel.socket.destroy();
  });

  it('hands over bytes that came in the same packet as the reply, even when the far end has already closed', async () => {
    const p = await fake((s) => s.end(Buffer.from(`${OK}\x80\x02GREETING`, 'latin1')));
    const tunnel = await connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, opts);
    const chunks: Buffer[] = [];
    tunnel.socket.on('data', (d: Buffer) => chunks.push(d));
    await once(tunnel.socket, 'end');
    assert.equal(Buffer.concat(chunks).toString('latin1'), '\x80\x02GREETING');
    tunnel.socket.destroy();
  });

  it('closes the tunnel socket when the proxy drops it mid-session', async () => {
    const p = await fake((s) => s.write(OK));
    const tunnel = await connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, opts);
    const closed = once(tunnel.socket, 'close');
    for (const s of p.sockets) s.destroy();
    await closed;
  });

  it('says PROXY_NOT_HTTP at once, quoting what it got, when the peer speaks something else', async () => {
    const p = await startGreeter('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
    peers.push(p);
    // Said for what came, not at the 10 s timeout (which would be PROXY_TIMEOUT).
    await rejectsWith(
      connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, { timeoutMs: 10000 }),
      'PROXY_NOT_HTTP',
      new RegExp(`^the proxy http://127\\.0\\.0\\.1:${p.port} does not speak HTTP \\(asked to tunnel to 127\\.0\\.0\\.1:9989\\): it answered "SSH-2\\.0-OpenSSH_9\\.2p1 Debian-2\\\\r\\\\n", which is not HTTP$`),
    );
  });

  it('says PROXY_TIMEOUT when the proxy never answers', async () => {
    const p = await fake(() => undefined);
    await rejectsWith(
      connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, { timeoutMs: 300 }),
      'PROXY_TIMEOUT',
      new RegExp(`^the proxy http://127\\.0\\.0\\.1:${p.port} did not answer CONNECT 127\\.0\\.0\\.1:9989 within 0\\.3 s; it may still be trying to reach the master`),
    );
  });

  it('says PROXY_CLOSED when the proxy hangs up without answering, or half-way through', async () => {
    const silent = await fake((s) => s.end());
    await rejectsWith(connectThroughProxy(proxyAt(silent), '127.0.0.1', 9989, opts), 'PROXY_CLOSED', /closed the connection without answering to CONNECT 127\.0\.0\.1:9989$/);
    const partial = await fake((s) => s.end('HTTP/1.1 200 Conn'));
    await rejectsWith(connectThroughProxy(proxyAt(partial), '127.0.0.1', 9989, opts), 'PROXY_CLOSED', /in the middle of its answer \(after 17 bytes\)/);
  });

  it('names the schemes of a 407, and the NTLM form of credentials when they are missing', async () => {
    const p = await fake((s) => s.end('HTTP/1.1 407 authenticationrequired\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate, Kerberos realm="X, Y"\r\nContent-Length: 0\r\n\r\n'));
    await rejectsWith(
      connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, opts),
      'PROXY_AUTH_REQUIRED',
      /it answered "HTTP\/1\.1 407 authenticationrequired"; it offers NTLM, Negotiate, Kerberos; no credentials were sent: put them in the proxy URL, http:\/\/DOMAIN%5CUSER:PASSWORD@HOST:PORT \(NTLM\)$/,
    );
  });

  it('says why Kerberos cannot be used when the proxy offers only Negotiate, whatever the URL\'s password', async () => {
    const p = await fake((s) => s.end('HTTP/1.1 407 no\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Kerberos realm="X, Y"\r\nContent-Length: 0\r\n\r\n'));
    const saved = process.env.KRB5CCNAME;
    process.env.KRB5CCNAME = `FILE:${join(tmpdir(), `bbgate-no-such-cache-${process.pid}`)}`;
    try {
      await rejectsWith(connectThroughProxy(proxyAt(p, 'u:pw@'), '127.0.0.1', 9989, opts), 'PROXY_AUTH_NEGOTIATE_NO_TICKET', /there is no Kerberos ticket \(cache FILE:.*\): run kinit/, ['pw']);
    } finally {
      if (saved === undefined) delete process.env.KRB5CCNAME;
      else process.env.KRB5CCNAME = saved;
    }
  });

  it('says PROXY_AUTH_UNSUPPORTED when no offered scheme can use the credentials, or the forced one is not offered', async () => {
    const basic = await fake((s) => s.end('HTTP/1.1 407 no\r\nProxy-Authenticate: Basic realm="r"\r\nContent-Length: 0\r\n\r\n'));
    await rejectsWith(connectThroughProxy(parseProxyString(`http://u:pw@127.0.0.1:${basic.port}#auth=ntlm`), '127.0.0.1', 9989, opts), 'PROXY_AUTH_UNSUPPORTED', /offers Basic .*forces NTLM \(#auth=ntlm\), which it does not offer$/);
    const hash = '8846f7eaee8fb117ad06bdd830b7586c';
    await rejectsWith(connectThroughProxy(parseProxyString(`http://u:${hash}@127.0.0.1:${basic.port}#hash=nt`), '127.0.0.1', 9989, opts), 'PROXY_AUTH_UNSUPPORTED', /a hash \(#hash=\) works with NTLM only$/, [hash]);
  });

  it('maps 502, 503 and 504 to PROXY_BAD_GATEWAY, and other refusals to PROXY_ERROR with the verbatim status line', async () => {
    for (const [status, code] of [['502 Bad Gateway', 'PROXY_BAD_GATEWAY'], ['504 Gateway Timeout', 'PROXY_BAD_GATEWAY'], ['405 CONNECT not allowed by policy 7', 'PROXY_ERROR'], ['101 Switching', 'PROXY_ERROR']] as const) {
      const p = await fake((s) => s.end(`HTTP/1.1 ${status}\r\n\r\n`));
      await rejectsWith(connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, opts), code, new RegExp(`it answered "HTTP/1\\.1 ${status}"`));
    }
  });

  it('stops when the signal aborts, with the signal\'s reason, and does not start when already aborted', async () => {
    const p = await fake(() => undefined);
    const controller = new AbortController();
    const pending = connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, { timeoutMs: 5000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 50);
    await assert.rejects(pending, /shutting down/);
    const before = p.requests.length;
    await assert.rejects(connectThroughProxy(proxyAt(p), '127.0.0.1', 9989, { timeoutMs: 5000, signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(p.requests.length, before);
  });

  it('connects from a tcp: proxy string\'s bindAddress', async () => {
    let from = '';
    const p = await fake((s) => {
      from = s.remoteAddress ?? '';
      s.write(OK);
    });
    (await connectThroughProxy(parseProxyString(`tcp:host=127.0.0.1:port=${p.port}:bindAddress=127.0.0.2`), '127.0.0.1', 9989, opts)).socket.destroy();
    assert.equal(from, '127.0.0.2');
  });

  it('reaches a proxy at an IPv6 address, from a tcp: string or a URL', async () => {
    const p = await startFakeProxy((s) => s.write(OK), '::1');
    peers.push(p);
    (await connectThroughProxy(parseProxyString(`tcp:host=\\:\\:1:port=${p.port}`), 'master', 9989, opts)).socket.destroy();
    (await connectThroughProxy(parseProxyString(`http://[::1]:${p.port}`), 'master', 9989, opts)).socket.destroy();
    assert.equal(p.requests.length, 2);
  });

  it('says PROXY_TLS when an https:// proxy turns out to speak plain HTTP', async () => {
    const p = await startGreeter('HTTP/1.1 400 Bad Request\r\n\r\n');
    peers.push(p);
    await rejectsWith(connectThroughProxy(parseProxyString(`https://127.0.0.1:${p.port}`), '127.0.0.1', 9989, opts), 'PROXY_TLS', /^TLS with the proxy https:\/\/127\.0\.0\.1:\d+ failed \(to tunnel to 127\.0\.0\.1:9989\)/);
  });

  it('says PROXY_REFUSED when nothing listens at the proxy address', async () => {
    const port = await closedPort();
    await rejectsWith(
      connectThroughProxy(parseProxyString(`http://b0b:s3cret@127.0.0.1:${port}`), 'master', 9989, opts),
      'PROXY_REFUSED',
      new RegExp(`^cannot reach the proxy http://127\\.0\\.0\\.1:${port} \\(to tunnel to master:9989\\): connection refused, nothing listens there$`),
      [...secretForms('b0b', 's3cret'), 'b0b'],
    );
  });

  it('refuses targets that would inject into the request', async () => {
    const p = await fake((s) => s.write(OK));
    await rejectsWith(connectThroughProxy(proxyAt(p), 'master\r\nX-Evil: 1', 9989, opts), 'ENDPOINT_SYNTAX', /not a host name or IP address/);
    await rejectsWith(connectThroughProxy(proxyAt(p), 'master', 0, opts), 'ENDPOINT_SYNTAX', /ports are whole numbers/);
    assert.equal(p.requests.length, 0);
  });
});

describe('credentials never appear in errors', () => {
  let p: Peer;
  let plain: Peer;
  before(async () => {
    p = await startFakeProxy((s) => s.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="r"\r\n\r\n'));
    plain = await startGreeter('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  after(() => Promise.all([p?.close(), plain?.close()]));

  it('in any failure of a proxy given with credentials', async () => {
    const user = 'sp3cial-user';
    const password = 'v3ry:s3cret/pass@word';
    const secrets = [...secretForms(user, password), user];
    const withCreds = (hostport: string, scheme = 'http') => parseProxyString(`${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostport}`);
    await rejectsWith(connectThroughProxy(withCreds(`127.0.0.1:${p.port}`), '127.0.0.1', 9989, opts), 'PROXY_AUTH_FAILED', /rejected the Basic credentials/, secrets);
    await rejectsWith(connectThroughProxy(withCreds(`127.0.0.1:${plain.port}`, 'https'), '127.0.0.1', 9989, opts), 'PROXY_TLS', /TLS/, secrets);
    await rejectsWith(connectThroughProxy(withCreds(`127.0.0.1:${await closedPort()}`), '127.0.0.1', 9989, opts), 'PROXY_REFUSED', /refused/, secrets);
  });
});
