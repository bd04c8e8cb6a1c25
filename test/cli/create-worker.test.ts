// bbgate create-worker against the real buildbot-worker create-worker: the same
// buildbot.tac byte for byte (bar the differences listed below), the same files,
// modes and messages, and every rejection before anything is written.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { reprText } from '../../src/worker/python/repr.js';
import { bbgate } from '../helpers/cli.js';
import { PYTHON } from '../helpers/buildbot-master.js';
import { python, pythonCompileErrors, pythonCreateWorker, pythonWorkerCalls, run, tempDir } from './support.js';
import { canSwitchToNobody, runAsNobody } from '../helpers/nobody.js';

const MASTER = 'master.example.org:9999';

/** Runs both tools on fresh basedirs with the same arguments; returns both tacs with the basedir path replaced by BASEDIR. */
async function both(options: string[], master = MASTER, name = 'bob', password = 'pw'): Promise<{ ours: string; theirs: string; dir: string }> {
  const root = tempDir();
  const ours = await bbgate(['create-worker', '-q', ...options, join(root, 'ours'), master, name, password]);
  assert.equal(ours.status, 0, ours.stderr);
  const theirs = await pythonCreateWorker(['-q', ...options, join(root, 'theirs'), master, name, password]);
  assert.equal(theirs.status, 0, theirs.stdout + theirs.stderr);
  const tac = (which: string) => readFileSync(join(root, which, 'buildbot.tac'), 'utf8').split(join(root, which)).join('BASEDIR');
  return { ours: tac('ours'), theirs: tac('theirs'), dir: join(root, 'ours') };
}

