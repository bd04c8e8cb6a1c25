import { BbgateError } from '../errors.js';
import { splitUserName } from '../proxy/auth/ntlm/credentials.js';
import { ntHash, ntlmv2Hash } from '../proxy/auth/ntlm/ntlmv2.js';
import { parseCommand, report } from './common.js';

export const NTLM_HASH_USAGE = `Usage: bbgate ntlm-hash [--domain DOMAIN] USER

Prints the NT hash and the NTLMv2 hash of a proxy password (as \`cntlm -H\` does), so that a
buildbot.tac holds a hash rather than the password:
  --proxy-connection-string 'http://DOMAIN%5CUSER:HASH@proxy:3128#hash=nt'      (PassNT)
  --proxy-connection-string 'http://DOMAIN%5CUSER:HASH@proxy:3128#hash=ntlmv2'  (PassNTLMv2)
Either hash logs in as the user to any NTLM proxy: guard it as the password. The NTLMv2 hash
works only for exactly this user and domain (the domain as written, case included).

  USER          USER, DOMAIN\\USER or USER@DOMAIN
  --domain D    the domain, when USER does not name one
The password is read from the environment variable BBGATE_PROXY_PASSWORD, or else from standard
input (a prompt without echo on a terminal), never from the command line, where ps would show it.
`;

export async function runNtlmHash(argv: string[]): Promise<number> {
  let domainOption: string | undefined;
  let user: string;
  try {
    const { values, positionals } = parseCommand('ntlm-hash', argv, { domain: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
    if (values.help) {
      process.stdout.write(NTLM_HASH_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new BbgateError('USAGE', 'ntlm-hash takes exactly one USER (the password is never an argument)');
    domainOption = values.domain;
    user = positionals[0]!;
  } catch (err) {
    return report(err, 'ntlm-hash');
  }
  const named = splitUserName(user);
  const domain = domainOption ?? named.domain;
  const password = process.env.BBGATE_PROXY_PASSWORD ?? (await readPassword());
  if (password === '') {
    process.stderr.write('bbgate ntlm-hash: the password is empty\n');
    return 1;
  }
  const nt = ntHash(password);
  process.stdout.write(`PassNT      ${nt.toString('hex').toUpperCase()}\n`);
  process.stdout.write(`PassNTLMv2  ${ntlmv2Hash(nt, named.user, domain).toString('hex').toUpperCase()}    # only for user '${named.user}', domain '${domain}'\n`);
  return 0;
}

/** A line from stdin; on a terminal, prompted on stderr and typed without echo. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) text += chunk;
    return text.replace(/\r?\n$/, '');
  }
  process.stderr.write('Proxy password: ');
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  return new Promise((resolve) => {
    let typed = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', onData).setRawMode(false).pause();
          process.stderr.write('\n');
          return resolve(typed);
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          process.exit(130);
        }
        typed = ch === '\u007f' ? typed.slice(0, -1) : typed + ch;
      }
    };
    stdin.on('data', onData);
  });
}
