// A real MIT Kerberos realm (Debian's krb5-kdc 1.20) on 127.0.0.1 for Negotiate tests.
//
//   const realm = await startRealm();
//   try {
//     const cc = await realm.kinit();                  // a ticket for user@BBGATE.TEST in a fresh cache
//     ... with process.env = { ...realm.env(cc) }: KRB5_CONFIG and KRB5CCNAME ...
//     ... squid accepts HTTP/localhost@BBGATE.TEST with realm.serviceKeytab ...
//   } finally { await realm.stop(); }
//
// Everything lives in a temp dir: krb5.conf (what clients read, named by KRB5_CONFIG), kdc.conf,
// the database, the stash and the keytabs. Creating the realm and starting the KDC takes ~0.3 s.
// Things that bit:
// - MIT clients look a host's realm up in DNS and canonicalise names unless told not to, so the
//   krb5.conf turns that off: HTTP@localhost must stay HTTP/localhost@BBGATE.TEST;
// - service tickets are cached in the ticket cache: a test that wants the KDC asked again (for the
//   clock-skew case) needs a fresh cache;
// - the KDC is started directly (not through the `faketime` wrapper), with libfaketime preloaded
//   when its clock must be off, so that the pid we guard is krb5kdc's own.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDaemon, waitListening, type DaemonGuard } from './daemon.js';
import { freePort } from './ports.js';
import { startProcess } from './processes.js';

