// The first hour of a new user (issue 16): the version, help and usage errors of every command,
// create-worker's refusals and notes, and bbgate as an npm package (its tarball and its entry
// point, used against a real Buildbot 3.7 master).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { bbgate, CLI } from '../helpers/cli.js';
import { tempDir } from './support.js';

const COMMANDS = ['probe', 'create-worker', 'start', 'stop', 'restart', 'relay', 'ntlm-hash'];
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('the command line', () => {
  it('-V, --version print the version', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await bbgate([flag]);
      assert.deepEqual(r, { status: 0, stdout: `bbgate ${VERSION}\n`, stderr: '' });
    }
  });

  it('bbgate help CMD prints exactly what bbgate CMD --help prints, for every command', async () => {
    for (const command of COMMANDS) {
      const viaHelp = await bbgate(['help', command]);
      const direct = await bbgate([command, '--help']);
      assert.equal(direct.status, 0, command);
      assert.match(direct.stdout, new RegExp(`^Usage: bbgate ${command} `), command);
      assert.deepEqual(viaHelp, direct, command);
    }
    const unknown = await bbgate(['help', 'frobnicate']);
    assert.deepEqual(unknown, { status: 1, stdout: '', stderr: `bbgate: unknown command "frobnicate"\nTry 'bbgate --help' for more information.\n` });
  });

  it('a usage mistake is two lines, what was wrong and where to look, with status 1', async () => {
    const cases: [string[], string][] = [
      [['probe', '--bogus', 'tcp:h:1'], `bbgate: unknown option --bogus for probe\nTry 'bbgate probe --help' for more information.\n`],
      [['start', '-x'], `bbgate: unknown option -x for start\nTry 'bbgate start --help' for more information.\n`],
      [['create-worker', '--keepalive'], `bbgate: option --keepalive of create-worker needs a value\nTry 'bbgate create-worker --help' for more information.\n`],
      [['stop', '--help=yes'], `bbgate: option --help of stop takes no value\nTry 'bbgate stop --help' for more information.\n`],
      [['relay', 'extra'], `bbgate: relay takes no arguments, only options (got "extra")\nTry 'bbgate relay --help' for more information.\n`],
      [['ntlm-hash'], `bbgate: ntlm-hash takes exactly one USER (the password is never an argument)\nTry 'bbgate ntlm-hash --help' for more information.\n`],
      [['probe', '--timeout', '0', 'tcp:h:1'], `bbgate: --timeout must be a number of seconds above 0 and at most 86400, not "0"\nTry 'bbgate probe --help' for more information.\n`],
      [['probe', '--timeout', 'Infinity', 'tcp:h:1'], `bbgate: --timeout must be a number of seconds above 0 and at most 86400, not "Infinity"\nTry 'bbgate probe --help' for more information.\n`],
      [['probe', '--timeout', '0x10', 'tcp:h:1'], `bbgate: --timeout must be a number of seconds above 0 and at most 86400, not "0x10"\nTry 'bbgate probe --help' for more information.\n`],
      [['probe', '--use-tls', 'h:99999'], `bbgate: --use-tls takes MASTER[:PORT]: "h:99999": port must be a whole number from 1 to 65535, not "99999"\nTry 'bbgate probe --help' for more information.\n`],
      [['frobnicate'], `bbgate: unknown command "frobnicate"\nTry 'bbgate --help' for more information.\n`],
      [['--frobnicate'], `bbgate: unknown option --frobnicate\nTry 'bbgate --help' for more information.\n`],
    ];
    for (const [args, stderr] of cases) assert.deepEqual(await bbgate(args), { status: 1, stdout: '', stderr }, args.join(' '));
  });

  it('a reader that goes away early (| true) ends the output, not the probe: its own status, no stack trace', async () => {
    const r = await new Promise<{ status: string; stderr: string }>((resolve) => {
      execFile('bash', ['-c', `"${process.execPath}" "${CLI}" probe --timeout 5 tcp:127.0.0.1:1 | true; echo "\${PIPESTATUS[0]}"`], (_err, stdout, stderr) => resolve({ status: stdout.trim(), stderr }));
    });
    assert.deepEqual(r, { status: '2', stderr: '' });
  });

  it('the top-level help lists every form of every command', async () => {
    const r = await bbgate(['--help']);
    assert.equal(r.status, 0);
    for (const form of ['probe CONNECTION_STRING', 'probe --use-tls MASTER[:PORT]', 'probe --basedir DIR', 'create-worker [options] BASEDIR MASTER[:PORT] WORKERNAME PASSWORD',
      'create-worker [options] --connection-string STRING BASEDIR WORKERNAME PASSWORD', 'start [--quiet] [--nodaemon] [BASEDIR]', 'stop [--quiet] [BASEDIR]',
      'restart [--quiet] [--nodaemon] [BASEDIR]', 'relay [--config relay.json]', 'ntlm-hash [--domain DOMAIN] USER', 'help [COMMAND]', '-V, --version']) {
      assert.ok(r.stdout.includes(form), form);
    }
    const bare = await bbgate([]);
    assert.equal(bare.status, 1);
    assert.equal(bare.stderr, r.stdout);
  });

  it('a host and port without a connection type: the probe suggests tcp: and --use-tls', async () => {
    assert.deepEqual(await bbgate(['probe', '127.0.0.1:9989']), {
      status: 1,
      stdout: '',
      stderr: `bbgate: "127.0.0.1:9989" has no connection type: write tcp:127.0.0.1:9989, or --use-tls 127.0.0.1:9989 for TLS\nTry 'bbgate probe --help' for more information.\n`,
    });
    // The same mistake in a connection string anywhere else (here create-worker's) says what to write.
    const dir = tempDir();
    const r = await bbgate(['create-worker', '--connection-string', 'master.example.org:9989', join(dir, 'w'), 'w', 'pw']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /a host and port without a connection type: write tcp:master\.example\.org:9989, or tls:master\.example\.org:9989 for TLS/);
  });
});

