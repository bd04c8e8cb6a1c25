// msgpack_experimental_v7 over bbgate's own transport stack: a build on the real 3.7 master through
// squid's CONNECT with Basic proxy authentication, and one over verified TLS (the 3.7 master's
// msgpack port has none of its own, so a TLS terminator on loopback stands in front of it, as a
// load balancer would).
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { testPki } from '../helpers/pki.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';

describe('msgpack_experimental_v7 through squid and over TLS to the 3.7 master', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  let terminator: Server;
  const workers: TestWorker[] = [];

  before(async () => {
    const echo = (name: string) => ({ name: `echo-${name}`, workernames: [name], steps: [`steps.ShellCommand(name='echo', command=['echo', 'via ${name}'])`] });
    master = await startMaster({ msgpack: true, workers: ['viaproxy', 'viatls'].map((name) => ({ name, password: `${name}-pw` })), builders: [echo('viaproxy'), echo('viatls')] });
    squid = await startSquid({ auth: { users: { proxyuser: 'proxy-s3cret' } }, allowPorts: [master.msgpackPort!] });
    const pki = await testPki();
    terminator = createServer({ key: pki.server.key, cert: pki.serverChain }, (tls) => {
      const upstream = connect(master.msgpackPort!, '127.0.0.1');
      tls.pipe(upstream).pipe(tls);
      tls.on('error', () => upstream.destroy());
      upstream.on('error', () => tls.destroy());
    });
    await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
    const trust = await pki.trustDir(pki.root);
    workers.push(
      await startTestWorker({
        connection: `tcp:127.0.0.1:${master.msgpackPort}`,
        proxyConnectionString: `http://proxyuser:proxy-s3cret@127.0.0.1:${squid.port}`,
        workername: 'viaproxy',
        password: 'viaproxy-pw',
        protocol: 'msgpack_experimental_v7',
      }),
      await startTestWorker({
        connection: `tls:localhost:${(terminator.address() as AddressInfo).port}:trustRoots=${trust}`,
        workername: 'viatls',
        password: 'viatls-pw',
        protocol: 'msgpack_experimental_v7',
      }),
    );
    await master.waitForWorker('viaproxy');
    await master.waitForWorker('viatls');
  });
  after(async () => {
    for (const w of workers) await w.stop();
    terminator?.close();
    await squid?.stop();
    await master?.stop();
  });

  it("builds through squid's CONNECT with Basic authentication; the tunnel is in squid's log, no secret in the worker's", async () => {
    const build = await master.runBuild('echo-viaproxy');
    assert.equal(build.results, Results.SUCCESS);
    assert.equal(build.steps.find((s) => s.name === 'echo')!.logs[0]!.stdout, 'via viaproxy\n');
    await workers[0]!.stop();
    assert.match(squid.accessLog(), new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT 127\\.0\\.0\\.1:${master.msgpackPort} proxyuser `));
    assert.ok(!workers[0]!.lines.some((l) => /s3cret|viaproxy-pw/.test(l)), workers[0]!.lines.join('\n'));
  });

  it('builds over verified TLS', async () => {
    const build = await master.runBuild('echo-viatls');
    assert.equal(build.results, Results.SUCCESS);
    assert.equal(build.steps.find((s) => s.name === 'echo')!.logs[0]!.stdout, 'via viatls\n');
  });
});
