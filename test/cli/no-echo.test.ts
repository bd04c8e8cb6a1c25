// No echo of credentials. One secret is planted in every input that can carry one (a connection
// string, a WebSocket URL, MASTER, proxy strings in flags, tacs, relay.json and the environment,
// --password, BBGATE_PASSWORD, the tac's passwd, a proxy's password) and every output channel of
// every command is searched for it, on every error path: malformed strings, a wrong password
// against the real master, a dead proxy, a proxy that refuses the credentials (a real squid), a
// relay whose upstream proxy refuses them. The commands are the real CLI processes.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, CLI, type ProbeJson } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { startProcess } from '../helpers/processes.js';
import { HOST_ALIAS, startSquid, type RunningSquid } from '../helpers/squid.js';
import { tempDir } from './support.js';
import { ntHash } from '../../src/proxy/auth/ntlm/ntlmv2.js';

/** With ":" and "/", so that in a URL it is %-encoded: both forms are looked for. */
const SECRET = 'Sx9-Qr7:Vw/Pk';
const ENCODED = encodeURIComponent(SECRET);
/** The proxy user squid knows (its password is the secret), and one it does not. */
const PROXY_USER = 'pxuser';
const STRANGER = 'nobodyx';
const WORKER = 'nx-w';
const basic = (user: string) => Buffer.from(`${user}:${SECRET}`).toString('base64');
/**
 * What no output may hold: the secret's core (in the secret as written, %-encoded, JSON-escaped,
 * or a few characters of it quoted around a syntax error), the Basic tokens made of it, and the
 * proxy user names, which travel with the password in the same user info.
 */
/** The secret's NT hash, as `bbgate ntlm-hash` prints it: given with #hash=nt in place of the password. */
const NT_HASH = ntHash(SECRET).toString('hex').toUpperCase();
const NEEDLES = ['Qr7', basic(PROXY_USER), basic(STRANGER), PROXY_USER, STRANGER, NT_HASH, NT_HASH.toLowerCase(), 'TlRMTVNT'];

function leaks(text: string): string[] {
  return NEEDLES.filter((n) => text.includes(n));
}

/** Every channel of one run, each named, searched for every needle. */
function assertClean(what: string, channels: Record<string, string>): void {
  for (const [channel, text] of Object.entries(channels)) {
    const found = leaks(text);
    assert.deepEqual(found, [], `${what}: ${channel} shows ${found.join(', ')}:\n${text}`);
  }
}

