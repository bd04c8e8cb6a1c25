import { EXIT_INTERNAL_ERROR, type ErrorCode } from '../errors.js';

/**
 * Probe exit statuses by failure class. Fixed for every later step kind:
 * 0 ok, 1 usage or unparseable input, 2 network, 3 proxy, 4 TLS,
 * 5 authentication, 6 not a PB service / protocol error; 70 (EX_SOFTWARE) a bug in bbgate.
 */
export function exitStatusFor(code: ErrorCode | undefined): number {
  if (code === undefined) return 0;
  if (code === 'INTERNAL_STALL') return EXIT_INTERNAL_ERROR;
  if (code === 'USAGE' || code === 'ENDPOINT_SYNTAX' || code === 'PROXY_SYNTAX' || code === 'PROXY_CREDENTIALS' || code.startsWith('TAC_')) return 1;
  if (code.startsWith('NET_') || code === 'RELAY_UPSTREAM') return 2;
  if (code.startsWith('PROXY_')) return 3;
  if (code.startsWith('TLS_')) return 4;
  if (code === 'PB_UNAUTHORIZED' || code === 'MSGPACK_UNAUTHORIZED' || code === 'PB_DUPLICATE_WORKER' || code === 'RELAY_DENIED' || code === 'RELAY_LIMIT') return 5;
  // The rest: PB_*, MSGPACK_*, BANANA_*, JELLY_*, and WS_* (something answers, but not as a WebSocket
  // listener carrying PB: the same class as PB_NOT_PB).
  return 6;
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  ENDPOINT_SYNTAX: 'write the connection string as tcp:HOST:PORT (or tcp:host=HOST:port=PORT); escape a ":" inside a value as "\\:"; a relay\'s WebSocket listener is ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH',
  NET_DNS: 'check the host name for typos, and that this machine\'s DNS resolves it (getent hosts HOST)',
  NET_REFUSED: 'nothing listens there: check that the master runs and which port its c[\'protocols\'][\'pb\'][\'port\'] names',
  NET_TIMEOUT: 'nothing answered: a firewall is probably dropping the packets, or the host is down; check firewall rules for this port on both sides',
  NET_UNREACHABLE: 'there is no route to that address: check the address and this machine\'s network',
  NET_RESET: 'the connection was cut: a firewall or middlebox may be resetting it',
  PB_NOT_PB: 'something answers on that port, but not Buildbot\'s PB protocol: use the worker port (c[\'protocols\'][\'pb\'][\'port\'], 9989 by default), not the web UI port',
  PB_DIALECT: 'the peer speaks a PB dialect bbgate does not know: check that it is a Buildbot master',
  PB_VERSION: 'the peer speaks another PB version: check that it is a Buildbot master',
  PB_PROTOCOL: 'the peer broke the PB protocol: check that it is a Buildbot master, and report this with the probe\'s --json output',
  PB_UNAUTHORIZED: 'the master knows no worker with this name and password: compare them with the worker.Worker(NAME, PASSWORD) entry in master.cfg (both are case-sensitive); the master does not say which of the two is wrong',
  MSGPACK_UNAUTHORIZED: 'the master answered the WebSocket upgrade with 401: it knows no worker with this name and password; compare them with the worker.Worker(NAME, PASSWORD) entry in master.cfg (both are case-sensitive)',
  MSGPACK_PROTOCOL: "something answered the upgrade, but not with msgpack_experimental_v7: check that the port is the master's c['protocols']['msgpack_experimental_v7'] port",
  MSGPACK_CONNECTION_LOST: "the master closed the WebSocket: its twistd.log says why (a worker of this name already connected, or an attach that failed)",
  MSGPACK_REMOTE_ERROR: "the master failed a request with an error of its own: its twistd.log has the traceback",
  PB_DUPLICATE_WORKER: 'a worker with this name is connected to the master right now: stop it first, or probe with another worker\'s name',
  PB_NOT_BUILDBOT: 'this port runs some other PB service: check the port number against the master\'s c[\'protocols\'][\'pb\'][\'port\']',
  PB_REMOTE_ERROR: 'the master failed the login with an error of its own: its twistd.log has the traceback',
  PB_CONNECTION_LOST: 'the master closed the connection: its twistd.log says why',
  NET_KEEPALIVE_TIMEOUT: 'the connection went silent: a NAT or firewall probably dropped it; use a keepalive shorter than its idle timeout',
  PROXY_SYNTAX: 'write the proxy as tcp:HOST:PORT, http://[USER:PASSWORD@]HOST:PORT or https://[USER:PASSWORD@]HOST:PORT',
  PROXY_CREDENTIALS: 'set the proxy password in BBGATE_PROXY_PASSWORD_FILE (a file whose first line is the password, readable by this user) or BBGATE_PROXY_PASSWORD, not both; BBGATE_PROXY_USER (DOMAIN\\user or user@DOMAIN) for proxies whose string names no user; BBGATE_PROXY_HASH=nt|ntlmv2 only with a hash from `bbgate ntlm-hash`',
  PROXY_DNS: 'the proxy\'s own name does not resolve: check the proxy setting (flag or HTTPS_PROXY/ALL_PROXY)',
  PROXY_REFUSED: 'nothing listens at the proxy\'s address: check the proxy host and port',
  PROXY_UNREACHABLE: 'the proxy cannot be reached from here: check the proxy address and this machine\'s network',
  PROXY_TIMEOUT: 'the proxy did not answer in time: check the proxy address, or whether a firewall drops the packets',
  PROXY_CLOSED: 'the proxy hung up before answering: it may not be an HTTP proxy, or it may refuse this client',
  PROXY_TLS: 'TLS to the proxy itself failed: check whether the proxy really is https://, and that its certificate is trusted',
  PROXY_NOT_HTTP: 'that address is not an HTTP proxy (or is one that needs https://): check the proxy setting',
  PROXY_AUTH_REQUIRED: 'give the proxy credentials in the URL: http://USER:PASSWORD@HOST:PORT, for NTLM http://DOMAIN%5CUSER:PASSWORD@HOST:PORT (or a hash from `bbgate ntlm-hash` with #hash=nt); for Negotiate, get a Kerberos ticket with kinit',
  PROXY_AUTH_FAILED: 'the proxy refused the credentials of the scheme named: for NTLM check the domain (DOMAIN%5CUSER or USER@DOMAIN), the user name and the password or hash; for Basic the user name and password; an account may also be locked or its password expired',
  PROXY_AUTH_UNSUPPORTED: 'the proxy offers no scheme the given credentials can serve: drop or change #auth= (basic, ntlm, negotiate), give a plain password instead of a #hash= for a Basic-only proxy, or run kinit for a Negotiate-only one',
  PROXY_AUTH_PROTOCOL: 'the proxy\'s side of the authentication handshake was malformed: something between bbgate and the proxy may be rewriting headers; force another scheme with #auth=basic, or report this with the probe\'s --json output',
  PROXY_FORBIDDEN: 'the proxy does not allow tunnels to this port: ask its administrators to allow CONNECT to the master\'s port',
  PROXY_BAD_GATEWAY: 'the proxy could not reach the master: check the master address from the proxy\'s side (its firewall, its DNS)',
  PROXY_ERROR: 'the proxy refused the tunnel: its status line says why',
  // PAC files (pac+file:, pac+http(s):)
  PROXY_PAC_LOAD: 'bbgate could not read or download the PAC file: check the path (pac+file:///ABSOLUTE/PATH, readable by the worker\'s user) or the URL (open it with curl from this machine: the PAC file is fetched directly, never through a proxy)',
  PROXY_PAC_EVAL: 'the PAC file is not valid JavaScript, or FindProxyForURL failed or ran too long: fix the line named, and check the file with the same URL in a browser\'s proxy settings',
  PROXY_PAC_ANSWER: 'FindProxyForURL must return entries such as "PROXY proxy.corp:3128; DIRECT" (or HTTPS HOST:PORT); bbgate does not speak SOCKS: make the PAC return an HTTP proxy for the master\'s host, or give that proxy with --proxy-connection-string',
  PROXY_ALL_FAILED: 'no proxy (or DIRECT) the PAC file named could be reached: check each failure listed; the PAC file may name proxies of another network (a VPN that is down), so ask its administrators which proxy serves this machine',
  // Negotiate (Kerberos) proxy authentication
  PROXY_AUTH_NEGOTIATE_UNAVAILABLE: 'bbgate\'s Kerberos support (the optional "kerberos" npm package) is not installed or did not load: install libkrb5-dev, make and g++, then reinstall bbgate; NTLM and Basic work without it',
  PROXY_AUTH_NEGOTIATE_NO_TICKET: 'get a Kerberos ticket first: kinit USER@REALM (klist shows it), or point KRB5_CLIENT_KTNAME at a keytab for an unattended worker',
  PROXY_AUTH_NEGOTIATE_EXPIRED: 'the Kerberos ticket has expired: run kinit again; for a long-running worker use a keytab (KRB5_CLIENT_KTNAME), which krb5 renews from on its own',
  PROXY_AUTH_NEGOTIATE_CLOCK_SKEW: 'this machine\'s clock differs from the KDC\'s by more than Kerberos allows (5 minutes by default): synchronise it (NTP), then kinit again',
  PROXY_AUTH_NEGOTIATE_UNKNOWN_SERVICE: 'the KDC has no HTTP/ principal for the proxy\'s name: use the name the proxy is registered under (usually its fully qualified host name, as in its Kerberos keytab), not an alias or IP address',
  PROXY_AUTH_NEGOTIATE_KDC_UNREACHABLE: 'no KDC answered: check the realm\'s kdc entries in krb5.conf (or KRB5_CONFIG) and that this machine can reach them (VPN, firewall)',
  PROXY_AUTH_NEGOTIATE_FAILED: 'Kerberos failed as the GSSAPI message says: check klist, krb5.conf, and the proxy\'s name against its service principal',
  TLS_NO_TRUST_ROOTS: 'trustRoots= names a directory of .pem files, or (bbgate only) one PEM file: put the CA certificate(s) that signed the master\'s certificate there, in PEM (-----BEGIN CERTIFICATE-----)',
  TLS_CLIENT_CERT: 'check the certificate= and privateKey= files: they must be readable PEM, and the key must match the certificate',
  TLS_NOT_TLS: 'the port answers without TLS: use tcp: instead of tls:, or the master\'s TLS port',
  TLS_HANDSHAKE: 'the TLS handshake failed: the master may require a client certificate (certificate=, privateKey=) or a newer TLS version',
  TLS_UNTRUSTED: 'add the CA that issued the master\'s certificate to the trustRoots directory (or fix the master\'s certificate chain)',
  TLS_SELF_SIGNED: 'the master uses a self-signed certificate: put that certificate in the trustRoots directory (or file) to trust exactly it, or pin it with fingerprint= (the message gives it; compare it with the master\'s own: openssl x509 -in CERT -noout -fingerprint -sha256)',
  TLS_EXPIRED: 'the master\'s certificate has expired: renew it on the master (and check this machine\'s clock)',
  TLS_NOT_YET_VALID: 'the master\'s certificate is not valid yet: check the clocks on both machines',
  TLS_HOSTNAME: 'connect with a name the certificate lists, or reissue the certificate with this name',
  TLS_FINGERPRINT: 'the server presented another certificate than the one fingerprint= pins: if the master\'s certificate was renewed, compare the new one\'s fingerprint with the master\'s own (openssl x509 -in CERT -noout -fingerprint -sha256 on the master) and update fingerprint=; if it was not, something else answers in the master\'s place',
  RELAY_DENIED: 'a bbgate relay refused this worker name: it is not on the relay\'s --allow rules, not from this address, or not a name in this worker\'s client certificate (certNames=1); the relay tells only its log which, so ask its administrator',
  RELAY_LIMIT: 'the relay already carries as many connections for this worker as it allows: stop the other copy of this worker, or wait for the relay to notice its old connection is dead',
  RELAY_UPSTREAM: 'the relay is up but cannot reach the master: the master may be down; the relay\'s log names the error',
  PTY_UNAVAILABLE: 'a step asked for usePTY=True and no pseudo-terminal could be made: mount devpts on /dev/pts (with /dev/ptmx) where the worker runs, and install bbgate with npm without --omit=optional so that @lydell/node-pty\'s binary for this platform is there; or drop usePTY from the step',
  INTERNAL_STALL: 'this is a bug in bbgate, not in your set-up: please report it with the probe\'s --json output; running the probe again usually gets past it',
  WS_UPGRADE_REFUSED:
    'the server is HTTP but has no WebSocket listener there: check the path (the relay\'s listener path, such as /pb), and that the port is the relay\'s WebSocket listener rather than a web server in front of it; a proxy or gateway that does not pass Upgrade requests answers like this too: use wss://, which it cannot look into',
  WS_PROTOCOL:
    'the port answers, but not as a WebSocket server: check that it is the relay\'s WebSocket listener (a master\'s PB port wants tcp:HOST:PORT); a proxy that does not allow Upgrade can also break the handshake: use wss://',
};

export function hintFor(code: ErrorCode): string | undefined {
  if (HINTS[code]) return HINTS[code];
  if (code.startsWith('BANANA_') || code.startsWith('JELLY_')) return HINTS.PB_PROTOCOL;
  return undefined;
}