describe('create-worker refuses what cannot work and notes what may not', () => {
  it('an empty password or worker name is refused, and nothing is written', async () => {
    const dir = tempDir();
    const r = await bbgate(['create-worker', join(dir, 'w'), 'localhost', 'w', '']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^bbgate: PASSWORD is empty/);
    const n = await bbgate(['create-worker', join(dir, 'w'), 'localhost', '', 'pw']);
    assert.equal(n.status, 1);
    assert.match(n.stderr, /^bbgate: WORKERNAME is empty/);
    assert.throws(() => readFileSync(join(dir, 'w', 'buildbot.tac')));
  });

  it('trust roots the worker could not load are refused, with the loader\'s reasons; they are looked for where the worker runs', async () => {
    const dir = tempDir();
    const refused: [string, RegExp][] = [
      ['ca', new RegExp(`^bbgate: trustRoots ${join(dir, 'w', 'ca')} does not exist: give a directory of \\.pem files, or one PEM file\\n$`)],
      ['/etc/passwd', /^bbgate: the trustRoots file \/etc\/passwd holds no usable certificate \(not PEM: no -----BEGIN CERTIFICATE----- block\)/],
      ['/dev/null', /^bbgate: trustRoots \/dev\/null is neither a directory nor a regular file/],
    ];
    for (const [roots, message] of refused) {
      const r = await bbgate(['create-worker', '--connection-string', `tls:master:9989:trustRoots=${roots}`, join(dir, 'w'), 'w', 'pw']);
      assert.equal(r.status, 1, roots);
      assert.match(r.stderr, message, roots);
    }
    assert.throws(() => readFileSync(join(dir, 'w', 'buildbot.tac')));
    mkdirSync(join(dir, 'w', 'ca'), { recursive: true });
    writeFileSync(join(dir, 'w', 'ca', 'roots.pem'), readFileSync('/etc/ssl/certs/ca-certificates.crt'));
    const present = await bbgate(['create-worker', '--quiet', '--connection-string', 'tls:master:9989:trustRoots=ca', join(dir, 'w'), 'w', 'pw']);
    assert.equal(present.status, 0, present.stderr);
  });

  it('a missing client certificate is a note; a proxy URL without a port says which port it will use', async () => {
    const dir = tempDir();
    const r = await bbgate(['create-worker', '--quiet', '--connection-string', 'tls:master:9989:certificate=/nonexistent/worker.pem',
      '--proxy-connection-string', 'http://jane:secret@proxy.example.org', join(dir, 'w'), 'w', 'pw']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /note: certificate=\/nonexistent\/worker\.pem does not exist yet: the worker will not connect until it does/);
    assert.match(r.stderr, /note: the proxy string names no port: bbgate will connect to proxy\.example\.org on port 80, http:\/\/'s default/);
    assert.ok(!r.stderr.includes('secret'));
  });
});

function npm(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile('npm', args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`npm ${args.join(' ')}: ${stderr}`)) : resolve(stdout))));
}

