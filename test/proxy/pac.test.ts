// PAC files against real peers on loopback: a real Buildbot 3.7 master, a real squid, the PAC
// served from a file and by an HTTP server in this process, and proxies that are dead (a port
// nothing listens on). The probe and the worker run bbgate's real code end to end.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseEndpoint } from '../../src/address/connection-string.js';
import { parseProxySetting } from '../../src/address/proxy-setting.js';
import { dial } from '../../src/route/dial.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';

const login = ['--name', 'pw', '--password', 'pw-pass', '--json'];

describe('PAC files (pac+file:, pac+http:) against a real master and squid', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  let dead: number;
  let dead2: number;
  let dir: string;
  let pacServer: Server;
  let pacPort: number;
  /** What the HTTP server serves, by path; `hang` never answers. */
  const served = new Map<string, string | 'hang'>();
  const requests: string[] = [];

  before(async () => {
    master = await startMaster({
      workers: [{ name: 'pw', password: 'pw-pass' }],
      builders: [{ name: 'echo', workernames: ['pw'], steps: [`steps.ShellCommand(command=['echo', 'built through the PAC'])`] }],
    });
    squid = await startSquid({ allowPorts: [master.pbPort] });
    [dead, dead2] = [await freePort(), await freePort()];
    dir = mkdtempSync(join(tmpdir(), 'bbgate-pac-'));
    pacServer = createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = served.get(req.url ?? '');
      if (body === 'hang') return;
      if (body === undefined) {
        res.writeHead(404).end('not here');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end(body);
    });
    await new Promise<void>((resolve) => pacServer.listen(0, '127.0.0.1', resolve));
    pacPort = (pacServer.address() as AddressInfo).port;
  });
  after(async () => {
    pacServer?.closeAllConnections();
    pacServer?.close();
    await squid?.stop();
    await master?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const pac = (answer: string) => `function FindProxyForURL(url, host) {\n  return ${JSON.stringify(answer)};\n}\n`;
  function pacFile(name: string, script: string): string {
    writeFileSync(join(dir, name), script);
    return `pac+file://${join(dir, name)}`;
  }
  function pacUrl(path: string, script: string | 'hang'): string {
    served.set(path, script);
    return `pac+http://127.0.0.1:${pacPort}${path}`;
  }
  async function probe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args], env);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }
  const stepNames = (r: ProbeJson) => r.steps.map((s) => s.step);
  const step = (r: ProbeJson, name: string) => r.steps.find((s) => s.step === name)!;
  const connects = () => squid.accessLog().split('\n').filter((l) => l.includes(`CONNECT 127.0.0.1:${master.pbPort}`)).length;
  /** squid logs a tunnel when it closes, which may be a moment after the client has gone. */
  const tunnelled = (count: number) => waitFor(() => connects() >= count, `${count} CONNECTs to the master in squid's access.log`);

  it('from a file: falls through a dead proxy to squid, and the probe says which entry carried the connection (exit 0)', async () => {
    const answer = `PROXY 127.0.0.1:${dead}; PROXY 127.0.0.1:${squid.port}; DIRECT`;
    const before = connects();
    const { status, report } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('failover.pac', pac(answer)), ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.deepEqual(stepNames(report), ['parse', 'pac', 'proxy', 'connect', 'pb', 'login', 'keepalive']);
    assert.equal(step(report, 'pac').message, `${pacFile('failover.pac', pac(answer))} answered ${JSON.stringify(answer)} for https://127.0.0.1:${master.pbPort}/`);
    assert.match(step(report, 'proxy').message, new RegExp(`^PROXY 127\\.0\\.0\\.1:${dead}, then PROXY 127\\.0\\.0\\.1:${squid.port}, then DIRECT from the PAC file pac\\+file://.*failover\\.pac, tried in order`));
    const connect = step(report, 'connect');
    assert.match(connect.message, new RegExp(`^PROXY 127\\.0\\.0\\.1:${squid.port} \\(entry 2 of 3 of the PAC's answer\\) carried the connection, after PROXY 127\\.0\\.0\\.1:${dead} failed: http://127\\.0\\.0\\.1:${squid.port}/ answered "HTTP/1\\.1 200`));
    assert.equal(connect.warnings?.length, 1);
    assert.match(connect.warnings![0]!, new RegExp(`^PROXY 127\\.0\\.0\\.1:${dead} failed, so the next entry was tried: PROXY_REFUSED: `));
    await tunnelled(before + 1);
  });

  it('over HTTP, with the standard helpers choosing by host: squid for the master, DIRECT for the rest', async () => {
    const script = [
      'function FindProxyForURL(url, host) {',
      '  alert("a PAC\'s debugging output must not reach the probe\'s JSON");',
      '  if (isPlainHostName(host) || dnsDomainIs(host, ".nowhere.example")) return "DIRECT";',
      `  if (shExpMatch(url, "https://127.0.0.1:${master.pbPort}/") && isInNet(dnsResolve(host), "127.0.0.0", "255.0.0.0") && myIpAddress() != "")`,
      `    return "PROXY 127.0.0.1:${squid.port}";`,
      '  return "DIRECT";',
      '}',
    ].join('\n');
    const url = pacUrl('/helpers.pac', script);
    const before = connects();
    const viaSquid = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', url, '--verbose', ...login]);
    assert.equal(viaSquid.status, 0, viaSquid.text);
    assert.deepEqual(stepNames(viaSquid.report), ['parse', 'pac', 'proxy', 'connect', 'pb', 'login', 'keepalive']);
    assert.equal(step(viaSquid.report, 'pac').message, `${url} answered "PROXY 127.0.0.1:${squid.port}" for https://127.0.0.1:${master.pbPort}/`);
    await tunnelled(before + 1);
    assert.ok(requests.includes('/helpers.pac'));
    // The same PAC sends the master's other port (its REST API, which is no PB service) DIRECT.
    const direct = await probe([`tcp:127.0.0.1:${master.apiPort}`, '--proxy-connection-string', url, '--timeout', '3', '--json']);
    assert.deepEqual(stepNames(direct.report).slice(0, 5), ['parse', 'pac', 'proxy', 'dns', 'tcp']);
    assert.equal(step(direct.report, 'pac').message, `${url} answered "DIRECT" for https://127.0.0.1:${master.apiPort}/`);
    assert.equal(step(direct.report, 'tcp').ok, true);
  });

  it('DIRECT connects directly: no CONNECT reaches squid (exit 0)', async () => {
    const before = connects();
    const { status, report } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('direct.pac', pac('DIRECT')), ...login]);
    assert.equal(status, 0, JSON.stringify(report));
    assert.deepEqual(stepNames(report), ['parse', 'pac', 'proxy', 'dns', 'tcp', 'pb', 'login', 'keepalive']);
    assert.match(step(report, 'proxy').message, /^DIRECT from the PAC file/);
    assert.equal(connects(), before);
  });

  it('a PAC naming only dead proxies: PROXY_ALL_FAILED naming each, exit 3 like any unreachable proxy', async () => {
    const { status, report, text } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('dead.pac', pac(`PROXY 127.0.0.1:${dead}; PROXY 127.0.0.1:${dead2}`)), ...login]);
    assert.equal(status, 3, text);
    const failed = report.steps.at(-1)!;
    assert.equal(failed.step, 'connect');
    assert.equal(failed.code, 'PROXY_ALL_FAILED');
    assert.match(failed.message, new RegExp(`1\\) PROXY 127\\.0\\.0\\.1:${dead}: PROXY_REFUSED: .*; 2\\) PROXY 127\\.0\\.0\\.1:${dead2}: PROXY_REFUSED: `));
    assert.match(failed.hint ?? '', /no proxy \(or DIRECT\) the PAC file named could be reached/);
    // One dead proxy alone is that proxy's own failure.
    const one = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('dead1.pac', pac(`PROXY 127.0.0.1:${dead}`)), ...login]);
    assert.equal(one.status, 3);
    assert.equal(one.report.steps.at(-1)!.code, 'PROXY_REFUSED');
  });

  it('a PAC with a syntax error: PROXY_PAC_EVAL naming the PAC\'s line (exit 3); a failure while running names the statement', async () => {
    const broken = 'function FindProxyForURL(url, host) {\n  var x = 1;\n  if (x ==) return "DIRECT";\n}\n';
    const syntax = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('syntax.pac', broken), ...login]);
    assert.equal(syntax.status, 3, syntax.text);
    assert.deepEqual(stepNames(syntax.report), ['parse', 'pac']);
    assert.equal(syntax.report.steps[1]!.code, 'PROXY_PAC_EVAL');
    assert.match(syntax.report.steps[1]!.message, /syntax error on line 3 of the PAC file: Unexpected token \) \("if \(x ==\) return \\"DIRECT\\";"\)/);
    const throwing = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('throws.pac', 'function FindProxyForURL(url, host) {\n  return proxyFor(host);\n}\n'), ...login]);
    assert.equal(throwing.status, 3);
    assert.match(throwing.report.steps[1]!.message, /failed while running FindProxyForURL: proxyFor is not defined at "return proxyFor\(host\);"/);
    const none = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', pacFile('none.pac', 'var proxy = "DIRECT";\n'), ...login]);
    assert.equal(none.report.steps[1]!.code, 'PROXY_PAC_EVAL');
    assert.match(none.report.steps[1]!.message, /FindProxyForURL is not defined/);
  });

  it('a PAC that never returns is stopped at the deadline; SOCKS only, a bad answer, a missing file, 404 and a silent server are each refused clearly (exit 3)', async () => {
    const cases: [string, string, RegExp][] = [
      [pacFile('loop.pac', 'function FindProxyForURL(url, host) {\n  while (true) {}\n}\n'), 'PROXY_PAC_EVAL', /ran too long and was stopped/],
      [pacFile('socks.pac', pac('SOCKS5 127.0.0.1:1080')), 'PROXY_PAC_ANSWER', /names only SOCKS proxies/],
      [pacFile('typo.pac', pac(`PROXI 127.0.0.1:${squid.port}; DIRECT`)), 'PROXY_PAC_ANSWER', /"PROXI 127\.0\.0\.1:\d+"/],
      [`pac+file://${join(dir, 'missing.pac')}`, 'PROXY_PAC_LOAD', /cannot read .*missing\.pac: no such file/],
      [`pac+http://127.0.0.1:${pacPort}/missing.pac`, 'PROXY_PAC_LOAD', /the server answered HTTP 404 Not Found/],
      [pacUrl('/hang.pac', 'hang'), 'PROXY_PAC_LOAD', /no complete answer within 2 s/],
      [`pac+http://127.0.0.1:${dead}/proxy.pac`, 'PROXY_PAC_LOAD', /connection refused/],
    ];
    for (const [setting, code, re] of cases) {
      const { status, report, text } = await probe([`tcp:127.0.0.1:${master.pbPort}`, '--proxy-connection-string', setting, '--timeout', '2', ...login]);
      assert.equal(status, 3, `${setting}: ${text}`);
      assert.deepEqual(stepNames(report), ['parse', 'pac'], setting);
      assert.equal(report.steps[1]!.code, code, setting);
      assert.match(report.steps[1]!.message, re, setting);
      assert.ok(report.steps[1]!.hint, setting);
    }
  });

  it('caches a fetched PAC, and fetches it again after a connection failure', async () => {
    const endpoint = parseEndpoint(`tcp:127.0.0.1:${master.pbPort}`);
    const setting = parseProxySetting(pacUrl('/changing.pac', pac(`PROXY 127.0.0.1:${dead}`)));
    const fetches = () => requests.filter((r) => r === '/changing.pac').length;
    await assert.rejects(dial({ endpoint, proxy: setting }), { code: 'PROXY_REFUSED' });
    assert.equal(fetches(), 1);
    // The administrators fix the PAC; the failure made bbgate forget the old one.
    served.set('/changing.pac', pac(`PROXY 127.0.0.1:${squid.port}`));
    (await dial({ endpoint, proxy: setting })).destroy();
    assert.equal(fetches(), 2);
    (await dial({ endpoint, proxy: setting })).destroy();
    assert.equal(fetches(), 2, 'a working PAC is not fetched for every connection');
  });

  it('create-worker writes a pac+ string into the tac, and probe --basedir follows it', async () => {
    const basedir = join(dir, 'worker');
    const setting = pacFile('tac.pac', pac(`PROXY 127.0.0.1:${dead}; PROXY 127.0.0.1:${squid.port}`));
    const created = await bbgate(['create-worker', '--proxy-connection-string', setting, basedir, `127.0.0.1:${master.pbPort}`, 'pw', 'pw-pass']);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout + created.stderr, /buildbot-worker cannot run this buildbot\.tac: .*bbgate can \(a PAC file\)/);
    assert.match(readFileSync(join(basedir, 'buildbot.tac'), 'utf8'), new RegExp(`^proxy_connection_string = '${setting.replace(/[+.]/g, '\\$&')}'$`, 'm'));
    const { status, report } = await probe(['--basedir', basedir, '--json']);
    assert.equal(status, 0, JSON.stringify(report));
    assert.match(step(report, 'connect').message, /entry 2 of 2 of the PAC's answer\) carried the connection/);
  });

  it('a worker builds through a PAC served over HTTP, past a dead proxy, and its log says where its proxy came from', async () => {
    const before = connects();
    const setting = pacUrl('/worker.pac', pac(`PROXY 127.0.0.1:${dead}; PROXY 127.0.0.1:${squid.port}; DIRECT`));
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${master.pbPort}`, workername: 'pw', password: 'pw-pass', proxyConnectionString: setting });
    try {
      await worker.waitForLog(/Connected to buildmaster; worker is ready/);
      const build = await master.runBuild('echo', {});
      assert.equal(build.results, Results.SUCCESS);
      assert.match(build.steps.at(-1)!.logs[0]!.stdout ?? '', /built through the PAC/);
      await worker.waitForLog(new RegExp(`^info pac\\+http://127\\.0\\.0\\.1:${pacPort}/worker\\.pac answered "PROXY 127\\.0\\.0\\.1:${dead}; PROXY`));
      await worker.waitForLog(new RegExp(`^info route: PROXY 127\\.0\\.0\\.1:${dead}, then PROXY 127\\.0\\.0\\.1:${squid.port}, then DIRECT from the PAC file`));
      await worker.waitForLog(new RegExp(`^info PROXY 127\\.0\\.0\\.1:${squid.port} \\(entry 2 of 3 of the PAC's answer\\) carried the connection`));
      await worker.waitForLog(new RegExp(`^warn PROXY 127\\.0\\.0\\.1:${dead} failed, so the next entry was tried: PROXY_REFUSED`));
    } finally {
      assert.equal(await worker.stop(), 0);
    }
    await tunnelled(before + 1);
  });

  it('never sends a loopback master through HTTPS_PROXY, even without NO_PROXY (issue 12, item 5)', async () => {
    const before = connects();
    for (const master_ of [`tcp:127.0.0.1:${master.pbPort}`, `tcp:localhost:${master.pbPort}`]) {
      const { status, report } = await probe([master_, ...login], { HTTPS_PROXY: squid.url, ALL_PROXY: squid.url });
      assert.equal(status, 0, JSON.stringify(report));
      assert.deepEqual(stepNames(report), ['parse', 'proxy', 'dns', 'tcp', 'pb', 'login', 'keepalive']);
      assert.match(step(report, 'proxy').message, /^not proxied: (127\.0\.0\.1|localhost):\d+ is this machine \(a loopback destination\), which HTTPS_PROXY never applies to/);
    }
    assert.equal(connects(), before);
  });
});
