#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { EXIT_INTERNAL_ERROR } from '../errors.js';
import { stallMessage, watchLiveness } from '../liveness.js';
import { VERSION } from '../version.js';
import { exitStatusFor } from '../probe/diagnosis.js';
import { probe } from '../probe/probe.js';
import { formatReport } from '../probe/report.js';
import { masterConnectionString, parseMasterAddress } from '../address/master-address.js';

const USAGE = `Usage: bbgate <command> [options]

Commands:
  probe CONNECTION_STRING [--proxy-connection-string P] [--name NAME --password PASSWORD] [--json]
        Walk proxy → DNS → TCP → CONNECT → TLS → PB → login → keepalive to a Buildbot master and name
        the layer that fails (--protocol msgpack_experimental_v7: … → TLS → websocket → msgpack → login). Exit status: 0 ok, 1 usage or unparseable input,
        2 network, 3 proxy, 4 TLS, 5 authentication, 6 not a PB service / protocol,
        70 a bug in bbgate.
  create-worker [options] BASEDIR MASTER[:PORT] WORKERNAME PASSWORD
        Create a worker directory with its buildbot.tac, as buildbot-worker create-worker does.
  start [--quiet] [--nodaemon] [BASEDIR]
        Start the worker in BASEDIR (default: here) and wait until the master has attached it.
  stop [BASEDIR]
        Stop it (SIGTERM, then up to 10 s).
  restart [--quiet] [--nodaemon] [BASEDIR]
        Stop it if it runs, then start it.
  relay [--config relay.json] --listen ADDR --upstream CONN --allow RULE [options]
        Run a PB-aware relay (on a DMZ host) that admits workers by name and
        forwards them to the master.
  ntlm-hash [--domain DOMAIN] USER
        Print the NT and NTLMv2 hashes of a proxy password (read from BBGATE_PROXY_PASSWORD or
        stdin), for a proxy string's #hash=nt or #hash=ntlmv2 in place of the password.

Options:
  --help, -h     this text (also: bbgate COMMAND --help)
  --version      print bbgate's version
`;

const PROBE_USAGE = `Usage: bbgate probe CONNECTION_STRING [options]
       bbgate probe --use-tls MASTER[:PORT] [options]
       bbgate probe --basedir DIR [options]

  CONNECTION_STRING   where the master's worker port is, in Twisted's syntax:
                        tcp:HOST:PORT[:timeout=S][:bindAddress=IP]
                        tls:HOST:PORT[:trustRoots=DIR][:certificate=PEM][:privateKey=PEM][:timeout=S]
                        ssl:host=HOST:port=PORT[:caCertsDir=DIR][:hostname=NAME][:certKey=PEM][:privateKey=PEM]
                      escape ":" inside a value as "\\:", e.g. tcp:host=fd00\\:\\:1:port=9989
                      or, for a relay's WebSocket listener (through HTTP-only proxies), a URL:
                        ws://HOST[:PORT]/PATH[#timeout=S&bindAddress=IP]
                        wss://HOST[:PORT]/PATH[#trustRoots=DIR&certificate=PEM&privateKey=PEM&timeout=S]
                      (ports 80 and 443 by default, IPv6 as ws://[::1]:8080/pb; bbgate's
                      options go after "#" and are never sent; wss:// is always verified)

Options:
  --basedir DIR        probe exactly what the worker in DIR would do: its buildbot.tac's
                       connection, proxy, name and password (bbgate's or buildbot-worker's tac);
                       flags given as well take precedence
  --use-tls            the argument is MASTER[:PORT] (port 9989 by default), reached over TLS
                       verified against the platform's CAs, as buildbot-worker --use-tls does
  --proxy-connection-string P
                       tunnel through this HTTP proxy with CONNECT: tcp:HOST:PORT,
                       http://[USER:PASSWORD@]HOST:PORT or https://[USER:PASSWORD@]HOST:PORT,
                       or the proxies a PAC file names: pac+file:///PATH, pac+http(s)://URL
                       (without it, HTTPS_PROXY / ALL_PROXY and NO_PROXY apply)
  --no-env-proxy       ignore HTTPS_PROXY, ALL_PROXY and NO_PROXY
  --protocol P         pb (default, or the tac's) or msgpack_experimental_v7: then the string
                       names the master's msgpack port, and the steps after TLS are
                       websocket (the upgrade, with the name and password) → msgpack (the
                       master's first request) → login (worker info, attach) → keepalive
  --name NAME          log in as this worker (without it the probe stops after the PB greeting)
  --password PASSWORD  the worker's password (or set BBGATE_PASSWORD, which keeps it out of ps)
  --timeout S          the longest any step may take, the connect included (default 10)
  --verbose, -v        also show each step's particulars (every certificate in the TLS chain)
  --json               print {"ok": bool, "steps": [{"step","ok","ms","code","message","hint"}]}

A successful login attaches the probe as that worker for a moment, as any login
would: the master records the probe's worker info (version "bbgate-probe …")
until the real worker next connects. If the real worker is connected, the
master refuses the probe (PB_DUPLICATE_WORKER) after asking the real worker
whether it is still alive; the real worker is not disconnected.

Exit status: 0 ok, 1 usage or unparseable input, 2 network (DNS, refused,
timeout, unreachable), 3 proxy, 4 TLS, 5 authentication, 6 not a PB service or
protocol error, 70 a bug in bbgate (INTERNAL_STALL: please report it).
`;