export const REALM = 'BBGATE.TEST';
const LIBFAKETIME = process.env.BBGATE_LIBFAKETIME ?? '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export interface RunningRealm {
  realm: string;
  dir: string;
  /** The KDC's port (UDP and TCP) on 127.0.0.1. */
  port: number;
  /** The clients' krb5.conf. */
  krb5Conf: string;
  user: string;
  password: string;
  /** The service principal a proxy named `localhost` holds: HTTP/localhost@REALM. */
  servicePrincipal: string;
  /** Its keys, as squid's negotiate_kerberos_auth or an acceptor reads them. */
  serviceKeytab: string;
  /** The user's keys, for KRB5_CLIENT_KTNAME (a client that needs no kinit). */
  userKeytab: string;
  /** KRB5_CONFIG (and KRB5CCNAME when a cache is given) for a client of this realm. */
  env(ccache?: string): Record<string, string>;
  /** A fresh ticket cache holding a ticket for the user (kinit); returns its path. */
  kinit(): Promise<string>;
  /** A fresh ticket cache whose ticket expired a day ago (kinit run a day in the past). */
  kinitExpired(): Promise<string>;
  /** A fresh, empty cache name: no ticket at all. */
  emptyCache(): string;
  /**
   * A second KDC on the same database whose clock runs `offset` (libfaketime syntax: '+2h')
   * from ours, and a krb5.conf naming only it.
   */
  skewedKdc(offset: string): Promise<{ krb5Conf: string; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

export async function startRealm(): Promise<RunningRealm> {
  const dir = mkdtempSync(join(tmpdir(), 'bbgate-kdc-'));
  const user = 'user';
  const password = 'kerberos-user-pw';
  const servicePrincipal = `HTTP/localhost@${REALM}`;
  const serviceKeytab = join(dir, 'http.keytab');
  const userKeytab = join(dir, 'user.keytab');
  const adminEnv = { ...process.env, KRB5_CONFIG: join(dir, 'krb5.conf'), KRB5_KDC_PROFILE: join(dir, 'kdc.conf') };
  const admin = (query: string) => execFileSync('kadmin.local', ['-r', REALM, '-q', query], { env: adminEnv, stdio: 'pipe' });

  let caches = 0;
  const cache = () => join(dir, `cc${++caches}`);
  const guards: DaemonGuard[] = [];

  const startKdc = async (name: string, offset?: string): Promise<{ port: number; krb5Conf: string; guard: DaemonGuard }> => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      writeFileSync(join(dir, `${name}.conf`), kdcConf(dir, port, name));
      const krb5Conf = join(dir, `${name}-krb5.conf`);
      writeFileSync(krb5Conf, clientConf(port));
      const env = { ...adminEnv, KRB5_KDC_PROFILE: join(dir, `${name}.conf`), ...(offset ? { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset } : {}) };
      const kdc = startProcess('krb5kdc', ['-n', '-r', REALM], { env });
      // The guard removes the realm's directory only for the main KDC; a skewed one shares it.
      const guard = guardDaemon(kdc, 'krb5kdc', name === 'kdc' ? dir : join(dir, 'nothing'));
      try {
        await waitListening('krb5kdc', kdc, [port], () => `${kdc.stderr()}\n${readIfThere(join(dir, `${name}.log`))}`);
        return { port, krb5Conf, guard };
      } catch (err) {
        await guard.stop();
        if (attempt >= 3 || !/Address already in use/i.test(String(err))) throw err;
      }
    }
  };

  // The realm's database: the KDC needs it before it starts.
  writeFileSync(join(dir, 'kdc.conf'), kdcConf(dir, 0, 'kdc'));
  writeFileSync(join(dir, 'krb5.conf'), clientConf(0));
  execFileSync('kdb5_util', ['create', '-s', '-r', REALM, '-P', 'bbgate-master-key'], { env: adminEnv, stdio: 'pipe' });
  admin(`addprinc -pw ${password} ${user}`);
  admin(`addprinc -randkey ${servicePrincipal}`);
  admin(`ktadd -k ${serviceKeytab} ${servicePrincipal}`);
  admin(`ktadd -k ${userKeytab} -norandkey ${user}`);

  const main = await startKdc('kdc');
  guards.push(main.guard);
  const krb5Conf = join(dir, 'krb5.conf');
  writeFileSync(krb5Conf, clientConf(main.port));
  const env = (ccache?: string) => ({ KRB5_CONFIG: krb5Conf, ...(ccache ? { KRB5CCNAME: `FILE:${ccache}` } : {}) });

  const kinit = (conf: string, ccache: string, offset?: string) => {
    // The password goes on stdin, never in argv.
    const timeEnv = offset ? { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset } : {};
    execFileSync('kinit', [user], { input: `${password}\n`, env: { ...process.env, KRB5_CONFIG: conf, KRB5CCNAME: `FILE:${ccache}`, ...timeEnv }, stdio: 'pipe' });
    return ccache;
  };

  let skewed = 0;
  const skewedKdc = async (offset: string) => {
    const kdc = await startKdc(`kdc-skewed${++skewed}`, offset);
    guards.push(kdc.guard);
    return { krb5Conf: kdc.krb5Conf, stop: kdc.guard.stop };
  };

  return {
    realm: REALM,
    dir,
    port: main.port,
    krb5Conf,
    user,
    password,
    servicePrincipal,
    serviceKeytab,
    userKeytab,
    env,
    kinit: async () => kinit(krb5Conf, cache()),
    async kinitExpired() {
      // Both the KDC and kinit a day in the past: the ticket's ten hours ended fourteen hours ago.
      const past = await skewedKdc('-1d');
      try {
        return kinit(past.krb5Conf, cache(), '-1d');
      } finally {
        await past.stop();
      }
    },
    emptyCache: cache,
    skewedKdc,
    // The main KDC's guard removes the directory, so it goes last.
    stop: async () => {
      for (const guard of guards.reverse()) await guard.stop();
    },
  };
}

function kdcConf(dir: string, port: number, name: string): string {
  return `[kdcdefaults]
  kdc_ports = ${port}
  kdc_tcp_ports = ${port}
[realms]
  ${REALM} = {
    database_name = ${dir}/principal
    key_stash_file = ${dir}/stash
    acl_file = ${dir}/kadm5.acl
    max_life = 10h
  }
[logging]
  kdc = FILE:${dir}/${name}.log
`;
}

function clientConf(port: number): string {
  // TCP only (udp_preference_limit 1): no lost datagram to wait out. No DNS for realms, KDCs or
  // host names, so that nothing leaves loopback and HTTP@localhost is HTTP/localhost.
  return `[libdefaults]
  default_realm = ${REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  ${REALM} = {
    kdc = 127.0.0.1:${port}
  }
[domain_realm]
  localhost = ${REALM}
  .bbgate.test = ${REALM}
`;
}

function readIfThere(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
