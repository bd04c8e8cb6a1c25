// Proxy credentials from the environment (issue 12, items 4 and 7): BBGATE_PROXY_PASSWORD(_FILE)
// for a proxy string naming a user without a password, BBGATE_PROXY_USER for the proxies a PAC
// file names. The rules against the pure functions, then real peers on loopback: a squid doing
// NTLM (ntlm_fake_auth, which logs DOMAIN\user) and Basic (basic_ncsa_auth, which checks the
// password), a real master, `bbgate probe` and a worker started by `bbgate start`, each reading
// the credentials from its own environment. Also a PAC served over HTTPS (pac+https:).
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readProxyCredentials, withProxyCredentials } from '../../src/address/proxy-credentials.js';
import { proxySettingSecrets } from '../../src/address/proxy-setting.js';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { BbgateError } from '../../src/errors.js';
import { Results, startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../cli/support.js';

const PASSWORD = 'env-Pa55:w0rd/x';
const HASH = '0123456789ABCDEF0123456789ABCDEF';

function fails(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof BbgateError);
    assert.equal(err.code, 'PROXY_CREDENTIALS');
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(PASSWORD) && !err.message.includes(HASH), err.message);
    return true;
  });
}

describe('proxy credentials from the environment: the rules', () => {
  const files: Record<string, string> = { '/pw': `${PASSWORD}\nignored second line\n`, '/crlf': `${PASSWORD}\r\n`, '/empty': '\nsecond', '/hash': `${HASH}\n` };
  const readFile = (path: string): string => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
  const read = (env: NodeJS.ProcessEnv) => readProxyCredentials(env, readFile);

  it('reads the password from the first line of a file or from a variable; nothing set is no credentials', () => {
    assert.deepEqual(read({}), {});
    assert.deepEqual(read({ BBGATE_PROXY_PASSWORD_FILE: '/pw' }), { password: PASSWORD, passwordFrom: 'BBGATE_PROXY_PASSWORD_FILE=/pw' });
    assert.equal(read({ BBGATE_PROXY_PASSWORD_FILE: '/crlf' }).password, PASSWORD);
    assert.deepEqual(read({ BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD: PASSWORD }), { username: 'CORP\\jane', password: PASSWORD, passwordFrom: 'BBGATE_PROXY_PASSWORD' });
    assert.deepEqual(read({ BBGATE_PROXY_PASSWORD: HASH, BBGATE_PROXY_HASH: 'NT' }), { password: HASH, passwordFrom: 'BBGATE_PROXY_PASSWORD', passwordHash: 'nt' });
  });

  it('refuses what does not add up, naming the variable or file and never a value', () => {
    fails(() => read({ BBGATE_PROXY_PASSWORD_FILE: '/missing' }), /^cannot read the proxy password from BBGATE_PROXY_PASSWORD_FILE=\/missing: no such file$/);
    fails(() => read({ BBGATE_PROXY_PASSWORD_FILE: '/empty' }), /BBGATE_PROXY_PASSWORD_FILE=\/empty is empty/);
    fails(() => read({ BBGATE_PROXY_PASSWORD_FILE: '/pw', BBGATE_PROXY_PASSWORD: PASSWORD }), /both BBGATE_PROXY_PASSWORD_FILE and BBGATE_PROXY_PASSWORD are set/);
    fails(() => read({ BBGATE_PROXY_USER: 'jane' }), /BBGATE_PROXY_USER is set but no password is/);
    fails(() => read({ BBGATE_PROXY_USER: 'ja:ne', BBGATE_PROXY_PASSWORD: PASSWORD }), /contains ":"/);
    fails(() => read({ BBGATE_PROXY_PASSWORD: HASH, BBGATE_PROXY_HASH: HASH }), /BBGATE_PROXY_HASH takes nt or ntlmv2/);
    fails(() => read({ BBGATE_PROXY_PASSWORD: PASSWORD, BBGATE_PROXY_HASH: 'nt' }), /BBGATE_PROXY_HASH=nt wants BBGATE_PROXY_PASSWORD to hold the 32 hex digits/);
    fails(() => read({ BBGATE_PROXY_HASH: 'nt' }), /BBGATE_PROXY_HASH is set but no password is/);
  });

  it('fills in only what a proxy string lacks: a password for its user, or user and password when it names none', () => {
    const env = read({ BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD_FILE: '/pw' });
    const userOnly = withProxyCredentials(parseProxyString('http://bob@proxy:3128'), env);
    assert.deepEqual([userOnly.username, userOnly.password], ['bob', PASSWORD]);
    const bare = withProxyCredentials(parseProxyString('http://proxy:3128'), env);
    assert.deepEqual([bare.username, bare.password], ['CORP\\jane', PASSWORD]);
    const own = withProxyCredentials(parseProxyString('http://bob:own-pw@proxy:3128'), env);
    assert.deepEqual([own.username, own.password], ['bob', 'own-pw']);
    // A password alone goes only to a string naming a user.
    const passwordOnly = read({ BBGATE_PROXY_PASSWORD: PASSWORD });
    assert.equal(withProxyCredentials(parseProxyString('http://proxy:3128'), passwordOnly).password, undefined);
    // #hash= on the string says what the environment's password is; BBGATE_PROXY_HASH when it does not.
    const hashed = withProxyCredentials(parseProxyString('http://CORP%5Cjane@proxy:3128#hash=ntlmv2'), read({ BBGATE_PROXY_PASSWORD_FILE: '/hash' }));
    assert.deepEqual([hashed.password, hashed.passwordHash], [HASH, 'ntlmv2']);
    fails(() => withProxyCredentials(parseProxyString('http://CORP%5Cjane@proxy:3128#hash=nt'), passwordOnly), /#hash=nt wants BBGATE_PROXY_PASSWORD to hold the 32 hex digits/);
    fails(() => withProxyCredentials(parseProxyString('http://CORP%5Cjane@proxy:3128#hash=nt'), {}), /#hash=nt has no hash/);
  });

  it("the scrubbers get the environment's password and its Basic token", () => {
    const env = read({ BBGATE_PROXY_USER: 'jane', BBGATE_PROXY_PASSWORD: PASSWORD });
    assert.deepEqual(proxySettingSecrets(undefined, env), [PASSWORD, Buffer.from(`jane:${PASSWORD}`).toString('base64')]);
  });
});

describe('proxy credentials from the environment, against a real squid and master', () => {
  let master: RunningMaster;
  let squid: RunningSquid;
  let pki: TestPki;
  let pacServer: Server;
  let dir: string;
  let passwordFile: string;

  before(async () => {
    master = await startMaster({
      workers: [{ name: 'cw', password: 'cw-pass' }],
      // The build prints whether the worker handed BBGATE_PROXY_PASSWORD on to it.
      builders: [{ name: 'env', workernames: ['cw'], steps: [`steps.ShellCommand(command=['sh', '-c', 'echo "proxy password: \${BBGATE_PROXY_PASSWORD-unset}"'])`] }],
    });
    squid = await startSquid({ ntlm: true, auth: { users: { basicuser: PASSWORD } }, allowPorts: [master.pbPort] });
    dir = tempDir('bbgate-creds-');
    passwordFile = join(dir, 'proxy-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    pki = await testPki();
    pacServer = createServer({ cert: pki.serverChain, key: pki.server.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end(pacScript());
    });
    await new Promise<void>((resolve) => pacServer.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    pacServer?.closeAllConnections();
    pacServer?.close();
    await squid?.stop();
    await master?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const pacScript = () => `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${squid.port}"; }\n`;
  const pacFile = () => {
    writeFileSync(join(dir, 'proxy.pac'), pacScript());
    return `pac+file://${join(dir, 'proxy.pac')}`;
  };
  const pacHttps = () => `pac+https://127.0.0.1:${(pacServer.address() as AddressInfo).port}/proxy.pac`;
  const ntlmEnv = () => ({ BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD_FILE: passwordFile });
  const master_ = () => `tcp:127.0.0.1:${master.pbPort}`;
  async function probe(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; report: ProbeJson; text: string }> {
    const run = await bbgate(['probe', ...args, '--json'], env);
    assert.ok(!(run.stdout + run.stderr).includes(PASSWORD), run.stdout + run.stderr);
    return { status: run.status, report: JSON.parse(run.stdout) as ProbeJson, text: run.stdout + run.stderr };
  }
  const step = (r: ProbeJson, name: string) => r.steps.find((s) => s.step === name)!;

  it("a PAC's proxy gets BBGATE_PROXY_USER and the password file: NTLM through squid, which logs the user", async () => {
    const { status, report } = await probe([master_(), '--proxy-connection-string', pacFile(), '--name', 'cw', '--password', 'cw-pass'], ntlmEnv());
    assert.equal(status, 0, JSON.stringify(report));
    assert.match(step(report, 'connect').message, /authenticated with NTLM \(offered NTLM, Basic\)$/);
    await waitFor(() => /TCP_TUNNEL\/200 .* CORP\\\\jane /.test(squid.accessLog()), "the NTLM user in squid's access log");
    // Without them, the PAC's proxy has no credentials: the 407 is the error.
    const bare = await probe([master_(), '--proxy-connection-string', pacFile()], {});
    assert.equal(bare.status, 3);
    assert.equal(step(bare.report, 'connect').code, 'PROXY_AUTH_REQUIRED');
  });

  it('a proxy string with a user and no password takes BBGATE_PROXY_PASSWORD (checked by squid: a wrong one is refused)', async () => {
    const flag = `http://basicuser@127.0.0.1:${squid.port}#auth=basic`;
    const right = await probe([master_(), '--proxy-connection-string', flag], { BBGATE_PROXY_PASSWORD: PASSWORD });
    assert.equal(right.status, 0, JSON.stringify(right.report));
    assert.match(step(right.report, 'connect').message, /authenticated with Basic/);
    await waitFor(() => /TCP_TUNNEL\/200 .* basicuser /.test(squid.accessLog()), "the Basic user in squid's access log");
    const wrong = await probe([master_(), '--proxy-connection-string', flag], { BBGATE_PROXY_PASSWORD: 'not-the-password' });
    assert.equal(wrong.status, 3);
    assert.equal(step(wrong.report, 'connect').code, 'PROXY_AUTH_FAILED');
  });

  it('a missing password file is PROXY_CREDENTIALS at the parse step, naming the file (exit 1)', async () => {
    const missing = join(dir, 'no-such-file');
    const { status, report } = await probe([master_(), '--proxy-connection-string', pacFile()], { BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD_FILE: missing });
    assert.equal(status, 1);
    const parse = step(report, 'parse');
    assert.equal(parse.code, 'PROXY_CREDENTIALS');
    assert.equal(parse.message, `cannot read the proxy password from BBGATE_PROXY_PASSWORD_FILE=${missing}: no such file`);
  });

  it('pac+https: an untrusted certificate is PROXY_PAC_LOAD saying so; NODE_EXTRA_CA_CERTS naming the private root makes it work', async () => {
    const untrusted = await probe([master_(), '--proxy-connection-string', pacHttps()], ntlmEnv());
    assert.equal(untrusted.status, 3);
    const pac = step(untrusted.report, 'pac');
    assert.equal(pac.code, 'PROXY_PAC_LOAD');
    assert.match(pac.message, /^cannot load the PAC file pac\+https:\/\/127\.0\.0\.1:\d+\/proxy\.pac: UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate$/);
    const trusted = await probe([master_(), '--proxy-connection-string', pacHttps()], { ...ntlmEnv(), NODE_EXTRA_CA_CERTS: pki.root.certFile });
    assert.equal(trusted.status, 0, JSON.stringify(trusted.report));
    assert.match(step(trusted.report, 'pac').message, /answered "PROXY 127\.0\.0\.1:\d+"/);
    assert.match(step(trusted.report, 'connect').message, /authenticated with NTLM/);
  });

  it('a worker started by `bbgate start` builds through the PAC with the credentials of its environment; builds do not see BBGATE_PROXY_PASSWORD', { timeout: 120_000 }, async () => {
    for (const [name, env] of [['file', ntlmEnv()], ['variable', { BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD: PASSWORD }]] as const) {
      const basedir = join(dir, `worker-${name}`);
      const created = await bbgate(['create-worker', '--proxy-connection-string', pacFile(), basedir, `127.0.0.1:${master.pbPort}`, 'cw', 'cw-pass']);
      assert.equal(created.status, 0, created.stderr);
      const started = await bbgate(['start', '--quiet', basedir], env);
      assert.equal(started.status, 0, started.stderr);
      try {
        const log = () => readFileSync(join(basedir, 'twistd.log'), 'utf8');
        await waitFor(() => log().includes('Connected to buildmaster'), 'the worker connected');
        const build = await master.runBuild('env');
        assert.equal(build.results, Results.SUCCESS, JSON.stringify(build.steps));
        assert.match(build.steps.at(-1)!.logs[0]!.stdout ?? '', /proxy password: unset/);
        assert.match(log(), /authenticated with NTLM/);
        assert.ok(!log().includes(PASSWORD));
      } finally {
        const stopped = await bbgate(['stop', basedir]);
        assert.equal(stopped.status, 0, stopped.stderr);
      }
    }
  });

  it('a worker whose password file is missing does not start, and `bbgate start` says why', async () => {
    const basedir = join(dir, 'worker-missing');
    assert.equal((await bbgate(['create-worker', '--proxy-connection-string', pacFile(), basedir, `127.0.0.1:${master.pbPort}`, 'cw', 'cw-pass'])).status, 0);
    const missing = join(dir, 'gone');
    const started = await bbgate(['start', basedir], { BBGATE_PROXY_USER: 'CORP\\jane', BBGATE_PROXY_PASSWORD_FILE: missing });
    assert.equal(started.status, 1, started.stdout + started.stderr);
    assert.match(started.stderr, new RegExp(`cannot read the proxy password from BBGATE_PROXY_PASSWORD_FILE=${missing.replace(/[/.]/g, '\\$&')}: no such file`));
  });
});