describe('create-worker writes the tac buildbot-worker writes', () => {
  const sameAsPython: [string, string[], string?, string?, string?][] = [
    ['defaults', []],
    ['relocatable', ['-r']],
    ['no log rotation', ['-n']],
    ['relocatable without log rotation', ['--relocatable', '--no-logrotate']],
    ['connection tuning', ['--umask=0o22', '-k', '30', '--maxdelay=12', '--maxretries=5', '--numcpus=4']],
    ['unlimited old logs, small logs', ['-l', 'None', '-s', '1234']],
    ['octal log count', ['--log-count=0o10']],
    ['decimal umask (read as decimal by both)', ['--umask=18']],
    ['umask None and zero keepalive', ['--umask=None', '--keepalive=0']],
    ['shutdown by signal', ['-a', 'signal']],
    ['shutdown by file', ['--allow-shutdown=file']],
    ['TLS, leftover dirs', ['--use-tls', '--delete-leftover-dirs']],
    ['force and quiet', ['-f']],
    ['msgpack', ['--protocol=msgpack_experimental_v7']],
    ['a proxy string quoted for buildbot-worker', ['--proxy-connection-string', "'tcp:proxy.example:3128'"]],
    ['IPv6 master', [], '[::1]:1234'],
    ['default port', [], 'master.example.org'],
    ['quotes in name and password', [], MASTER, "wörk'er", 'pa"ss\'w\\rd'],
    ['control and separator characters', [], MASTER, 'tab\tname', 'nl\nx\u2028\x7f\u00a0\u200b😀'],
  ];
  for (const [title, options, master, name, password] of sameAsPython) {
    it(title, async () => {
      const { ours, theirs } = await both(options, master, name, password);
      assert.equal(ours, theirs);
    });
  }

  it('differs only where buildbot-worker writes broken Python, and those tacs compile', async () => {
    // [options, what buildbot-worker writes, what bbgate writes]
    const cases: [string[], string, string][] = [
      [['--umask=022'], 'umask = 022\n', 'umask = 0o22\n'],
      [['--umask=0077'], 'umask = 0077\n', 'umask = 0o77\n'],
      [['--log-count=010'], 'maxRotatedFiles = 010\n', 'maxRotatedFiles = 10\n'],
      [['--maxretries=007'], 'maxretries = 007\n', 'maxretries = 7\n'],
      [['--proxy-connection-string=tcp:proxy.example:3128'], 'proxy_connection_string = tcp:proxy.example:3128\n', "proxy_connection_string = 'tcp:proxy.example:3128'\n"],
    ];
    const paths: string[] = [];
    for (const [options, theirLine, ourLine] of cases) {
      const { ours, theirs, dir } = await both(options);
      assert.ok(theirs.includes(theirLine), theirs);
      assert.equal(ours, theirs.replace(theirLine, ourLine));
      paths.push(join(dir, 'buildbot.tac'), join(dir, '..', 'theirs', 'buildbot.tac'));
    }
    const errors = await pythonCompileErrors(paths);
    for (let i = 0; i < cases.length; i++) {
      assert.equal(errors[2 * i], null, `ours for ${cases[i]![0]}`);
      assert.notEqual(errors[2 * i + 1], null, `buildbot-worker's for ${cases[i]![0]} should not compile`);
    }
  });

  it('--connection-string: host and port None, connection_string passed to Worker, as the Buildbot docs say to edit it', async () => {
    const root = tempDir();
    const cs = 'tls:master.example.org:9989:trustRoots=/etc/ssl/certs';
    const r = await bbgate(['create-worker', '-q', '--connection-string', cs, join(root, 'w'), 'bob', 'pw']);
    assert.equal(r.status, 0, r.stderr);
    const theirs = await pythonCreateWorker(['-q', join(root, 'p'), 'master.example.org:9989', 'bob', 'pw']);
    assert.equal(theirs.status, 0);
    const ours = readFileSync(join(root, 'w', 'buildbot.tac'), 'utf8').split(join(root, 'w')).join('BASEDIR');
    const edited = readFileSync(join(root, 'p', 'buildbot.tac'), 'utf8')
      .split(join(root, 'p'))
      .join('BASEDIR')
      .replace("buildmaster_host = 'master.example.org'\nport = 9989\n", `buildmaster_host = None\nport = None\nconnection_string = ${reprText(cs)}\n`)
      .replace('proxy_connection_string=proxy_connection_string)', 'proxy_connection_string=proxy_connection_string,\n           connection_string=connection_string)');
    assert.equal(ours, edited);
    assert.deepEqual(await pythonCompileErrors([join(root, 'w', 'buildbot.tac')]), [null]);
  });

  it("spells strings as Python's repr does", async () => {
    const samples = ['', "'", '"', `'"`, '\\', '\x00\x1f\x7f\x80\x9f\xa0\xad', '\u0378\u2028\u2029\u3000\ufeff\ue000', 'é中😀\u{10ffff}', '\ud800x', 'a\tb\nc\rd'];
    const reprs = await python<string[]>('print(json.dumps([repr(s) for s in data]))', samples.map((s) => s.replace(/[\ud800-\udfff]/g, '?')));
    assert.deepEqual(
      samples.map((s) => reprText(s.replace(/[\ud800-\udfff]/g, '?'))),
      reprs,
    );
  });

  it('makes the tac 0600 and the info files as buildbot-worker does, with its messages', async () => {
    const root = tempDir();
    const ours = await bbgate(['create-worker', join(root, 'w'), MASTER, 'bob', 'pw']);
    const theirs = await pythonCreateWorker([join(root, 'p'), MASTER, 'bob', 'pw']);
    assert.equal(ours.status, 0);
    assert.equal(ours.stdout, theirs.stdout.split(join(root, 'p')).join(join(root, 'w')));
    assert.equal(ours.stderr, '');
    for (const dir of ['w', 'p']) {
      assert.equal(statSync(join(root, dir, 'buildbot.tac')).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(join(root, dir)).sort(), ['buildbot.tac', 'info']);
    }
    for (const file of ['admin', 'host']) {
      assert.equal(readFileSync(join(root, 'w', 'info', file), 'utf8'), readFileSync(join(root, 'p', 'info', file), 'utf8'));
      assert.equal(statSync(join(root, 'w', 'info', file)).mode & 0o777, statSync(join(root, 'p', 'info', file)).mode & 0o777);
    }
    assert.equal(readFileSync(join(root, 'w', 'info', 'admin'), 'utf8'), 'Your Name Here <admin@youraddress.invalid>\n');
    assert.equal(readFileSync(join(root, 'w', 'info', 'host'), 'utf8'), 'Please put a description of this build host here\n');
  });

  it('keeps an existing tac that differs, writing buildbot.tac.new (0600), and never touches existing info files', async () => {
    const root = tempDir();
    const dir = join(root, 'w');
    const steps = [
      [MASTER, 'pw'],
      [MASTER, 'pw'],
      [MASTER, 'other'],
      [MASTER, 'third'],
    ];
    const outputs: string[][] = [];
    for (const impl of ['ours', 'theirs']) {
      const d = impl === 'ours' ? dir : join(root, 'p');
      const out: string[] = [];
      for (const [i, [master, password]] of steps.entries()) {
        if (i === 1) {
          writeFileSync(join(d, 'info', 'admin'), 'Jane <jane@example.org>\n');
          writeFileSync(join(d, 'info', 'access_uri'), 'ssh://example.org\n');
        }
        const r = impl === 'ours' ? await bbgate(['create-worker', d, master!, 'bob', password!]) : await pythonCreateWorker([d, master!, 'bob', password!]);
        assert.equal(r.status, 0);
        out.push(r.stdout.split(d).join('BASEDIR'));
      }
      outputs.push(out);
    }
    assert.deepEqual(outputs[0], outputs[1]);
    assert.match(outputs[0]![1]!, /^updating existing installation\nbuildbot\.tac already exists and is correct\nworker configured in BASEDIR\n$/);
    assert.match(outputs[0]![2]!, /not touching existing buildbot\.tac\ncreating buildbot\.tac\.new instead\n/);
    assert.match(readFileSync(join(dir, 'buildbot.tac'), 'utf8'), /passwd = 'pw'/);
    assert.match(readFileSync(join(dir, 'buildbot.tac.new'), 'utf8'), /passwd = 'third'/);
    assert.equal(statSync(join(dir, 'buildbot.tac.new')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'info', 'admin'), 'utf8'), 'Jane <jane@example.org>\n');
  });

  it('a .new that already exists with a wider mode is made 0600 before the password is written', async () => {
    const root = tempDir();
    const dir = join(root, 'w');
    assert.equal((await bbgate(['create-worker', '-q', dir, MASTER, 'bob', 'pw'])).status, 0);
    writeFileSync(join(dir, 'buildbot.tac.new'), 'old\n', { mode: 0o644 });
    assert.equal((await bbgate(['create-worker', '-q', dir, MASTER, 'bob', 'new-pw'])).status, 0);
    assert.equal(statSync(join(dir, 'buildbot.tac.new')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'buildbot.tac.new'), 'utf8'), /passwd = 'new-pw'/);
  });

  it("writes a tac that buildbot-worker's start accepts (its worker-directory check)", async () => {
    const root = tempDir();
    const dirs = [['-r'], ['-n', '--umask=022'], ['--connection-string', 'tcp:127.0.0.1:9989']].map((options, i) => {
      const d = join(root, `w${i}`);
      return { d, options };
    });
    for (const { d, options } of dirs) {
      const positional = options.includes('--connection-string') ? [d, 'bob', 'pw'] : [d, MASTER, 'bob', 'pw'];
      assert.equal((await bbgate(['create-worker', '-q', ...options, ...positional])).status, 0);
    }
    const checks = await python<boolean[]>(
      'from buildbot_worker.scripts.base import isWorkerDir\nprint(json.dumps([isWorkerDir(d) for d in data]))',
      dirs.map((x) => x.d),
    );
    assert.deepEqual(checks, [true, true, true]);
  });
});