describe('the npm package', () => {
  it('carries LICENSE, its metadata and the sources its source maps name', async () => {
    const [pack] = JSON.parse(await npm(['pack', '--dry-run', '--json', '--ignore-scripts'])) as [{ files: { path: string }[] }];
    const files = new Set(pack.files.map((f) => f.path));
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/src/api/index.js', 'dist/src/api/index.d.ts', 'dist/src/cli/main.js']) assert.ok(files.has(f), f);
    assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('test/')), 'no tests in the tarball');
    let maps = 0;
    for (const f of files) {
      if (!f.endsWith('.js.map')) continue;
      maps++;
      const map = JSON.parse(readFileSync(join(ROOT, f), 'utf8')) as { sources: string[] };
      for (const source of map.sources) assert.ok(files.has(join(f, '..', source)), `${f} names ${source}, which is not in the tarball`);
    }
    assert.ok(maps > 50, `${maps} source maps`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { keywords: string[]; license: string; exports: Record<string, unknown>; types: string };
    assert.ok(pkg.keywords.includes('buildbot'));
    assert.equal(pkg.license, 'MIT');
    assert.ok(pkg.exports['.'] && pkg.types === './dist/src/api/index.d.ts');
  });

  describe("import … from 'bbgate', against a real 3.7 master", () => {
    let master: RunningMaster;
    before(async () => {
      master = await startMaster({ workers: [{ name: 'lib-w', password: 'lib-pass' }] });
    });
    after(async () => {
      await master?.stop();
    });

    it('the probe as a function logs in; dial + openPbSession with a wrong password is PB_UNAUTHORIZED', { timeout: 120_000 }, async () => {
      // The package's own name: resolved through package.json's "exports", as a dependent would.
      const lib = await import('bbgate' as string) as typeof import('../../src/api/index.js');
      const connection = `tcp:127.0.0.1:${master.pbPort}`;
      const report = await lib.probe({ connection, name: 'lib-w', password: 'lib-pass', environmentProxy: false, timeout: 20 });
      assert.ok(report.ok, lib.formatReport(report));
      assert.deepEqual(report.steps.map((s) => s.step).slice(-2), ['login', 'keepalive']);
      assert.equal(lib.exitStatusFor(undefined), 0);

      const endpoint = lib.parseEndpoint(connection);
      assert.equal(lib.formatEndpoint(endpoint), `tcp:host=127.0.0.1:port=${master.pbPort}:timeout=30`);
      const stream = await lib.dial(lib.routeTo({ endpoint }, { environmentProxy: false }));
      await assert.rejects(lib.openPbSession(stream, { username: 'lib-w', password: 'wrong', mind: null, timeout: 20_000 }), (err: unknown) => {
        assert.ok(lib.isBbgateError(err));
        assert.equal(err.code, 'PB_UNAUTHORIZED');
        return true;
      });
    });
  });
});
