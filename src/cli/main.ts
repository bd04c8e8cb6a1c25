#!/usr/bin/env node
import { EXIT_INTERNAL_ERROR } from '../errors.js';
import { stallMessage, watchLiveness } from '../liveness.js';
import { VERSION } from '../version.js';
import { seeHelp, type CommandName } from './common.js';

const USAGE = `Usage: bbgate <command> [options]

Commands:
  probe CONNECTION_STRING [--proxy-connection-string P] [--name NAME --password PASSWORD]
        [--protocol pb|msgpack_experimental_v7] [--timeout S] [--verbose] [--json] [--no-env-proxy]
  probe --use-tls MASTER[:PORT] [options]
  probe --basedir DIR [options]
        Walk proxy → DNS → TCP → CONNECT → TLS → PB → login → keepalive to a Buildbot master and
        name the layer that fails (--protocol msgpack_experimental_v7: … → TLS → websocket →
        msgpack → login). Exit status: 0 ok, 1 usage or unparseable input,
        2 network, 3 proxy, 4 TLS, 5 authentication, 6 not a PB service / protocol,
        70 a bug in bbgate.
  create-worker [options] BASEDIR MASTER[:PORT] WORKERNAME PASSWORD
  create-worker [options] --connection-string STRING BASEDIR WORKERNAME PASSWORD
        Create a worker directory with its buildbot.tac, as buildbot-worker create-worker does.
  start [--quiet] [--nodaemon] [BASEDIR]
        Start the worker in BASEDIR (default: here) and wait until the master has attached it.
  stop [--quiet] [BASEDIR]
        Stop it (SIGTERM, then up to 10 s).
  restart [--quiet] [--nodaemon] [BASEDIR]
        Stop it if it runs, then start it.
  relay [--config relay.json] --listen ADDR --upstream CONN --allow RULE [options]
        Run a PB-aware relay (on a DMZ host) that admits workers by name and
        forwards them to the master.
  ntlm-hash [--domain DOMAIN] USER
        Print the NT and NTLMv2 hashes of a proxy password (read from BBGATE_PROXY_PASSWORD or
        stdin), for a proxy string's #hash=nt or #hash=ntlmv2 in place of the password.
  help [COMMAND]
        This text, or a command's own (the same as bbgate COMMAND --help).

Options:
  -h, --help     this text
  -V, --version  print bbgate's version
`;

interface Command {
  run(argv: string[]): Promise<number>;
}

// Loaded on demand: the worker's modules are not needed to probe, nor the probe's to start a worker.
const COMMANDS: Record<CommandName, () => Promise<Command>> = {
  probe: async () => ({ run: (await import('./probe.js')).runProbe }),
  'create-worker': async () => ({ run: (await import('./create-worker.js')).runCreateWorker }),
  start: async () => ({ run: (await import('./start.js')).runStart }),
  stop: async () => ({ run: (await import('./stop.js')).runStop }),
  restart: async () => ({ run: (await import('./restart.js')).runRestart }),
  relay: async () => ({ run: (await import('./relay.js')).runRelay }),
  'ntlm-hash': async () => ({ run: (await import('./ntlm-hash.js')).runNtlmHash }),
};

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

function unknownCommand(name: string): number {
  return usageProblem(`unknown command "${name}"`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (isCommand(command)) return (await COMMANDS[command]()).run(rest);
  switch (command) {
    case '--version':
    case '-V':
      process.stdout.write(`bbgate ${VERSION}\n`);
      return 0;
    case 'help': {
      const topic = rest[0];
      // Exactly what `bbgate TOPIC --help` prints: the command prints it itself.
      if (isCommand(topic)) return (await COMMANDS[topic]()).run(['--help']);
      if (topic !== undefined) return unknownCommand(topic);
      process.stdout.write(USAGE);
      return 0;
    }
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      process.stderr.write(USAGE);
      return 1;
    default:
      return command.startsWith('-') ? usageProblem(`unknown option ${command}`) : unknownCommand(command);
  }
}

function usageProblem(problem: string): number {
  process.stderr.write(`bbgate: ${problem}\n${seeHelp(undefined)}`);
  return 1;
}

// A reader that goes away (`bbgate probe … | head -1`) ends the output, not the command: the
// command finishes and exits with its own status, without a stack trace for EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

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
    process.stderr.write(`bbgate: internal error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT_INTERNAL_ERROR;
  },
);