const proxyUrl = (user: string, port: number) => `http://${user}:${ENCODED}@127.0.0.1:${port}`;
/** NTLM credentials, DOMAIN%5CUSER, with the password or (#hash=nt) its NT hash. */
/** A PAC file naming only the proxy on `port`: its proxy carries no credentials but BBGATE_PROXY_USER's. */
function pacFor(port: number): string {
  const file = join(tempDir(), 'proxy.pac');
  writeFileSync(file, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${port}"; }\n`);
  return `pac+file://${file}`;
}
/** A BBGATE_PROXY_PASSWORD_FILE holding `secret`. */
function passwordFile(secret = SECRET): string {
  const file = join(tempDir(), 'proxy-password');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}
const ntlmUrl = (port: number, hash = false) => `http://CORP%5C${PROXY_USER}:${hash ? NT_HASH : ENCODED}@127.0.0.1:${port}${hash ? '#hash=nt' : ''}`;

describe('no output echoes a credential', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  let ntlmSquid: RunningSquid;
  let deadPort: number;
  before(async () => {
    master = await startMaster({ workers: [{ name: WORKER, password: 'the-right-password' }] });
    squid = await startSquid({ auth: { users: { [PROXY_USER]: SECRET } }, allowPorts: [master.pbPort], hosts: { [HOST_ALIAS]: '127.0.0.1' } });
    ntlmSquid = await startSquid({ ntlm: true, allowPorts: [master.pbPort] });
    deadPort = await freePort();
  });
  after(async () => {
    await squid?.stop();
    await ntlmSquid?.stop();
    await master?.stop();
  });

  it('finds the planted secret where it belongs, so that the search can fail', async () => {
    const dir = join(tempDir(), 'w');
    const r = await bbgate(['create-worker', dir, '127.0.0.1:9989', WORKER, SECRET]);
    assert.equal(r.status, 0, r.stderr);
    assertClean('create-worker', { stdout: r.stdout, stderr: r.stderr });
    // The tac must hold the password (buildbot-worker's does too): the search sees it there.
    assert.deepEqual(leaks(readFileSync(join(dir, 'buildbot.tac'), 'utf8')), ['Qr7']);
    assert.deepEqual(leaks(JSON.stringify({ url: proxyUrl(PROXY_USER, 1) })), ['Qr7', PROXY_USER]);
    assert.deepEqual(leaks(`Proxy-Authorization: Basic ${basic(STRANGER)}`), [basic(STRANGER)]);
  });

  // The probe, as text and as --json, on strings that do not parse: exit 1, the parse step names the code.
  const malformed: [string, string[], Record<string, string>, string][] = [
    ['user info in a tcp: connection string', [`tcp:${PROXY_USER}:${SECRET}@127.0.0.1:9989`], {}, 'ENDPOINT_SYNTAX'],
    ['user info in an escaped host=', [`tcp:host=${PROXY_USER}\\:${SECRET.replace(':', '\\:')}@127.0.0.1:port=9989`], {}, 'ENDPOINT_SYNTAX'],
    ['user info in an IPv6 bracket', [`tcp:[${PROXY_USER}:${SECRET}@x]:9989`], {}, 'ENDPOINT_SYNTAX'],
    ['user info in a ws:// URL', [`ws://${PROXY_USER}:${ENCODED}@127.0.0.1:8080/pb`], {}, 'ENDPOINT_SYNTAX'],
    ['a raw password breaking a wss:// URL', [`wss://${PROXY_USER}:${SECRET}@127.0.0.1/pb`], {}, 'ENDPOINT_SYNTAX'],
    ['user info in --use-tls MASTER', ['--use-tls', `${PROXY_USER}:${SECRET}@127.0.0.1:9989`], {}, 'USAGE'],
    ['a tls:// proxy', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `tls://${PROXY_USER}:${SECRET}@127.0.0.1:3128`], {}, 'PROXY_SYNTAX'],
    ['a tls: proxy', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `tls:${PROXY_USER}:${SECRET}@127.0.0.1:3128`], {}, 'PROXY_SYNTAX'],
    ['user info in a tcp: proxy', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `tcp:${PROXY_USER}:${SECRET}@127.0.0.1:3128`], {}, 'ENDPOINT_SYNTAX'],
    ['a proxy URL with a path', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `${proxyUrl(PROXY_USER, 3128)}/path`], {}, 'PROXY_SYNTAX'],
    ['a raw password breaking a proxy URL', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `http://${PROXY_USER}:${SECRET}@127.0.0.1:3128`], {}, 'PROXY_SYNTAX'],
    ['a socks5:// proxy', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `socks5://${PROXY_USER}:${ENCODED}@127.0.0.1:1080`], {}, 'PROXY_SYNTAX'],
    ['a malformed %-escape', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `http://${PROXY_USER}:${ENCODED}%zz@127.0.0.1:3128`], {}, 'PROXY_SYNTAX'],
    ['a port out of range', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `${proxyUrl(PROXY_USER, 99999)}`], {}, 'PROXY_SYNTAX'],
    // A name for the master, not 127.0.0.1: loopback destinations never go through HTTPS_PROXY/ALL_PROXY, so these would not be read.
    ['HTTPS_PROXY that is socks5://', [`tcp:${HOST_ALIAS}:9989`], { HTTPS_PROXY: `socks5://${PROXY_USER}:${ENCODED}@127.0.0.1:1080` }, 'PROXY_SYNTAX'],
    ['ALL_PROXY without a scheme', [`tcp:${HOST_ALIAS}:9989`], { ALL_PROXY: `${PROXY_USER}:${SECRET}@127.0.0.1:3128` }, 'PROXY_SYNTAX'],
    ['#hash=nt with a password that is no hash', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `${proxyUrl(PROXY_USER, 3128)}#hash=nt`], {}, 'PROXY_SYNTAX'],
    ['#hash=nt with #auth=basic', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `${ntlmUrl(3128, true)}&auth=basic`], {}, 'PROXY_SYNTAX'],
    // The environment's proxy credentials (BBGATE_PROXY_*), refused at start-up: no message quotes a value.
    ['both BBGATE_PROXY_PASSWORD and _FILE', ['tcp:127.0.0.1:9989'], { BBGATE_PROXY_USER: PROXY_USER, BBGATE_PROXY_PASSWORD: SECRET, BBGATE_PROXY_PASSWORD_FILE: '/nonexistent' }, 'PROXY_CREDENTIALS'],
    ['BBGATE_PROXY_HASH holding the secret', ['tcp:127.0.0.1:9989'], { BBGATE_PROXY_PASSWORD: NT_HASH, BBGATE_PROXY_HASH: NT_HASH }, 'PROXY_CREDENTIALS'],
    ['BBGATE_PROXY_HASH=nt with a password that is no hash', ['tcp:127.0.0.1:9989'], { BBGATE_PROXY_PASSWORD: SECRET, BBGATE_PROXY_HASH: 'nt' }, 'PROXY_CREDENTIALS'],
    ['BBGATE_PROXY_USER holding USER:PASSWORD', ['tcp:127.0.0.1:9989'], { BBGATE_PROXY_USER: `${PROXY_USER}:${SECRET}`, BBGATE_PROXY_PASSWORD: SECRET }, 'PROXY_CREDENTIALS'],
    ['#hash=nt meeting a BBGATE_PROXY_PASSWORD that is no hash', ['tcp:127.0.0.1:9989', '--proxy-connection-string', `http://CORP%5C${PROXY_USER}@127.0.0.1:3128#hash=nt`], { BBGATE_PROXY_PASSWORD: SECRET }, 'PROXY_CREDENTIALS'],
  ];

  it('probe: malformed connection, WebSocket and proxy strings, in flags and the environment', async () => {
    await Promise.all(malformed.map(async ([what, args, env, code]) => {
      const [text, json] = await Promise.all([bbgate(['probe', ...args], env), bbgate(['probe', ...args, '--json'], env)]);
      assert.equal(text.status, 1, `${what}: ${text.stdout}${text.stderr}`);
      assert.equal(json.status, 1, `${what}: ${json.stdout}${json.stderr}`);
      if (code === 'USAGE') {
        assert.match(text.stderr, /a user name or password does not belong/, what);
      } else {
        const report = JSON.parse(json.stdout) as ProbeJson;
        assert.equal(report.steps.find((s) => !s.ok)?.code, code, `${what}: ${json.stdout}`);
        assert.match(text.stdout, new RegExp(`✘ (parse|proxy) .*${code}`), what);
      }
      assertClean(`probe, ${what}`, { stdout: text.stdout, stderr: text.stderr, '--json': json.stdout, 'stderr with --json': json.stderr });
    }));
  });

  it('create-worker: malformed MASTER, connection and proxy strings', async () => {
    const dir = () => join(tempDir(), 'w');
    const cases: [string, string[]][] = [
      ['MASTER', [dir(), `${PROXY_USER}:${SECRET}@127.0.0.1:9989`, WORKER, SECRET]],
      ['--connection-string', ['--connection-string', `tcp:${PROXY_USER}:${SECRET}@127.0.0.1:9989`, dir(), WORKER, SECRET]],
      ['--connection-string ws://', ['--connection-string', `ws://${PROXY_USER}:${ENCODED}@127.0.0.1/pb`, dir(), WORKER, SECRET]],
      ['--proxy-connection-string tls://', ['--proxy-connection-string', `tls://${PROXY_USER}:${SECRET}@127.0.0.1:3128`, dir(), '127.0.0.1:9989', WORKER, SECRET]],
      ['--proxy-connection-string with a path', ['--proxy-connection-string', `${proxyUrl(PROXY_USER, 3128)}/x`, dir(), '127.0.0.1:9989', WORKER, SECRET]],
      ['too many arguments', [dir(), '127.0.0.1:9989', WORKER, SECRET, SECRET]],
    ];
    await Promise.all(cases.map(async ([what, args]) => {
      const r = await bbgate(['create-worker', ...args]);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^bbgate: /, what);
      assertClean(`create-worker, ${what}`, { stdout: r.stdout, stderr: r.stderr });
    }));
  });

  it('probe: a wrong password against the real master, a dead proxy, and squid refusing or accepting the proxy credentials', async () => {
    const master_ = `tcp:127.0.0.1:${master.pbPort}`;
    // The environment's proxies apply only to a master that is not loopback: a name squid resolves to 127.0.0.1.
    const aliased = `tcp:${HOST_ALIAS}:${master.pbPort}`;
    const login = ['--name', WORKER, '--password', SECRET];
    const basedir = join(tempDir(), 'w');
    const created = await bbgate(['create-worker', '-q', '--proxy-connection-string', proxyUrl(PROXY_USER, squid.port), basedir, `127.0.0.1:${master.pbPort}`, WORKER, SECRET]);
    assert.equal(created.status, 0, created.stderr);
    const cases: [string, string[], Record<string, string>, string][] = [
      ['--password, wrong', [master_, ...login], {}, 'PB_UNAUTHORIZED'],
      ['BBGATE_PASSWORD, wrong', [master_, '--name', WORKER], { BBGATE_PASSWORD: SECRET }, 'PB_UNAUTHORIZED'],
      ['a dead proxy', [master_, ...login, '--proxy-connection-string', proxyUrl(PROXY_USER, deadPort)], {}, 'PROXY_REFUSED'],
      ['a dead proxy from HTTPS_PROXY', [aliased, ...login], { HTTPS_PROXY: proxyUrl(PROXY_USER, deadPort) }, 'PROXY_REFUSED'],
      ['squid refusing the credentials', [master_, ...login, '--proxy-connection-string', proxyUrl(STRANGER, squid.port)], {}, 'PROXY_AUTH_FAILED'],
      ['squid refusing the credentials from ALL_PROXY', [aliased, ...login], { ALL_PROXY: proxyUrl(STRANGER, squid.port) }, 'PROXY_AUTH_FAILED'],
      ['squid accepting, the master refusing', [master_, ...login, '--verbose', '--proxy-connection-string', proxyUrl(PROXY_USER, squid.port)], {}, 'PB_UNAUTHORIZED'],
      ['squid accepting NTLM, the master refusing', [master_, ...login, '--verbose', '--proxy-connection-string', ntlmUrl(ntlmSquid.port)], {}, 'PB_UNAUTHORIZED'],
      ['squid accepting an NT hash, the master refusing', [master_, ...login, '--verbose', '--proxy-connection-string', ntlmUrl(ntlmSquid.port, true)], {}, 'PB_UNAUTHORIZED'],
      ['an NT hash offered to a Basic-only squid', [master_, ...login, '--proxy-connection-string', `http://${PROXY_USER}:${NT_HASH}@127.0.0.1:${squid.port}#hash=nt`], {}, 'PROXY_AUTH_UNSUPPORTED'],
      ['--basedir: the tac\'s passwd and proxy', ['--basedir', basedir, '--verbose'], {}, 'PB_UNAUTHORIZED'],
      ["squid refusing a PAC's proxy the credentials of BBGATE_PROXY_USER and the password file", [master_, ...login, '--proxy-connection-string', pacFor(squid.port)], { BBGATE_PROXY_USER: STRANGER, BBGATE_PROXY_PASSWORD_FILE: passwordFile() }, 'PROXY_AUTH_FAILED'],
      ["squid accepting the password of BBGATE_PROXY_PASSWORD for the proxy string's user, the master refusing", [master_, ...login, '--verbose', '--proxy-connection-string', `http://${PROXY_USER}@127.0.0.1:${squid.port}`], { BBGATE_PROXY_PASSWORD: SECRET }, 'PB_UNAUTHORIZED'],
      ["squid accepting NTLM for a PAC's proxy from BBGATE_PROXY_USER and the password file, the master refusing", [master_, ...login, '--verbose', '--proxy-connection-string', pacFor(ntlmSquid.port)], { BBGATE_PROXY_USER: `CORP\\${PROXY_USER}`, BBGATE_PROXY_PASSWORD_FILE: passwordFile() }, 'PB_UNAUTHORIZED'],
      ['squid accepting an NT hash from BBGATE_PROXY_PASSWORD with BBGATE_PROXY_HASH=nt, the master refusing', [master_, ...login, '--verbose', '--proxy-connection-string', pacFor(ntlmSquid.port)], { BBGATE_PROXY_USER: `CORP\\${PROXY_USER}`, BBGATE_PROXY_PASSWORD: NT_HASH, BBGATE_PROXY_HASH: 'nt' }, 'PB_UNAUTHORIZED'],
    ];
    await Promise.all(cases.map(async ([what, args, env, code]) => {
      const [text, json] = await Promise.all([bbgate(['probe', ...args], env), bbgate(['probe', ...args, '--json'], env)]);
      const report = JSON.parse(json.stdout) as ProbeJson;
      assert.equal(report.steps.find((s) => !s.ok)?.code, code, `${what}: ${json.stdout}${json.stderr}`);
      assert.notEqual(text.status, 0, `${what}: ${text.stdout}`);
      assert.match(text.stdout, new RegExp(`✘ \\w+ .*${code}`), what);
      assertClean(`probe, ${what}`, { stdout: text.stdout, stderr: text.stderr, '--json': json.stdout, 'stderr with --json': json.stderr });
    }));
  });

  /** A worker directory whose tac gives up after one failed attempt, so that start returns at once. */
  async function giveUpWorker(proxy: string | undefined): Promise<string> {
    const dir = join(tempDir(), 'w');
    const r = await bbgate(['create-worker', '-q', '--maxretries', '1', ...(proxy ? ['--proxy-connection-string', proxy] : []), dir, `127.0.0.1:${master.pbPort}`, WORKER, SECRET]);
    assert.equal(r.status, 0, r.stderr);
    return dir;
  }

  it('start, restart, stop and the worker\'s twistd.log: a wrong password, a dead proxy, squid refusing, and proxy strings that do not parse', async () => {
    const failing: [string, string | undefined, string, Record<string, string>?][] = [
      ['a wrong password', undefined, 'PB_UNAUTHORIZED'],
      ['a dead proxy', proxyUrl(PROXY_USER, deadPort), 'PROXY_REFUSED'],
      ['squid refusing the credentials', proxyUrl(STRANGER, squid.port), 'PROXY_AUTH_FAILED'],
      ['squid accepting, the master refusing', proxyUrl(PROXY_USER, squid.port), 'PB_UNAUTHORIZED'],
      ['squid accepting an NT hash, the master refusing', ntlmUrl(ntlmSquid.port, true), 'PB_UNAUTHORIZED'],
      ["squid refusing a PAC's proxy the credentials of BBGATE_PROXY_USER and the password file", pacFor(squid.port), 'PROXY_AUTH_FAILED', { BBGATE_PROXY_USER: STRANGER, BBGATE_PROXY_PASSWORD_FILE: passwordFile() }],
      ["squid accepting NTLM for a PAC's proxy from BBGATE_PROXY_USER and BBGATE_PROXY_PASSWORD, the master refusing", pacFor(ntlmSquid.port), 'PB_UNAUTHORIZED', { BBGATE_PROXY_USER: `CORP\\${PROXY_USER}`, BBGATE_PROXY_PASSWORD: SECRET }],
    ];
    await Promise.all(failing.map(async ([what, proxy, code, env = {}]) => {
      const dir = await giveUpWorker(proxy);
      const start = await bbgate(['start', dir], env);
      assert.equal(start.status, 1, `${what}: ${start.stdout}${start.stderr}`);
      assert.match(start.stdout, /exited \(status 1\) before the master attached it/, what);
      const log = readFileSync(join(dir, 'twistd.log'), 'utf8');
      assert.match(log, new RegExp(`\\[-\\] ERROR: gave up after 1 failed attempt.* code=${code}$`, 'm'), `${what}: ${log}`);
      const foreground = await bbgate(['start', '--nodaemon', dir], env);
      assert.equal(foreground.status, 1, `${what}: ${foreground.stdout}${foreground.stderr}`);
      assert.match(foreground.stdout, /gave up after 1 failed attempt/, what);
      const stop = await bbgate(['stop', dir], env);
      assertClean(`start, ${what}`, {
        stdout: start.stdout, stderr: start.stderr, 'twistd.log': readFileSync(join(dir, 'twistd.log'), 'utf8'),
        'stdout of start --nodaemon': foreground.stdout, 'stderr of start --nodaemon': foreground.stderr,
        'stdout of stop': stop.stdout, 'stderr of stop': stop.stderr,
      });
    }));

    // Hand-edited tacs, which create-worker would have refused: start and restart report them.
    const edited: [string, RegExp, string][] = [
      ['a tls:// proxy', /^proxy_connection_string = .*$/m, `proxy_connection_string = 'tls://${PROXY_USER}:${SECRET}@127.0.0.1:3128'`],
      ['user info in a tcp: proxy', /^proxy_connection_string = .*$/m, `proxy_connection_string = 'tcp:${PROXY_USER}:${SECRET}@127.0.0.1:3128'`],
      ['user info in the connection string', /^buildmaster_host = .*$/m, `buildmaster_host = None\nconnection_string = 'tcp:${PROXY_USER}:${SECRET}@127.0.0.1:1'`],
      ['a passwd that is not a str', /^passwd = .*$/m, `passwd = ['${SECRET}']`],
    ];
    await Promise.all(edited.map(async ([what, line, replacement]) => {
      const dir = await giveUpWorker(undefined);
      const tac = join(dir, 'buildbot.tac');
      const source = readFileSync(tac, 'utf8');
      assert.match(source, line, what);
      let text = source.replace(line, replacement);
      if (what.includes('connection string')) text = text.replace(/^port = .*$/m, 'port = None').replace(/proxy_connection_string=proxy_connection_string\)/, 'proxy_connection_string=proxy_connection_string, connection_string=connection_string)');
      writeFileSync(tac, text);
      const [start, restart, probe] = await Promise.all([bbgate(['start', dir]), bbgate(['restart', dir]), bbgate(['probe', '--basedir', dir, '--json'])]);
      assert.equal(start.status, 1, `${what}: ${start.stdout}${start.stderr}`);
      assert.match(start.stderr, /^bbgate: .*buildbot\.tac:\d+: /, what);
      assert.equal(restart.status, 1, `${what}: ${restart.stdout}${restart.stderr}`);
      assert.equal((JSON.parse(probe.stdout) as ProbeJson).steps[0]!.ok, false, what);
      assertClean(`start, ${what}`, {
        stdout: start.stdout, stderr: start.stderr, 'restart stdout': restart.stdout, 'restart stderr': restart.stderr,
        'probe --basedir --json': probe.stdout, 'probe stderr': probe.stderr,
      });
    }));
  });

  it('relay: configuration errors, and its log and /metrics while its upstream proxy refuses or the master refuses', async () => {
    const dir = tempDir();
    const listen = ['--listen', 'tcp:0:interface=127.0.0.1', '--allow', '*'];
    // A name squid resolves to 127.0.0.1, so that HTTPS_PROXY applies (it never does to a loopback master).
    const upstream = ['--upstream', `tcp:${HOST_ALIAS}:${master.pbPort}`];
    writeFileSync(join(dir, 'list.json'), JSON.stringify({ upstreamProxy: [proxyUrl(PROXY_USER, 3128)] }));
    // Unquoted, and without its scheme: V8's message quotes the text around the mistake.
    writeFileSync(join(dir, 'bad.json'), `{"upstreamProxy": ${PROXY_USER}:${ENCODED}@127.0.0.1:3128}`);
    const configErrors: [string, string[]][] = [
      ['user info in --upstream', [...listen, '--upstream', `tcp:${PROXY_USER}:${SECRET}@127.0.0.1:9989`]],
      ['a tls:// --upstream-proxy', [...listen, ...upstream, '--upstream-proxy', `tls://${PROXY_USER}:${SECRET}@127.0.0.1:3128`]],
      ['a raw password breaking --upstream-proxy', [...listen, ...upstream, '--upstream-proxy', `http://${PROXY_USER}:${SECRET}@127.0.0.1:3128`]],
      ['user info in a ws:// listener', ['--listen', `ws://${PROXY_USER}:${ENCODED}@127.0.0.1:0/pb`, '--allow', '*', ...upstream]],
      ['relay.json: upstreamProxy as a list', ['--config', join(dir, 'list.json'), ...listen, ...upstream]],
      ['relay.json: not JSON at the password', ['--config', join(dir, 'bad.json'), ...listen, ...upstream]],
    ];
    await Promise.all(configErrors.map(async ([what, args]) => {
      const r = await bbgate(['relay', ...args]);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^bbgate: /, what);
      assertClean(`relay, ${what}`, { stdout: r.stdout, stderr: r.stderr });
    }));

    // Running relays: the probe logs in through each; the relay's stdout is its log.
    const running: [string, string[], Record<string, string>, string][] = [
      ['its upstream proxy refusing the credentials', ['--upstream-proxy', proxyUrl(STRANGER, squid.port)], {}, 'PROXY_AUTH_FAILED'],
      ['its upstream proxy dead', ['--upstream-proxy', proxyUrl(PROXY_USER, deadPort)], {}, 'PROXY_REFUSED'],
      ['HTTPS_PROXY refusing the credentials', [], { HTTPS_PROXY: proxyUrl(STRANGER, squid.port) }, 'PROXY_AUTH_FAILED'],
      ['HTTPS_PROXY that is socks5://', [], { HTTPS_PROXY: `socks5://${PROXY_USER}:${ENCODED}@127.0.0.1:1080` }, 'PROXY_SYNTAX'],
      ['its upstream proxy accepting, the master refusing the password', ['--upstream-proxy', proxyUrl(PROXY_USER, squid.port)], {}, 'PB_UNAUTHORIZED'],
    ];
    await Promise.all(running.map(async ([what, args, env, code]) => {
      const [port, metricsPort] = [await freePort(), await freePort()];
      const relay = startProcess(process.execPath, [CLI, 'relay', '--listen', `tcp:${port}:interface=127.0.0.1`, '--allow', '*', ...upstream, '--metrics', `127.0.0.1:${metricsPort}`, ...args], {
        env: { ...withoutProxies(), ...env },
      });
      try {
        await relay.waitForLine(/relay listening/);
        const probe = await bbgate(['probe', `tcp:127.0.0.1:${port}`, '--name', WORKER, '--password', SECRET, '--json']);
        const failed = (JSON.parse(probe.stdout) as ProbeJson).steps.find((s) => !s.ok);
        if (code === 'PB_UNAUTHORIZED') {
          assert.equal(failed?.code, 'PB_UNAUTHORIZED', `${what}: ${probe.stdout}`);
          await relay.waitForLine(/the master refused the worker's password/);
        } else {
          assert.equal(failed?.code, 'RELAY_UPSTREAM', `${what}: ${probe.stdout}`);
          await relay.waitForLine(new RegExp(`"code":"${code}".*cannot reach the master`));
        }
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        assert.match(metrics, /bbgate_relay_logins_total/, what);
        relay.child.kill('SIGTERM');
        assert.equal(await relay.exited, 0, what);
        assertClean(`relay, ${what}`, { 'relay log (stdout)': relay.lines.join('\n'), 'relay stderr': relay.stderr(), '/metrics': metrics, 'probe --json': probe.stdout, 'probe stderr': probe.stderr });
      } finally {
        relay.kill();
      }
    }));
  });
});

function withoutProxies(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?|all|no)_proxy$/i.test(k)));
}
