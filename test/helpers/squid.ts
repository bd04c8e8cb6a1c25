// A real squid (Debian's 5.7) on 127.0.0.1 for proxy tests.
//
//   const squid = await startSquid({ auth: { users: { w: 'pw' } }, allowPorts: [masterPort], tls: true });
//   try { ... parseProxyString(`http://w:pw@127.0.0.1:${squid.port}`) ... } finally { await squid.stop(); }
//
// Each squid gets a temp dir with its config, pid file, passwd file, certificate and logs; no disk
// cache. Starting takes ~70 ms (stop ~10 ms). It is killed by stop(), on test-process exit, and by
// a watchdog shell if the test process itself is SIGKILLed. Things that bit:
// - as root, squid switches to cache_effective_user `proxy` before opening its logs and starting
//   the auth helper, so the temp dir and its files are chowned to that user;
// - squid 5 predefines the `localhost` ACL (redefining it only warns) and has dropped
//   `dns_v4_first` (an error at start-up);
// - Debian builds squid with GnuTLS, which https_port handles with tls-cert=/tls-key=;
// - the readiness probes leave "error:transaction-end-before-headers" lines in access.log.
import { execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDaemon, waitListening } from './daemon.js';
import { freePort } from './ports.js';
import { startProcess } from './processes.js';

const SQUID = process.env.BBGATE_SQUID ?? '/usr/sbin/squid';
const HELPERS = process.env.BBGATE_SQUID_HELPERS ?? '/usr/lib/squid';

export interface SquidOptions {
  /** Require Basic proxy authentication (checked by squid's basic_ncsa_auth) for these users. */
  auth?: { users: Record<string, string> };
  /**
   * Require NTLM, through squid's ntlm_fake_auth (which checks the message flow, not the
   * password, and logs DOMAIN\\user); with `basic` too, squid offers both.
   */
  ntlm?: boolean;
  /** Ports CONNECT may reach. Default [443], like squid's stock SSL_ports. */
  allowPorts?: number[] | 'any';
  /** Ports CONNECT may never reach, whatever allowPorts says. */
  denyPorts?: number[];
  /** Also listen with TLS (https_port), with a fresh self-signed certificate for 127.0.0.1 and localhost. */
  tls?: boolean;
  /** Listen on this port (to bring a proxy back where it was) instead of a free one. */
  port?: number;
  /**
   * Names squid resolves from its own hosts file (name → address), so that a test can ask for
   * a master by a name that is not loopback to the client (bbgate never sends loopback
   * destinations through an environment proxy) yet lands on 127.0.0.1. E.g. HOST_ALIAS.
   */
  hosts?: Record<string, string>;
  /**
   * Require Negotiate (Kerberos) authentication, checked by squid's negotiate_kerberos_auth with
   * this service principal (HTTP/localhost@REALM: clients must then name the proxy `localhost`),
   * its keytab and the realm's krb5.conf (both copied into squid's dir, which its user can read).
   */
  negotiate?: { principal: string; keytab: string; krb5Conf: string };
}

/** A name for 127.0.0.1 that only a squid started with `hosts: { [HOST_ALIAS]: '127.0.0.1' }` resolves. */
export const HOST_ALIAS = 'master.bbgate.test';