describe('create-worker rejects bad arguments before writing anything', () => {
  const rejections: [string, string[], RegExp, string?][] = [
    ['too few arguments', ['BASEDIR', MASTER, 'bob'], /create-worker takes 4 arguments, BASEDIR MASTER\[:PORT\] WORKERNAME PASSWORD; got 3/, 'USAGE'],
    ['a URL as MASTER', ['BASEDIR', 'http://master:8010', 'bob', 'pw'], /MASTER is not a URL/],
    ['a bad port', ['BASEDIR', 'master:http', 'bob', 'pw'], /port must be a whole number from 1 to 65535, not "http"/],
    ['an unbracketed IPv6 MASTER', ['BASEDIR', '::1:9989', 'bob', 'pw'], /an IPv6 address must be in brackets/],
    ['a bad keepalive', ['-k', 'often', 'BASEDIR', MASTER, 'bob', 'pw'], /--keepalive must be a whole number of seconds \(0 turns keepalives off\), not "often"/, 'USAGE'],
    ['a negative keepalive', ['--keepalive=-5', 'BASEDIR', MASTER, 'bob', 'pw'], /--keepalive must be a whole number of seconds/, 'USAGE'],
    ['a bad maxdelay', ['--maxdelay', '1.5', 'BASEDIR', MASTER, 'bob', 'pw'], /--maxdelay must be a whole number of seconds, not "1.5"/, 'USAGE'],
    ['a bad log size', ['-s', '10M', 'BASEDIR', MASTER, 'bob', 'pw'], /--log-size must be a whole number of bytes, not "10M"/, 'USAGE'],
    ['a bad log count', ['-l', 'all', 'BASEDIR', MASTER, 'bob', 'pw'], /--log-count must be a whole number or None, not "all"/, 'USAGE'],
    ['a bad octal count', ['--maxretries=0o9', 'BASEDIR', MASTER, 'bob', 'pw'], /--maxretries must be a whole number or None, not "0o9"/, 'USAGE'],
    ['a bad numcpus', ['--numcpus=-1', 'BASEDIR', MASTER, 'bob', 'pw'], /--numcpus must be a whole number or None, not "-1"/, 'USAGE'],
    ['a non-octal umask', ['--umask=089', 'BASEDIR', MASTER, 'bob', 'pw'], /--umask must be an octal mask such as 0o022 or 022 \(or None\), not "089"/, 'USAGE'],
    ['a word as umask', ['--umask=u=rwx', 'BASEDIR', MASTER, 'bob', 'pw'], /--umask must be an octal mask/, 'USAGE'],
    ['a umask too large', ['--umask=0o1777', 'BASEDIR', MASTER, 'bob', 'pw'], /--umask must be at most 0o777, not "0o1777"/, 'USAGE'],
    ['a bad allow-shutdown', ['-a', 'sighup', 'BASEDIR', MASTER, 'bob', 'pw'], /--allow-shutdown must be signal or file, not "sighup"/, 'USAGE'],
    ['an unknown protocol', ['--protocol=http', 'BASEDIR', MASTER, 'bob', 'pw'], /--protocol must be pb/, 'USAGE'],
    ['a bad connection string', ['--connection-string', 'tcp:master', 'BASEDIR', 'bob', 'pw'], /"tcp:master": no port/],
    ['a URL as connection string', ['--connection-string', 'https://master:8010', 'BASEDIR', 'bob', 'pw'], /: a URL, not a connection string/],
    ['MASTER with a connection string', ['--connection-string', 'tcp:m:1', 'BASEDIR', MASTER, 'bob', 'pw'], /takes 3 arguments, BASEDIR WORKERNAME PASSWORD \(--connection-string replaces MASTER\[:PORT\]\); got 4/, 'USAGE'],
    ['--use-tls with a connection string', ['--use-tls', '--connection-string', 'tcp:m:1', 'BASEDIR', 'bob', 'pw'], /--use-tls and --connection-string do not go together/, 'USAGE'],
    ['a bad proxy string', ['--proxy-connection-string', 'proxy:3128', 'BASEDIR', MASTER, 'bob', 'pw'], /"proxy:3128": not a proxy connection string/],
    ['a bad tcp: proxy string', ['--proxy-connection-string', 'tcp:proxy', 'BASEDIR', MASTER, 'bob', 'pw'], /"tcp:proxy": no port/],
    ['a proxy password stays out of the message', ['--proxy-connection-string', 'socks5://u:s3cretpw@proxy:1080', 'BASEDIR', MASTER, 'bob', 'pw'], /"socks5:\/\/" proxies are not supported/],
    ['an unknown option', ['--colour', 'BASEDIR', MASTER, 'bob', 'pw'], /^bbgate: unknown option --colour for create-worker\n/, 'USAGE'],
    ['an empty password', ['BASEDIR', MASTER, 'bob', ''], /^bbgate: PASSWORD is empty: /, 'USAGE'],
    ['trust roots that do not exist', ['--connection-string', 'tls:m:1:trustRoots=/nonexistent/ca', 'BASEDIR', 'bob', 'pw'], /^bbgate: trustRoots \/nonexistent\/ca does not exist: /],
  ];
  for (const [title, args, message, code] of rejections) {
    it(title, async () => {
      const root = tempDir();
      const r = await bbgate(['create-worker', ...args.map((a) => (a === 'BASEDIR' ? join(root, 'w') : a))]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.ok(!r.stderr.includes('s3cretpw'));
      assert.equal(r.stdout, '');
      // A usage mistake ends with one line pointing at the help, not the whole usage text.
      if (code === 'USAGE') assert.match(r.stderr, /\nTry 'bbgate create-worker --help' for more information\.\n$/);
      else assert.ok(!r.stderr.includes('--help'));
      assert.deepEqual(readdirSync(root), []);
    });
  }

  it('a missing parent directory, or a file where BASEDIR should be', async () => {
    const root = tempDir();
    let r = await bbgate(['create-worker', join(root, 'no', 'such', 'w'), MASTER, 'bob', 'pw']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `bbgate: cannot create ${join(root, 'no', 'such', 'w')}: its parent directory ${join(root, 'no', 'such')} does not exist (create-worker makes only BASEDIR itself)\n`);
    writeFileSync(join(root, 'file'), '');
    r = await bbgate(['create-worker', join(root, 'file'), MASTER, 'bob', 'pw']);
    assert.equal(r.stderr, `bbgate: ${join(root, 'file')} exists and is not a directory\n`);
    assert.deepEqual(readdirSync(root), ['file']);
  });

  it('reports a directory it cannot write with the system error, as buildbot-worker does (run as nobody)', { skip: canSwitchToNobody ? false : 'only root can run it as the nobody user' }, async () => {
    const root = tempDir();
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'ro'), { mode: 0o555 });
    const run = runAsNobody((src) => `
      const { runCreateWorker } = await import(${JSON.stringify(src + 'cli/create-worker.js')});
      process.exitCode = await runCreateWorker(${JSON.stringify([join(root, 'ro', 'w'), MASTER, 'bob', 'pw'])});`);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /error creating directory .*: Permission denied\nfailed to configure worker in /);
  });


  it('notes what the Python worker cannot run, and a decimal umask', async () => {
    const root = tempDir();
    const r = await bbgate(['create-worker', '-q', '--umask=22', '--proxy-connection-string', 'http://u:pw123456@proxy:3128', join(root, 'w'), MASTER, 'bob', 'pw']);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /note: --umask=22 is the decimal number 22 \(0o026\), as buildbot-worker reads it; for octal write --umask=0o22 or --umask=022/);
    assert.match(r.stderr, /note: buildbot-worker cannot run this buildbot.tac: its proxy_connection_string takes only tcp:HOST:PORT/);
    assert.ok(!r.stderr.includes('pw123456'));
    assert.ok(existsSync(join(root, 'w', 'buildbot.tac')));
    const ws = await bbgate(['create-worker', '-q', '--connection-string', 'wss://relay.example.org/pb', join(root, 'ws'), 'bob', 'pw']);
    assert.equal(ws.status, 0, ws.stderr);
    assert.match(ws.stderr, /note: buildbot-worker cannot run this buildbot.tac: it has no ws:\/\/ or wss:\/\/ transport/);
    // bbgate's TLS extensions: a trustRoots PEM file, a fingerprint pin; a directory is Twisted's own.
    const bundle = join(root, 'ca.pem');
    // The system's CA bundle: trust roots the worker can load (create-worker loads them, as the worker will).
    writeFileSync(bundle, readFileSync('/etc/ssl/certs/ca-certificates.crt'));
    const pinned = await bbgate(['create-worker', '-q', '--connection-string', `tls:master:9989:trustRoots=${bundle}:fingerprint=${'AB'.repeat(32)}`, join(root, 'tls'), 'bob', 'pw']);
    assert.equal(pinned.status, 0, pinned.stderr);
    assert.match(pinned.stderr, new RegExp(`note: buildbot-worker cannot run this buildbot.tac: its trustRoots= must be a directory of .pem files \\(Twisted lists it\\), and ${bundle} is a file`));
    assert.match(pinned.stderr, /note: buildbot-worker cannot run this buildbot.tac: Twisted's tls: has no fingerprint=/);
    const dir = await bbgate(['create-worker', '-q', '--connection-string', `tls:master:9989:trustRoots=${root}`, join(root, 'tls-dir'), 'bob', 'pw']);
    assert.equal(dir.status, 0, dir.stderr);
    assert.doesNotMatch(dir.stderr, /cannot run/);
  });

  it('--help', async () => {
    const r = await bbgate(['create-worker', '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: bbgate create-worker \[options\] BASEDIR MASTER\[:PORT\] WORKERNAME PASSWORD/);
    for (const option of ['--protocol', '--no-logrotate', '--umask', '--keepalive', '--maxdelay', '--maxretries', '--log-size', '--log-count', '--allow-shutdown', '--use-tls', '--delete-leftover-dirs', '--proxy-connection-string', '--connection-string', '--numcpus', '--force', '--relocatable', '--quiet', '--help']) {
      assert.ok(r.stdout.includes(option), option);
    }
  });
});

