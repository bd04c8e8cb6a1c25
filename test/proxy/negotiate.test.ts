// Negotiate (SPNEGO/Kerberos) proxy authentication against a real MIT KDC on loopback: the
// tokens bbgate makes are checked by an independent acceptor (python3-gssapi with the service's
// keytab) and by squid's negotiate_kerberos_auth; each way Kerberos fails is its own typed error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startRealm, type RunningRealm } from '../helpers/kdc.js';
import { PYTHON } from '../helpers/python.js';
import { startSquid, type RunningSquid } from '../helpers/squid.js';
import { waitFor } from '../helpers/wait.js';
import { createNegotiateExchange, requireNegotiateExchange } from '../../src/proxy/auth/negotiate.js';
import { parseConnectReply } from '../../src/proxy/reply.js';
import { hintFor } from '../../src/probe/diagnosis.js';
import { rejectsWith } from './expect.js';
import { closedPort, readUntil, startTarget, type Peer } from './peers.js';

// The acceptor: GSSAPI through python3-gssapi (no bbgate code), keys from KRB5_KTNAME.
const ACCEPTOR = `
import base64, json, sys, gssapi
token = base64.b64decode(sys.stdin.read().strip())
try:
    ctx = gssapi.SecurityContext(creds=gssapi.Credentials(usage='accept'), usage='accept')
    ctx.step(token)
    print(json.dumps({'complete': ctx.complete, 'initiator': str(ctx.initiator_name), 'mech': ctx.mech.dotted_form}))
except gssapi.exceptions.GSSError as e:
    print(json.dumps({'error': str(e)}))
`;

/** Runs the acceptor on one token (the base64 after "Negotiate "). */
function accept(realm: RunningRealm, token: string): Promise<{ complete?: boolean; initiator?: string; mech?: string; error?: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', ACCEPTOR], { env: { ...process.env, KRB5_CONFIG: realm.krb5Conf, KRB5_KTNAME: realm.serviceKeytab, KRB5RCACHETYPE: 'none' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`acceptor failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
    child.stdin!.end(token);
  });
}

/** Runs `body` with these Kerberos variables, and only these, in this process's environment (krb5 reads them per call). */
async function withKerberosEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const names = ['KRB5_CONFIG', 'KRB5CCNAME', 'KRB5_CLIENT_KTNAME'];
  const saved = names.map((n) => process.env[n]);
  for (const n of names) delete process.env[n];
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    names.forEach((n, i) => (saved[i] === undefined ? delete process.env[n] : (process.env[n] = saved[i])));
  }
}

/** DER of SPNEGO's OID 1.3.6.1.5.5.2; Kerberos 5's OID as the acceptor prints the mechanism it settled on. */
const SPNEGO_OID = Buffer.from('06062b0601050502', 'hex');
const KERBEROS = '1.2.840.113554.1.2.2';

