// Negotiate (Kerberos) through the real CONNECT loop, against a real MIT KDC on loopback and
// squid's negotiate_kerberos_auth: `bbgate probe` with a kinit ticket gets through and names the
// scheme, without one it says to run kinit, and a worker with a ticket runs a real build through the proxy.
// The tokens themselves are checked by an independent acceptor in negotiate.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { startRealm, type RunningRealm } from '../helpers/kdc.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const KERBEROS_VARS = ['KRB5_CONFIG', 'KRB5CCNAME', 'KRB5_CLIENT_KTNAME'];

describe('Negotiate through a real squid, with the CONNECT loop bbgate dials with', () => {
  let master: RunningMaster;
  let realm: RunningRealm;
  let squid: RunningSquid;
  // Named `localhost`, as its service principal HTTP/localhost is.
  const proxy = () => `http://localhost:${squid.port}`;

  before(async () => {
    realm = await startRealm();
    master = await startMaster({
      workers: [{ name: 'kw', password: 'kw-pass' }],
      builders: [{ name: 'through-negotiate', workernames: ['kw'], steps: [`steps.ShellCommand(command=['sh', '-c', 'echo built behind Kerberos'], name='hello')`] }],
    });
    squid = await startSquid({ allowPorts: [master.pbPort], negotiate: { principal: realm.servicePrincipal, keytab: realm.serviceKeytab, krb5Conf: realm.krb5Conf } });
  });
  after(async () => {
    await squid?.stop();
    await master?.stop();
    await realm?.stop();
  });

  const probe = (env: Record<string, string>) =>
    bbgate(['probe', `tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', proxy(), '--name', 'kw', '--password', 'kw-pass', '--json'], env);

  it('bbgate probe with a kinit ticket: authenticated with Negotiate, logged in; squid logs the Kerberos user', async () => {
    const run = await probe(realm.env(await realm.kinit()));
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const connect = (JSON.parse(run.stdout) as ProbeJson).steps.find((s) => s.step === 'connect')!;
    assert.match(connect.message, /answered "HTTP\/1\.1 200 Connection established" to CONNECT 127\.0\.0\.1:\d+; authenticated with Negotiate \(offered Negotiate\)$/);
    await waitFor(() => squid.accessLog().includes(`${realm.user}@${realm.realm}`), "the Kerberos user in squid's access log");
  });

  it('bbgate probe without a ticket: PROXY_AUTH_NEGOTIATE_NO_TICKET, exit 3, telling to run kinit', async () => {
    const run = await probe(realm.env(realm.emptyCache()));
    assert.equal(run.status, 3, run.stdout + run.stderr);
    const failed = (JSON.parse(run.stdout) as ProbeJson).steps.find((s) => !s.ok)!;
    assert.equal(failed.step, 'connect');
    assert.equal(failed.code, 'PROXY_AUTH_NEGOTIATE_NO_TICKET');
    assert.match(failed.message, /run kinit/);
  });

  it('a worker runs a real build through squid with Negotiate, from a kinit ticket', { timeout: 120_000 }, async () => {
    // krb5 reads these per call: the in-process worker gets the ticket cache through this process's
    // environment (a client keytab instead is covered in negotiate.test.ts).
    const saved = KERBEROS_VARS.map((name) => process.env[name]);
    const ticket = realm.env(await realm.kinit());
    for (const name of KERBEROS_VARS) delete process.env[name];
    Object.assign(process.env, ticket);
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, proxyConnectionString: proxy(), workername: 'kw', password: 'kw-pass' });
    try {
      await worker.waitForLog(/Connected to buildmaster/);
      const build = await master.runBuild('through-negotiate');
      assert.equal(build.results, Results.SUCCESS, JSON.stringify(build.steps));
    } finally {
      await worker.stop();
      KERBEROS_VARS.forEach((name, i) => (saved[i] === undefined ? delete process.env[name] : (process.env[name] = saved[i])));
    }
  });
});
