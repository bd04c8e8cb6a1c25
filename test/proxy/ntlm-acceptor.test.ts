// bbgate's NTLM client, through its real CONNECT loop, against an acceptor that is not ours:
// gss-ntlmssp driven by python3-gssapi (test/python/ntlm_acceptor.py) checks the NTLMv2 response
// cryptographically. A small HTTP proxy here only carries the tokens between the two; the verdict
// is gss-ntlmssp's.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { AV, decodeAvPairs, decodeChallenge } from '../../src/proxy/auth/ntlm/messages.js';
import { ntHash, ntlmv2Hash } from '../../src/proxy/auth/ntlm/ntlmv2.js';
import { connectThroughProxy } from '../../src/proxy/index.js';
import { bbgateEnv, CLI } from '../helpers/cli.js';
import { PYTHON } from '../helpers/python.js';
import { assertNoSecrets, assertNtlmOverBasic, rejectsWith } from './expect.js';

const ACCEPTOR = new URL('../../../test/python/ntlm_acceptor.py', import.meta.url).pathname;
const DOMAIN = 'CORP';
const USER = 'jane';
const PASSWORD = 'Secret-pw1 ü';
const opts = { timeoutMs: 10_000 };

/** One acceptor process per client connection, as a proxy keeps NTLM state per connection. */
class Acceptor {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(PYTHON, [ACCEPTOR], { env });
    this.child.stderr.on('data', (d) => process.stderr.write(d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async step(token: string): Promise<string> {
    this.child.stdin.write(`${token}\n`);
    const { value, done } = await this.lines.next();
    return done ? 'REFUSED the acceptor exited' : value;
  }
  stop(): void {
    this.child.kill();
  }
}

interface Bridge {
  port: number;
  accepted: string[];
  challenges: Buffer[];
  authorizations: string[];
  close(): Promise<void>;
}

/**
 * The proxy: 407 offering NTLM and Basic (with a body, which the client must skip to send its
 * next leg on the same connection), then the acceptor's CHALLENGE, then 200 or 407 as it rules.
 * `closeFirst` ends the connection after the first 407, as some proxies do.
 */
async function startBridge(env: NodeJS.ProcessEnv, closeFirst = false): Promise<Bridge> {
  const bridge: Bridge = { port: 0, accepted: [], challenges: [], authorizations: [], close: async () => undefined };
  const server: Server = createServer((socket: Socket) => {
    let acceptor: Acceptor | undefined;
    let buffered = '';
    socket.on('close', () => acceptor?.stop());
    socket.on('error', () => undefined);
    socket.on('data', async (d) => {
      buffered += d.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const authorization = /^Proxy-Authorization: (.*)$/im.exec(head)?.[1];
        bridge.authorizations.push(authorization ?? '');
        const deny = (challenge: string, close = false) =>
          socket.write(`HTTP/1.1 407 Proxy Authentication Required\r\n${challenge}Content-Length: 7\r\n${close ? 'Connection: close\r\n' : ''}\r\ndenied\n`);
        if (!authorization?.startsWith('NTLM ')) {
          deny('Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Basic realm="bridge"\r\n', closeFirst);
          if (closeFirst) socket.end();
          continue;
        }
        acceptor ??= new Acceptor(env);
        const answer = await acceptor.step(authorization.slice(5));
        if (answer.startsWith('CHALLENGE ')) {
          bridge.challenges.push(Buffer.from(answer.slice(10), 'base64'));
          deny(`Proxy-Authenticate: NTLM ${answer.slice(10)}\r\n`);
        } else if (answer.startsWith('ACCEPTED ')) {
          bridge.accepted.push(answer.slice(9));
          socket.write('HTTP/1.1 200 Connection established\r\n\r\nHELLO\n');
        } else {
          deny('Proxy-Authenticate: NTLM\r\n');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  bridge.port = (server.address() as AddressInfo).port;
  bridge.close = () => new Promise((resolve) => server.close(() => resolve()));
  return bridge;
}

describe('NTLMv2 against gss-ntlmssp (an independent acceptor)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let bridge: Bridge;
  let closing: Bridge;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bbgate-ntlm-'));
    writeFileSync(join(dir, 'users'), `${DOMAIN}:${USER}:${PASSWORD}\n`);
    // gss-ntlmssp computes MD4, which OpenSSL 3 keeps in its legacy provider.
    writeFileSync(join(dir, 'openssl.cnf'), [
      'openssl_conf = openssl_init', '[openssl_init]', 'providers = provider_sect', '[provider_sect]',
      'default = default_sect', 'legacy = legacy_sect', '[default_sect]', 'activate = 1', '[legacy_sect]', 'activate = 1', '',
    ].join('\n'));
    env = { ...process.env, NTLM_USER_FILE: join(dir, 'users'), OPENSSL_CONF: join(dir, 'openssl.cnf') };
    bridge = await startBridge(env);
    closing = await startBridge(env, true);
  });
  after(async () => {
    await bridge?.close();
    await closing?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const proxy = (userinfo: string, options = '', at = bridge) => parseProxyString(`http://${userinfo}@127.0.0.1:${at.port}${options}`);
  const user = `${DOMAIN}%5C${USER}`;
  const password = encodeURIComponent(PASSWORD);

  it('is accepted with the right password, choosing NTLM over Basic, all legs on one connection', async () => {
    const before = bridge.accepted.length;
    const tunnel = await connectThroughProxy(proxy(`${user}:${password}`), '127.0.0.1', 9989, opts);
    tunnel.socket.destroy();
    assert.equal(bridge.accepted[before], `${DOMAIN}\\${USER}`);
    assertNtlmOverBasic(tunnel.auth);
    // gss-ntlmssp's CHALLENGE carries a timestamp, so the MIC path was the one checked.
    assert.ok(decodeAvPairs(decodeChallenge(bridge.challenges.at(-1)!).targetInfo).some((p) => p.id === AV.Timestamp));
    assert.ok(!bridge.authorizations.some((a) => a.startsWith('Basic')), 'the password never went out as Basic');
  });

  it('is accepted as user@DOMAIN, and with the NT hash or the NTLMv2 hash that `bbgate ntlm-hash` prints in place of the password', async () => {
    // The password on stdin, never in argv.
    const printed = execFileSync(process.execPath, [CLI, 'ntlm-hash', `${DOMAIN}\\${USER}`], { input: `${PASSWORD}\n`, env: bbgateEnv() }).toString();
    const nt = /^PassNT {6}([0-9A-F]{32})$/m.exec(printed)![1]!;
    const v2 = /^PassNTLMv2 {2}([0-9A-F]{32}) {4}# only for user 'jane', domain 'CORP'$/m.exec(printed)![1]!;
    assert.equal(v2, ntlmv2Hash(ntHash(PASSWORD), USER, DOMAIN).toString('hex').toUpperCase());
    for (const [userinfo, options] of [[`${USER}@${DOMAIN}:${password}`, ''], [`${user}:${nt}`, '#hash=nt'], [`${USER}%40${DOMAIN}:${v2}`, '#hash=ntlmv2&auth=ntlm']] as const) {
      const before = bridge.accepted.length;
      const tunnel = await connectThroughProxy(proxy(userinfo, options), '127.0.0.1', 9989, opts);
      tunnel.socket.destroy();
      assert.equal(bridge.accepted[before], `${DOMAIN}\\${USER}`, userinfo);
    }
  });

  it('is refused with a wrong password, a wrong domain or a wrong hash: PROXY_AUTH_FAILED naming NTLM, no secret in the error', async () => {
    const wrongNt = ntHash('not it').toString('hex');
    for (const userinfo of [`${user}:wrong-pw`, `OTHER%5C${USER}:${password}`, `${user}:${wrongNt}`]) {
      const options = userinfo.endsWith(wrongNt) ? '#hash=nt' : '';
      const err = await rejectsWith(
        connectThroughProxy(proxy(userinfo, options), '127.0.0.1', 9989, opts),
        'PROXY_AUTH_FAILED',
        /^the proxy http:\/\/127\.0\.0\.1:\d+ rejected the NTLM credentials \(to tunnel to 127\.0\.0\.1:9989\): .*check the domain, user name and (password|hash)/,
        ['wrong-pw', PASSWORD, password, wrongNt, 'TlRMTVNT'],
      );
      assertNoSecrets(String(err.stack), ['wrong-pw', wrongNt]);
    }
  });

  it('reconnects when the proxy closes after its first 407, and runs NTLM on the new connection', async () => {
    const before = closing.accepted.length;
    const tunnel = await connectThroughProxy(proxy(`${user}:${password}`, '', closing), '127.0.0.1', 9989, opts);
    tunnel.socket.destroy();
    assert.equal(closing.accepted[before], `${DOMAIN}\\${USER}`);
    assert.deepEqual(tunnel.auth.legs.map((l) => l.reconnected), [false, true, false]);
  });
});