describe('Negotiate with a real MIT KDC', () => {
  let realm: RunningRealm;

  before(async () => {
    realm = await startRealm();
  });
  after(async () => {
    await realm?.stop();
  });

  it('makes an SPNEGO token from the ticket cache that an independent GSSAPI acceptor accepts, in one leg', async () => {
    const cc = await realm.kinit();
    const exchange = await withKerberosEnv(realm.env(cc), () => createNegotiateExchange('localhost'));
    assert.ok(exchange, 'an exchange, since there is a ticket');
    assert.equal(exchange.scheme, 'Negotiate');
    assert.equal(exchange.done, false);
    const header = await exchange.step(undefined);
    assert.equal(exchange.done, true, 'Kerberos has a single leg: a 407 after it is a refusal');
    const m = /^Negotiate ([A-Za-z0-9+/]+=*)$/.exec(header);
    assert.ok(m, header);
    // RFC 4559's form: a GSS initial token framed with SPNEGO's OID, carrying Kerberos.
    const der = Buffer.from(m[1]!, 'base64');
    assert.equal(der[0], 0x60, 'a GSS-API InitialContextToken');
    assert.ok(der.subarray(0, 16).includes(SPNEGO_OID), 'framed as SPNEGO');
    const verdict = await accept(realm, m[1]!);
    assert.deepEqual(verdict, { complete: true, initiator: `${realm.user}@${realm.realm}`, mech: KERBEROS });
  });

  it('gets its own ticket from a client keytab (KRB5_CLIENT_KTNAME), without kinit', async () => {
    const exchange = await withKerberosEnv({ ...realm.env(realm.emptyCache()), KRB5_CLIENT_KTNAME: realm.userKeytab }, () => createNegotiateExchange('localhost'));
    assert.ok(exchange);
    const verdict = await accept(realm, (await exchange.step(undefined)).slice('Negotiate '.length));
    assert.equal(verdict.initiator, `${realm.user}@${realm.realm}`);
    assert.equal(verdict.complete, true);
  });

  it('replaces an expired ticket from the client keytab (what the EXPIRED hint tells a long-running worker to use)', async () => {
    const expired = await realm.kinitExpired();
    const exchange = await withKerberosEnv({ ...realm.env(expired), KRB5_CLIENT_KTNAME: realm.userKeytab }, () => createNegotiateExchange('localhost'));
    assert.ok(exchange);
    assert.equal((await accept(realm, (await exchange.step(undefined)).slice('Negotiate '.length))).complete, true);
  });

  it('has no exchange without a ticket (so NTLM can go next), and says "run kinit" when Negotiate is required', async () => {
    const empty = realm.emptyCache();
    await withKerberosEnv(realm.env(empty), async () => {
      assert.equal(await createNegotiateExchange('localhost'), undefined);
      const err = await rejectsWith(requireNegotiateExchange('localhost'), 'PROXY_AUTH_NEGOTIATE_NO_TICKET', /no Kerberos ticket .*run kinit/);
      assert.ok(err.message.includes(empty), `names the cache it looked in: ${err.message}`);
    });
  });

  it('names an unknown service principal (the proxy called by a name the KDC does not know)', async () => {
    const cc = await realm.kinit();
    await withKerberosEnv(realm.env(cc), async () => {
      const err = await rejectsWith(createNegotiateExchange('proxy.bbgate.test'), 'PROXY_AUTH_NEGOTIATE_UNKNOWN_SERVICE',
        /proxy proxy\.bbgate\.test .*no service principal HTTP\/proxy\.bbgate\.test.*\(GSSAPI: Server HTTP\/proxy\.bbgate\.test@BBGATE\.TEST not found in Kerberos database\)$/);
      assert.doesNotMatch(err.message, /Unspecified GSS failure/, 'MIT\'s empty preamble is dropped');
    });
  });

  it('names clock skew when the KDC\'s clock is two hours off', async () => {
    const cc = await realm.kinit();
    const skewed = await realm.skewedKdc('+2h');
    try {
      // A fresh cache holds only the TGT, so the service ticket must come from the skewed KDC.
      await withKerberosEnv({ KRB5_CONFIG: skewed.krb5Conf, KRB5CCNAME: `FILE:${cc}` }, async () => {
        await rejectsWith(createNegotiateExchange('localhost'), 'PROXY_AUTH_NEGOTIATE_CLOCK_SKEW', /clock is too far .*Clock skew too great/);
      });
    } finally {
      await skewed.stop();
    }
  });

  it('names an expired ticket', async () => {
    const cc = await realm.kinitExpired();
    await withKerberosEnv(realm.env(cc), async () => {
      await rejectsWith(createNegotiateExchange('localhost'), 'PROXY_AUTH_NEGOTIATE_EXPIRED', /ticket has expired: run kinit again.*Ticket expired/);
    });
  });

  it('names an unreachable KDC', async () => {
    const cc = await realm.kinit();
    const dead = join(realm.dir, 'dead-kdc-krb5.conf');
    writeFileSync(dead, (await import('node:fs')).readFileSync(realm.krb5Conf, 'utf8').replace(/kdc = 127\.0\.0\.1:\d+/, `kdc = 127.0.0.1:${await closedPort()}`));
    await withKerberosEnv({ KRB5_CONFIG: dead, KRB5CCNAME: `FILE:${cc}` }, async () => {
      await rejectsWith(createNegotiateExchange('localhost'), 'PROXY_AUTH_NEGOTIATE_KDC_UNREACHABLE', /no Kerberos KDC could be reached.*Cannot contact any KDC/);
    });
  });

  it('gives every Negotiate code a probe hint', () => {
    for (const code of ['UNAVAILABLE', 'NO_TICKET', 'EXPIRED', 'CLOCK_SKEW', 'UNKNOWN_SERVICE', 'KDC_UNREACHABLE', 'FAILED'] as const) {
      assert.ok(hintFor(`PROXY_AUTH_NEGOTIATE_${code}`), code);
    }
  });
});

