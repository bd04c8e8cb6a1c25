// NTLM through a real squid 5 (auth_param ntlm with squid's ntlm_fake_auth, which checks the
// message flow and logs DOMAIN\user; the cryptography is checked in ntlm-acceptor.test.ts): a
// tunnel, `bbgate probe` showing every leg, and a worker running a real build through it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { connectThroughProxy } from '../../src/proxy/index.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';
import { assertNtlmOverBasic } from './expect.js';

const PASSWORD = 'ntlm-Pa55:w@rd';

describe('NTLM through a real squid', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  const proxy = (user = 'CORP%5Cjane', options = '') => `http://${user}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${squid.port}${options}`;

  before(async () => {
    master = await startMaster({
      workers: [{ name: 'nw', password: 'nw-pass' }],
      builders: [{ name: 'through-ntlm', workernames: ['nw'], steps: [`steps.ShellCommand(command=['sh', '-c', 'echo built behind NTLM'], name='hello')`] }],
    });
    squid = await startSquid({ ntlm: true, auth: { users: { basicuser: PASSWORD } }, allowPorts: [master.pbPort] });
  });
  after(async () => {
    await squid?.stop();
    await master?.stop();
  });

  it('tunnels with NTLM, chosen over Basic, on one connection; squid logs the user as DOMAIN\\user', async () => {
    const tunnel = await connectThroughProxy(parseProxyString(proxy()), '127.0.0.1', master.pbPort, { timeoutMs: 10_000 });
    assertNtlmOverBasic(tunnel.auth);
    tunnel.socket.destroy();
    // squid's log escapes the backslash.
    await waitFor(() => /TCP_TUNNEL\/200 .* CORP\\\\jane /.test(squid.accessLog()), "the NTLM user in squid's access log");
  });

  it('takes user@DOMAIN as well, and Basic when the proxy string forces it', async () => {
    const upn = await connectThroughProxy(parseProxyString(proxy('jane@CORP')), '127.0.0.1', master.pbPort, { timeoutMs: 10_000 });
    assert.equal(upn.auth.scheme, 'NTLM');
    upn.socket.destroy();
    const basic = await connectThroughProxy(parseProxyString(proxy('basicuser', '#auth=basic')), '127.0.0.1', master.pbPort, { timeoutMs: 10_000 });
    assert.equal(basic.auth.scheme, 'Basic');
    assert.deepEqual(basic.auth.legs.map((l) => [l.sent, l.answer]), [['Basic', '200']]);
    basic.socket.destroy();
    await waitFor(() => /TCP_TUNNEL\/200 .* basicuser /.test(squid.accessLog()), "the Basic user in squid's access log");
  });

  it('bbgate probe lists the schemes offered, the one used, and each leg with its time under --verbose; the password appears nowhere', async () => {
    const args = ['probe', `tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', proxy(), '--name', 'nw', '--password', 'nw-pass'];
    const json = await bbgate([...args, '--json']);
    assert.equal(json.status, 0, json.stdout + json.stderr);
    const connect = (JSON.parse(json.stdout) as ProbeJson).steps.find((s) => s.step === 'connect')!;
    assert.match(connect.message, /answered "HTTP\/1\.1 200 Connection established" to CONNECT 127\.0\.0\.1:\d+; authenticated with NTLM \(offered NTLM, Basic\)$/);
    const text = await bbgate([...args, '--verbose']);
    assert.equal(text.status, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /· CONNECT → 407 NTLM, Basic \(\d+\.\d ms\)\n.*· NTLM negotiate → 407 NTLM challenge \(\d+\.\d ms\)\n.*· NTLM authenticate → 200 \(\d+\.\d ms\)/);
    for (const out of [json.stdout + json.stderr, text.stdout + text.stderr]) {
      assert.ok(!out.includes(PASSWORD) && !out.includes(encodeURIComponent(PASSWORD)) && !out.includes('TlRMTVNT'), out);
    }
  });

  it('a worker runs a real build through squid with NTLM', { timeout: 120_000 }, async () => {
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, proxyConnectionString: proxy(), workername: 'nw', password: 'nw-pass' });
    try {
      await worker.waitForLog(/Connected to buildmaster/);
      const build = await master.runBuild('through-ntlm');
      assert.equal(build.results, Results.SUCCESS, JSON.stringify(build.steps));
      assert.ok(!worker.lines.join('\n').includes(PASSWORD));
    } finally {
      await worker.stop();
    }
  });
});