describe('buildbot-worker runs what bbgate create-worker writes', () => {
  it('compiles every tac bbgate writes for awkward names and passwords', async () => {
    const root = tempDir();
    const passwords = ["'", '"', `'"\\`, '\n\r\t\x01\x1b', '\u2028\u0085', 'é中😀', '\\N{DASH}', '{}%s%(x)s'];
    const paths: string[] = [];
    for (const [i, password] of passwords.entries()) {
      const d = join(root, `w${i}`);
      assert.equal((await bbgate(['create-worker', '-q', d, MASTER, `name${password}`, password])).status, 0);
      paths.push(join(d, 'buildbot.tac'));
    }
    assert.deepEqual(await pythonCompileErrors(paths), paths.map(() => null));
    const calls = await pythonWorkerCalls(paths);
    assert.deepEqual(
      calls.map((c) => (typeof c === 'string' ? c : c.args.slice(2, 4))),
      passwords.map((p) => [`name${p}`, p]),
    );
  });

  it('the real buildbot-worker start refuses nothing bbgate writes (twistd loads the tac)', async () => {
    const root = tempDir();
    const d = join(root, 'w');
    assert.equal((await bbgate(['create-worker', '-q', '--umask=022', '--proxy-connection-string', 'tcp:127.0.0.1:1', d, '127.0.0.1:1', 'bob', 'pw'])).status, 0);
    // twistd's own loader, without starting the reactor: the Worker service is built from the tac.
    const r = await run(PYTHON, [
      '-c',
      `from twisted.application import service
from twisted.persisted import sob
app = sob.loadValueFromFile(${JSON.stringify(join(d, 'buildbot.tac'))}, 'application')
w = list(service.IServiceCollection(app))[0]
print(type(w).__name__, w.umask, w.name)`,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'Worker 18 bob');
  });
});