describe('Negotiate without the native kerberos module', () => {
  // A child process whose module resolution refuses or breaks `kerberos`, as on a machine where
  // the optional package did not build: Negotiate is then unavailable, with a message, not a crash.
  const negotiate = fileURLToPath(new URL('../../src/proxy/auth/negotiate.js', import.meta.url));
  const run = (failure: 'missing' | 'broken') => new Promise<string[]>((resolve, reject) => {
    const hook = `data:text/javascript,${encodeURIComponent(`
      export async function resolve(specifier, context, next) {
        if (specifier !== 'kerberos') return next(specifier, context);
        ${failure === 'missing'
          ? `throw Object.assign(new Error("Cannot find package 'kerberos'"), { code: 'ERR_MODULE_NOT_FOUND' });`
          : `return { url: 'data:text/javascript,throw new Error("libgssapi_krb5.so.2: cannot open shared object file")', shortCircuit: true };`}
      }`)}`;
    const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hook)});`)}`;
    const script = `
      const m = await import(${JSON.stringify(negotiate)});
      console.log(String(await m.createNegotiateExchange('localhost')));
      try { await m.requireNegotiateExchange('localhost'); console.log('no error'); } catch (e) { console.log(e.code); console.log(e.message); }`;
    execFile(process.execPath, ['--import', register, '--input-type=module', '-e', script], (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout.trim().split('\n'));
    });
  });

  it('has no exchange when the package is not installed, and says how to install it', async () => {
    const [exchange, code, message] = await run('missing');
    assert.equal(exchange, 'undefined');
    assert.equal(code, 'PROXY_AUTH_NEGOTIATE_UNAVAILABLE');
    assert.match(message!, /proxy localhost is unavailable: the optional "kerberos" package is not installed \(npm install kerberos; it builds against libkrb5-dev\)/);
  });

  it('has no exchange when the package fails to load, and quotes why', async () => {
    const [exchange, code, message] = await run('broken');
    assert.equal(exchange, 'undefined');
    assert.equal(code, 'PROXY_AUTH_NEGOTIATE_UNAVAILABLE');
    assert.match(message!, /failed to load \(libgssapi_krb5\.so\.2: cannot open shared object file\); reinstall it/);
  });
});

describe('Negotiate through a real squid (negotiate_kerberos_auth)', () => {
  let realm: RunningRealm;
  let squid: RunningSquid;
  let target: Peer;

  before(async () => {
    realm = await startRealm();
    target = await startTarget('PB-GREETING\n');
    squid = await startSquid({
      allowPorts: [target.port],
      negotiate: { principal: realm.servicePrincipal, keytab: realm.serviceKeytab, krb5Conf: realm.krb5Conf },
    });
  });
  after(async () => {
    await squid?.stop();
    await target?.close();
    await realm?.stop();
  });

  /**
   * One CONNECT on its own connection, the proxy named `localhost` as its principal is
   * (HTTP/localhost). This test speaks the few lines of HTTP itself so that squid judges the
   * token alone; squid-negotiate.test.ts goes through bbgate's own CONNECT loop.
   */
  async function connectOnce(authorization?: string): Promise<{ status: number; headers: Record<string, string>; socket: Socket }> {
    const socket = connect(squid.port, 'localhost');
    socket.on('error', () => undefined);
    const lines = [`CONNECT 127.0.0.1:${target.port} HTTP/1.1`, `Host: 127.0.0.1:${target.port}`];
    if (authorization) lines.push(`Proxy-Authorization: ${authorization}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let received = Buffer.alloc(0);
    for (;;) {
      const reply = parseConnectReply(received);
      if (reply.kind === 'reply') {
        if (reply.rest.length) socket.unshift(reply.rest);
        return { status: reply.statusCode, headers: reply.headers, socket };
      }
      assert.equal(reply.kind, 'incomplete');
      const [chunk] = (await Promise.race([
        new Promise((r) => socket.once('data', (d) => r([d]))),
        new Promise((_, j) => socket.once('close', () => j(new Error(`squid closed the connection; got ${received.toString()}`)))),
      ])) as [Buffer];
      received = Buffer.concat([received, chunk]);
    }
  }

  it('offers Negotiate, and tunnels for the token bbgate makes from a kinit ticket; squid logs the Kerberos user', async () => {
    const first = await connectOnce();
    assert.equal(first.status, 407);
    assert.match(first.headers['proxy-authenticate'] ?? '', /^Negotiate\b/);
    first.socket.destroy();

    const exchange = await withKerberosEnv(realm.env(await realm.kinit()), () => createNegotiateExchange('localhost'));
    assert.ok(exchange);
    const tunnel = await connectOnce(await exchange.step(undefined));
    assert.equal(tunnel.status, 200);
    assert.equal(await readUntil(tunnel.socket, 'PB-GREETING\n'), 'PB-GREETING\n');
    tunnel.socket.end();
    await waitFor(() => squid.accessLog().includes('TCP_TUNNEL/200'), "the tunnel in squid's access log");
    assert.match(squid.accessLog(), new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT 127\\.0\\.0\\.1:${target.port} ${realm.user}@${realm.realm.replace('.', '\\.')} `));
  });

  it('is refused (407 again) for a token from another realm\'s service key: the exchange is then done, so the loop reports a rejection', async () => {
    // A second realm of the same name whose HTTP/localhost has other keys: squid cannot decrypt its ticket.
    const other = await startRealm();
    try {
      const exchange = await withKerberosEnv(other.env(await other.kinit()), () => createNegotiateExchange('localhost'));
      assert.ok(exchange);
      const refused = await connectOnce(await exchange.step(undefined));
      assert.equal(refused.status, 407);
      refused.socket.destroy();
      assert.equal(exchange.done, true);
      await rejectsWith(exchange.step(undefined), 'PROXY_AUTH_NEGOTIATE_FAILED', /the proxy localhost refused the Kerberos ticket for HTTP\/localhost/);
    } finally {
      await other.stop();
    }
  });
});
