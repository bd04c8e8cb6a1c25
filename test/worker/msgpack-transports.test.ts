// msgpack_experimental_v7 over bbgate's own transport stack: a build on the real 3.7 master through
// squid's CONNECT with Basic proxy authentication, one over verified TLS (the 3.7 master's
// msgpack port has none of its own, so a TLS terminator on loopback stands in front of it, as a
// load balancer would), and one through a real haproxy reverse proxy that routes only one URL
// path to the master (Buildbot 4.x's Worker `path=`).
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker, type TestWorker } from '../helpers/bbgate-worker.js';
import { testPki } from '../helpers/pki.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { startHaproxy, type RunningHaproxy } from '../helpers/haproxy.js';
import { bbgate } from '../helpers/cli.js';

describe('msgpack_experimental_v7 through squid and over TLS to the 3.7 master', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  let terminator: Server;
  let haproxy: RunningHaproxy;
  const workers: TestWorker[] = [];
  const PATH = '/buildbot/msgpack';

  before(async () => {
    const echo = (name: string) => ({ name: `echo-${name}`, workernames: [name], steps: [`steps.ShellCommand(name='echo', command=['echo', 'via ${name}'])`] });
    master = await startMaster({ msgpack: true, workers: ['viaproxy', 'viatls', 'viapath'].map((name) => ({ name, password: `${name}-pw` })), builders: [echo('viaproxy'), echo('viatls'), echo('viapath')] });
    haproxy = await startHaproxy([{ target: master.msgpackPort!, httpPath: PATH }]);
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
      await startTestWorker({
        connection: `tcp:127.0.0.1:${haproxy.ports[0]}`,
        workername: 'viapath',
        password: 'viapath-pw',
        protocol: 'msgpack_experimental_v7',
        // As a 4.x tac writes it: without its leading "/", which buildbot-worker puts in front.
        msgpackPath: PATH.slice(1),
      }),
    );
    await master.waitForWorker('viaproxy');
    await master.waitForWorker('viatls');
    await master.waitForWorker('viapath');
  });
  after(async () => {
    for (const w of workers) await w.stop();
    terminator?.close();
    await haproxy?.stop();
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

  it("builds through a reverse proxy that routes only the tac's path= to the master; without it the upgrade is refused", async () => {
    const build = await master.runBuild('echo-viapath');
    assert.equal(build.results, Results.SUCCESS);
    assert.equal(build.steps.find((s) => s.name === 'echo')!.logs[0]!.stdout, 'via viapath\n');
    // The same name and password at "/": haproxy's 403, named at the websocket step.
    const probe = await bbgate(['probe', '--protocol', 'msgpack_experimental_v7', '--name', 'viapath', '--password', 'viapath-pw', '--json', `tcp:127.0.0.1:${haproxy.ports[0]}`]);
    const failed = (JSON.parse(probe.stdout) as { steps: { step: string; ok: boolean; message: string }[] }).steps.find((s) => !s.ok);
    assert.equal(failed?.step, 'websocket', probe.stdout);
    assert.match(failed!.message, /403/);
  });
});
