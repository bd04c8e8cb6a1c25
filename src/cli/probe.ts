// `bbgate probe`: the command line around probe() (../probe/probe.ts).
import { connectionStringsFor } from '../address/client-string.js';
import { MAX_TIMEOUT_SECONDS } from '../address/fields.js';
import { masterConnectionString, parseMasterAddress } from '../address/master-address.js';
import { BbgateError } from '../errors.js';
import { exitStatusFor } from '../probe/diagnosis.js';
import { probe, type ProbeOptions } from '../probe/probe.js';
import { liveReport } from '../probe/live-report.js';
import { parseCommand, report, type ParsedCommand } from './common.js';

export const PROBE_USAGE = `Usage: bbgate probe CONNECTION_STRING [options]
       bbgate probe --use-tls MASTER[:PORT] [options]
       bbgate probe --basedir DIR [options]

  CONNECTION_STRING   where the master's worker port is, in Twisted's syntax:
                        tcp:HOST:PORT[:timeout=S][:bindAddress=IP]
                        tls:HOST:PORT[:trustRoots=DIR|PEM][:fingerprint=SHA256][:certificate=PEM][:privateKey=PEM][:timeout=S]
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

const OPTIONS = {
  name: { type: 'string' },
  password: { type: 'string' },
  'proxy-connection-string': { type: 'string' },
  'no-env-proxy': { type: 'boolean' },
  protocol: { type: 'string' },
  'use-tls': { type: 'boolean' },
  basedir: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runProbe(argv: string[]): Promise<number> {
  let values: ParsedCommand<typeof OPTIONS>['values'];
  let options: ProbeOptions;
  try {
    let positionals: string[];
    ({ values, positionals } = parseCommand('probe', argv, OPTIONS));
    if (values.help) {
      process.stdout.write(PROBE_USAGE);
      return 0;
    }
    options = probeOptions(values, positionals);
  } catch (err) {
    return report(err, 'probe');
  }
  // Each step is printed as it finishes (../probe/live-report.ts); --json prints the whole report at the end.
  const result = await probe({ ...options, ...(values.json ? {} : liveReport(process.stdout, values.verbose)) });
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
  return exitStatusFor(result.steps.find((s) => !s.ok)?.code);
}

/** What the command line asks the probe to do; USAGE errors for what cannot be meant. */
function probeOptions(values: ParsedCommand<typeof OPTIONS>['values'], positionals: string[]): ProbeOptions {
  if (positionals.length !== (values.basedir === undefined ? 1 : 0)) {
    throw new BbgateError('USAGE', values.basedir === undefined ? 'probe takes one CONNECTION_STRING, or --basedir DIR' : '--basedir takes the place of CONNECTION_STRING: give one or the other');
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  // Decimal seconds only (Number() would also read 0x10 and Infinity), up to a day as timeout= takes.
  if (timeout !== undefined && !(/^\d*\.?\d+$/.test(values.timeout!) && timeout > 0 && timeout <= MAX_TIMEOUT_SECONDS)) {
    throw new BbgateError('USAGE', `--timeout must be a number of seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}, not "${values.timeout}"`);
  }
  const protocol = values.protocol;
  if (protocol !== undefined && protocol !== 'pb' && protocol !== 'msgpack_experimental_v7') throw new BbgateError('USAGE', `--protocol must be pb or msgpack_experimental_v7, not "${protocol}"`);
  const password = values.password ?? process.env.BBGATE_PASSWORD;
  if (values.name !== undefined && password === undefined) throw new BbgateError('USAGE', '--name needs --password (or BBGATE_PASSWORD)');
  let connection = positionals[0];
  if (connection !== undefined && values['use-tls']) {
    let master: ReturnType<typeof parseMasterAddress>;
    try {
      master = parseMasterAddress(connection);
    } catch (err) {
      // A mistake in what --use-tls takes is a usage mistake: answered with the pointer to --help.
      throw new BbgateError('USAGE', `--use-tls takes MASTER[:PORT]: ${(err as Error).message}`);
    }
    connection = masterConnectionString(master.host, master.port, true);
  } else if (connection !== undefined) {
    const meant = connectionStringsFor(connection);
    if (meant) throw new BbgateError('USAGE', `"${connection}" has no connection type: write ${meant.tcp}, or --use-tls ${connection} for TLS`);
  }
  return {
    ...(connection !== undefined ? { connection } : {}),
    ...(values.basedir !== undefined ? { basedir: values.basedir } : {}),
    ...(values['proxy-connection-string'] !== undefined ? { proxy: values['proxy-connection-string'] } : {}),
    ...(values['no-env-proxy'] ? { environmentProxy: false } : {}),
    ...(values.name !== undefined ? { name: values.name, password } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
  };
}
