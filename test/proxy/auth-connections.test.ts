// Which legs of a proxy handshake may go again on a new connection, and reading a 407's body to
// its end, against a scripted proxy that answers request by request: a CONNECT without
// credentials and NTLM's NEGOTIATE may be sent again when the proxy closed after its 407 without
// saying so; NTLM's AUTHENTICATE answers one connection's challenge and is never replayed; a
// chunked 407 body keeps the connection.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { connectThroughProxy } from '../../src/proxy/index.js';
import { chunkedBodyLength } from '../../src/proxy/link.js';
import { rejectsWith } from './expect.js';

/** A CHALLENGE without target info or version (48 bytes), as squid's fake helper and older proxies send. */
function shortChallenge(): string {
  const m = Buffer.alloc(48);
  m.write('NTLMSSP\0', 0, 'latin1');
  m.writeUInt32LE(2, 8);
  m.writeUInt32LE(48, 16); // TargetName: empty, at the end
  m.writeUInt32LE(0x00000201 | 0x00080000, 20); // Unicode, NTLM, extended session security
  m.write('0123456789abcdef', 24, 'hex');
  m.writeUInt32LE(48, 44); // TargetInfo: empty, at the end
  return m.toString('base64');
}

type Answer = string | 'hang up';
interface Request {
  connection: number;
  index: number;
  authorization: string | undefined;
}

/** A proxy that answers each request with `script`'s answer; `requests` records who sent what, where. */
async function scriptedProxy(script: (r: Request) => Answer): Promise<{ port: number; requests: Request[]; server: Server }> {
  const requests: Request[] = [];
  let connections = 0;
  const server = createServer((socket: Socket) => {
    const connection = ++connections;
    let index = 0;
    let buffered = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      for (let end; (end = buffered.indexOf('\r\n\r\n')) >= 0; ) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const authorization = /^Proxy-Authorization: (.*)$/im.exec(head)?.[1];
        const request = { connection, index: ++index, authorization };
        requests.push(request);
        const answer = script(request);
        if (answer === 'hang up') socket.destroy();
        else socket.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, requests, server };
}

const NTLM_407 = 'HTTP/1.1 407 auth\r\nProxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n';
const CHALLENGE_407 = `HTTP/1.1 407 auth\r\nProxy-Authenticate: NTLM ${shortChallenge()}\r\nContent-Length: 0\r\n\r\n`;
const OK = 'HTTP/1.1 200 Connection established\r\n\r\n';
const kind = (authorization: string | undefined) => (authorization === undefined ? 'none' : Buffer.from(authorization.replace(/^NTLM /, ''), 'base64').readUInt32LE(8) === 1 ? 'negotiate' : 'authenticate');

describe('legs on connections, against a scripted proxy', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));
  const proxy = (port: number) => parseProxyString(`http://CORP%5Cjane:pw@127.0.0.1:${port}`);

  it('sends NEGOTIATE again on a new connection when the proxy hung up after its 407 without saying so', async () => {
    const p = await scriptedProxy((r) => {
      if (r.connection === 1) {
        // Its 407 says nothing of closing; the next request finds the connection gone.
        return r.index === 1 ? NTLM_407 : 'hang up';
      }
      return kind(r.authorization) === 'negotiate' ? CHALLENGE_407 : OK;
    });
    servers.push(p.server);
    const tunnel = await connectThroughProxy(proxy(p.port), '127.0.0.1', 9989, { timeoutMs: 5000 });
    tunnel.socket.destroy();
    assert.equal(tunnel.auth.scheme, 'NTLM');
    const onSecond = p.requests.filter((r) => r.connection === 2).map((r) => kind(r.authorization));
    assert.deepEqual(onSecond, ['negotiate', 'authenticate'], 'NEGOTIATE and AUTHENTICATE ride the new connection together');
  });

  it('never sends AUTHENTICATE again when the connection is lost after it: PROXY_CLOSED naming NTLM', async () => {
    const p = await scriptedProxy((r) => {
      if (r.index === 1) return NTLM_407;
      return kind(r.authorization) === 'negotiate' ? CHALLENGE_407 : 'hang up';
    });
    servers.push(p.server);
    await rejectsWith(connectThroughProxy(proxy(p.port), '127.0.0.1', 9989, { timeoutMs: 5000 }), 'PROXY_CLOSED', /in the middle of the NTLM handshake/, ['pw']);
    assert.deepEqual(p.requests.map((r) => [r.connection, kind(r.authorization)]), [[1, 'none'], [1, 'negotiate'], [1, 'authenticate']]);
  });

  it('reads chunked 407 bodies to their end and keeps the connection for every leg', async () => {
    const chunked = (head: string) => head.replace('Content-Length: 0\r\n', 'Transfer-Encoding: chunked\r\n') + '1a\r\n<html>proxy says no</html>\r\n0\r\n\r\n';
    const p = await scriptedProxy((r) => {
      if (r.index === 1) return chunked(NTLM_407);
      return kind(r.authorization) === 'negotiate' ? chunked(CHALLENGE_407) : OK;
    });
    servers.push(p.server);
    const tunnel = await connectThroughProxy(proxy(p.port), '127.0.0.1', 9989, { timeoutMs: 5000 });
    tunnel.socket.destroy();
    assert.deepEqual(p.requests.map((r) => [r.connection, kind(r.authorization)]), [[1, 'none'], [1, 'negotiate'], [1, 'authenticate']]);
  });
});

describe('chunkedBodyLength', () => {
  const body = '5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n';
  it('finds the end of a complete chunked body, trailers included, and waits for an incomplete one', () => {
    assert.equal(chunkedBodyLength(Buffer.from(`${body}NEXT`)), body.length);
    for (let cut = 0; cut < body.length; cut++) assert.equal(chunkedBodyLength(Buffer.from(body.slice(0, cut))), undefined, `cut at ${cut}`);
  });
  it('says malformed for a size that is not hex or a chunk without its CRLF', () => {
    assert.equal(chunkedBodyLength(Buffer.from('zz\r\n')), 'malformed');
    assert.equal(chunkedBodyLength(Buffer.from('5\r\nhelloXX0\r\n\r\n')), 'malformed');
    assert.equal(chunkedBodyLength(Buffer.from('1'.repeat(100))), 'malformed');
  });
});