async function runProbe(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      password: { type: 'string' },
      'proxy-connection-string': { type: 'string' },
      'no-env-proxy': { type: 'boolean' },
      'use-tls': { type: 'boolean' },
      basedir: { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
      timeout: { type: 'string' },
      protocol: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(PROBE_USAGE);
    return 0;
  }
  if (positionals.length !== (values.basedir === undefined ? 1 : 0)) {
    return usage('probe takes exactly one CONNECTION_STRING, or --basedir DIR', PROBE_USAGE);
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) return usage(`--timeout must be a positive number of seconds, not "${values.timeout}"`, PROBE_USAGE);
  const password = values.password ?? process.env.BBGATE_PASSWORD;
  if (values.name !== undefined && password === undefined) return usage('--name needs --password (or BBGATE_PASSWORD)', PROBE_USAGE);
  let connection = positionals[0];
  if (values['use-tls'] && connection !== undefined) {
    try {
      const master = parseMasterAddress(connection);
      connection = masterConnectionString(master.host, master.port, true);
    } catch (err) {
      return usage((err as Error).message, PROBE_USAGE);
    }
  }
  const protocol = values.protocol;
  if (protocol !== undefined && protocol !== 'pb' && protocol !== 'msgpack_experimental_v7') return usage(`--protocol must be pb or msgpack_experimental_v7, not "${protocol}"`, PROBE_USAGE);
  const report = await probe({
    ...(protocol !== undefined ? { protocol } : {}),
    ...(connection !== undefined ? { connection } : {}),
    ...(values.basedir !== undefined ? { basedir: values.basedir } : {}),
    ...(values['proxy-connection-string'] !== undefined ? { proxy: values['proxy-connection-string'] } : {}),
    ...(values['no-env-proxy'] ? { environmentProxy: false } : {}),
    ...(values.name !== undefined ? { name: values.name, password } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
  });
  process.stdout.write(values.json ? JSON.stringify(report) + '\n' : formatReport(report, values.verbose));
  return exitStatusFor(report.steps.find((s) => !s.ok)?.code);
}

function usage(problem: string, text = USAGE): number {
  process.stderr.write(`bbgate: ${problem}\n\n${text}`);
  return 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'probe':
      return runProbe(rest);
    // Loaded on demand: the worker's modules are not needed to probe.
    case 'create-worker':
      return (await import('./create-worker.js')).runCreateWorker(rest);
    case 'start':
      return (await import('./start.js')).runStart(rest);
    case 'stop':
      return (await import('./stop.js')).runStop(rest);
    case 'restart':
      return (await import('./restart.js')).runRestart(rest);
    case 'relay':
      return (await import('./relay.js')).runRelay(rest);
    case 'ntlm-hash':
      return (await import('./ntlm-hash.js')).runNtlmHash(rest);
    case '--version':
      process.stdout.write(`bbgate ${VERSION}\n`);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      return usage(`unknown command "${command}"`);
  }
}

// No command may end in silence with work pending: if the event loop drains while main()
// has not settled (and no step of it reported the stall itself), say so and fail.
let settled = false;
watchLiveness(
  () => (settled ? undefined : `bbgate ${process.argv[2] ?? ''}`.trim() + ' to finish'),
  (wait) => {
    process.stderr.write(`bbgate: ${stallMessage(wait)}\n`);
    process.exitCode = EXIT_INTERNAL_ERROR;
  },
  { lastResort: true },
);

main(process.argv.slice(2)).finally(() => (settled = true)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    // parseArgs rejects unknown or malformed options with a TypeError carrying ERR_PARSE_ARGS_*.
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('ERR_PARSE_ARGS')) {
      process.exitCode = usage((err as Error).message);
      return;
    }
    process.stderr.write(`bbgate: internal error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT_INTERNAL_ERROR;
  },
);