export interface RunningSquid {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** With `tls`: the https_port, its URL, and the certificate (PEM) to trust for it. */
  tlsPort?: number;
  tlsUrl?: string;
  ca?: string;
  pid: number;
  /** squid's access.log: one line per finished transaction (a tunnel is logged when it closes). */
  accessLog(): string;
  cacheLog(): string;
  /** Kills squid (SIGKILL: a crash, as far as tunnels through it can tell) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export async function startSquid(options: SquidOptions = {}): Promise<RunningSquid> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      // The free port we picked can be taken before squid binds it.
      if (attempt >= 3 || !/Address already in use|Cannot open HTTP Port|cannot bind/i.test(String(err))) throw err;
    }
  }
}

async function startOnce(options: SquidOptions): Promise<RunningSquid> {
  const dir = mkdtempSync(join(tmpdir(), 'bbgate-squid-'));
  const port = options.port ?? (await freePort());
  const tlsPort = options.tls ? await freePort() : undefined;
  if (options.auth) writeFileSync(join(dir, 'passwd'), passwdFile(options.auth.users));
  if (options.tls) makeCertificate(dir);
  if (options.hosts) writeFileSync(join(dir, 'hosts'), Object.entries(options.hosts).map(([name, address]) => `${address} ${name}\n`).join(''));
  if (options.negotiate) {
    copyFileSync(options.negotiate.keytab, join(dir, 'negotiate.keytab'));
    copyFileSync(options.negotiate.krb5Conf, join(dir, 'krb5.conf'));
  }
  writeFileSync(join(dir, 'squid.conf'), config(dir, port, tlsPort, options));
  // As root, squid drops to cache_effective_user (proxy) before it opens its logs and runs the
  // auth helper, so that user must own the directory and read the files in it.
  const user = process.getuid?.() === 0 ? effectiveUser() : undefined;
  if (user) for (const f of ['', ...readdirSync(dir)]) chownSync(join(dir, f), user.uid, user.gid);

  const env = options.negotiate ? { env: { ...process.env, KRB5_CONFIG: join(dir, 'krb5.conf'), KRB5RCACHETYPE: 'none' } } : {};
  const squid = startProcess(SQUID, ['-N', '-f', join(dir, 'squid.conf')], { cwd: dir, ...env });
  const pid = squid.child.pid!;
  // SIGKILL, as SIGTERM takes squid ~1.6 s even with shutdown_lifetime 0; access.log is written as
  // each transaction ends, so nothing is lost, and the auth helpers exit on EOF.
  const guard = guardDaemon(squid, 'squid', dir);
  const log = () => `cache.log:\n${readIfThere(join(dir, 'cache.log')).slice(-3000)}\nstderr:\n${squid.stderr().slice(-3000)}`;
  try {
    await waitListening('squid', squid, [port, ...(tlsPort ? [tlsPort] : [])], log);
  } catch (err) {
    await guard.stop();
    throw err;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    ...(tlsPort ? { tlsPort, tlsUrl: `https://127.0.0.1:${tlsPort}`, ca: readFileSync(join(dir, 'cert.pem'), 'utf8') } : {}),
    pid,
    accessLog: () => readIfThere(join(dir, 'access.log')),
    cacheLog: () => readIfThere(join(dir, 'cache.log')),
    stop: guard.stop,
  };
}

function config(dir: string, port: number, tlsPort: number | undefined, options: SquidOptions): string {
  const allow = options.allowPorts ?? [443];
  const lines = [
    `http_port 127.0.0.1:${port}`,
    tlsPort ? `https_port 127.0.0.1:${tlsPort} tls-cert=${dir}/cert.pem tls-key=${dir}/key.pem` : '',
    `pid_filename ${dir}/squid.pid`,
    options.hosts ? `hosts_file ${dir}/hosts` : '',
    process.getuid?.() === 0 ? 'cache_effective_user proxy' : '',
    // Start-up speed and hermeticity: no disk cache, no pinger, no DNS beyond loopback, no
    // grace period on shutdown.
    'cache deny all',
    'pinger_enable off',
    'dns_nameservers 127.0.0.1',
    'shutdown_lifetime 0 seconds',
    `access_log stdio:${dir}/access.log`,
    `cache_log ${dir}/cache.log`,
    'logfile_rotate 0',
    // squid 5 predefines `localhost`; these names are ours.
    'acl bbgate_clients src 127.0.0.1/32 ::1',
    'acl bbgate_connect method CONNECT',
  ];
  if (options.denyPorts?.length) {
    lines.push(`acl bbgate_denied port ${options.denyPorts.join(' ')}`, 'http_access deny bbgate_connect bbgate_denied');
  }
  if (allow !== 'any') {
    lines.push(`acl bbgate_allowed port ${allow.join(' ')}`, 'http_access deny bbgate_connect !bbgate_allowed');
  }
  if (options.negotiate) {
    // Declared first, so that squid offers Negotiate before NTLM and Basic as corporate proxies do.
    lines.push(
      `auth_param negotiate program ${HELPERS}/negotiate_kerberos_auth -k ${dir}/negotiate.keytab -s ${options.negotiate.principal}`,
      'auth_param negotiate children 2 startup=1',
      'auth_param negotiate keep_alive on',
    );
  }
  if (options.ntlm) {
    // Before Basic, so squid offers NTLM before Basic.
    lines.push(`auth_param ntlm program ${HELPERS}/ntlm_fake_auth`, 'auth_param ntlm children 2 startup=1', 'auth_param ntlm keep_alive on');
  }
  if (options.auth) {
    lines.push(
      `auth_param basic program ${HELPERS}/basic_ncsa_auth ${dir}/passwd`,
      'auth_param basic children 2 startup=1',
      'auth_param basic realm bbgate-test-squid',
    );
  }
  if (options.auth || options.ntlm || options.negotiate) {
    lines.push('acl bbgate_authed proxy_auth REQUIRED', 'http_access allow bbgate_clients bbgate_authed');
  } else {
    lines.push('http_access allow bbgate_clients');
  }
  lines.push('http_access deny all');
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

/** user:$apr1$... lines, hashed by one `openssl passwd` run (passwords on stdin, not in argv). */
function passwdFile(users: Record<string, string>): string {
  const names = Object.keys(users);
  if (names.some((n) => /[:\n]/.test(n)) || Object.values(users).some((p) => p.includes('\n'))) {
    throw new Error('squid fixture: user names cannot contain ":" or newlines, passwords cannot contain newlines');
  }
  const hashes = execFileSync('openssl', ['passwd', '-apr1', '-stdin'], { input: names.map((n) => users[n]).join('\n') + '\n' })
    .toString()
    .trim()
    .split('\n');
  return names.map((n, i) => `${n}:${hashes[i]}\n`).join('');
}

function makeCertificate(dir: string): void {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
    '-subj', '/CN=bbgate test squid', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
}

function effectiveUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'proxy']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}


function readIfThere(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
