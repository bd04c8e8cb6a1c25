// readTac on tacs written by the real buildbot-worker create-worker (many option
// sets), by bbgate, and edited by hand; every refusal names file and line, and is
// classified as Python itself classifies the tac (does not compile / runs / fails).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/address/connection-string.js';
import { parseProxyString } from '../../src/address/proxy-string.js';
import type { WorkerConfig } from '../../src/worker/config.js';
import { readTac } from '../../src/worker/tac/read.js';
import { renderTac, type TacSettings } from '../../src/worker/tac/write.js';
import { pythonCompileErrors, pythonCreateWorker, pythonWorkerCalls, tempDir } from './support.js';

/** Adds keyword arguments to the Worker call of a real tac. */
const worker = (extra: string) => (t: string) => t.replace('proxy_connection_string=proxy_connection_string)', `proxy_connection_string=proxy_connection_string, ${extra})`);

/** A config as written in a test, with the endpoint and proxy readTac parses from its strings. */
function parsed<T extends { connection: string; proxyConnectionString?: string }>(config: T): T & Pick<WorkerConfig, 'endpoint' | 'proxy'> {
  return {
    ...config,
    endpoint: parseEndpoint(config.connection),
    ...(config.proxyConnectionString !== undefined ? { proxy: parseProxyString(config.proxyConnectionString) } : {}),
  };
}

const BASE = { keepalive: 600, maxdelay: 300, deleteLeftoverDirs: false, protocol: 'pb', usePTY: false, logRotate: { size: 10_000_000, count: 10 } } as const;

async function pythonTac(options: string[], master = 'master.example.org:9999', name = 'bob', password = 'pw'): Promise<string> {
  const dir = join(tempDir(), 'w');
  const r = await pythonCreateWorker(['-q', ...options, dir, master, name, password]);
  assert.equal(r.status, 0, r.stdout);
  return dir;
}

describe('readTac reads what buildbot-worker create-worker writes', () => {
  const table: [string, string[], Partial<WorkerConfig>, string?][] = [
    ['defaults', [], { connection: 'tcp:host=master.example.org:port=9999' }],
    ['default port', [], { connection: 'tcp:host=master.example.org:port=9989' }, 'master.example.org'],
    ['IPv6 master', [], { connection: 'tcp:host=\\:\\:1:port=1234' }, '[::1]:1234'],
    ['--use-tls', ['--use-tls'], { connection: 'tls:host=master.example.org:port=9999' }],
    ['-k -maxdelay', ['-k', '30', '--maxdelay', '12'], { keepalive: 30, maxdelay: 12 }],
    ['keepalive 0 is off', ['-k', '0'], { keepalive: 0 }],
    ['--umask=0o22', ['--umask=0o22'], { umask: 0o22 }],
    ['--umask=18 (decimal, as Python reads it)', ['--umask=18'], { umask: 18 }],
    ['--umask=0', ['--umask=0'], { umask: 0 }],
    ['--maxretries=5 --numcpus=4', ['--maxretries=5', '--numcpus=4'], { maxretries: 5, numcpus: 4 }],
    ['--maxretries=0 means forever', ['--maxretries=0'], {}],
    ['-a signal', ['-a', 'signal'], { allowShutdown: 'signal' }],
    ['-a file', ['-a', 'file'], { allowShutdown: 'file' }],
    ['--delete-leftover-dirs', ['--delete-leftover-dirs'], { deleteLeftoverDirs: true }],
    ['--protocol=msgpack_experimental_v7', ['--protocol=msgpack_experimental_v7'], { protocol: 'msgpack_experimental_v7' }],
    ['log size and unlimited count', ['-s', '1234', '-l', 'None'], { logRotate: { size: 1234, count: null } }],
    ['octal log count', ['-l', '0o10'], { logRotate: { size: 10_000_000, count: 8 } }],
    ['--no-logrotate: twistd default', ['-n'], { logRotate: undefined }],
    ['a quoted proxy string', ['--proxy-connection-string', "'tcp:proxy.example:3128'"], { proxyConnectionString: 'tcp:proxy.example:3128' }],
    ['a quoted proxy string with TLS', ['--use-tls', '--proxy-connection-string', '"tcp:host=proxy:port=3128"'], { connection: 'tls:host=master.example.org:port=9999', proxyConnectionString: 'tcp:host=proxy:port=3128' }],
  ];
  for (const [title, options, expected, master] of table) {
    it(title, async () => {
      const dir = await pythonTac(options, master);
      const want = { basedir: dir, workername: 'bob', password: 'pw', connection: 'tcp:host=master.example.org:port=9999', ...BASE, ...expected };
      if ('logRotate' in expected && expected.logRotate === undefined) delete (want as Partial<WorkerConfig>).logRotate;
      assert.deepEqual(readTac(join(dir, 'buildbot.tac')), parsed(want));
    });
  }

  it('all options at once, relocatable, moved to another directory', async () => {
    const dir = await pythonTac(['-r', '-n', '--umask=0o27', '-a', 'file', '--maxretries=3', '--numcpus=2', '-k', '60', '--maxdelay', '30', '--use-tls', '--delete-leftover-dirs'], '[fd00::5]:9000', "w'ö\"rk", 'p\\a"s\'s\n');
    const moved = join(tempDir(), 'elsewhere');
    renameSync(dir, moved);
    assert.deepEqual(readTac(join(moved, 'buildbot.tac')), parsed({
      basedir: moved,
      workername: "w'ö\"rk",
      password: 'p\\a"s\'s\n',
      connection: 'tls:host=fd00\\:\\:5:port=9000',
      keepalive: 60,
      umask: 0o27,
      maxdelay: 30,
      maxretries: 3,
      numcpus: 2,
      allowShutdown: 'file',
      deleteLeftoverDirs: true,
      protocol: 'pb',
      usePTY: false,
    }));
  });

  it('a tac that is not relocatable keeps its basedir when moved, as buildbot-worker does', async () => {
    const dir = await pythonTac([]);
    const moved = join(tempDir(), 'moved');
    renameSync(dir, moved);
    assert.equal(readTac(join(moved, 'buildbot.tac')).basedir, dir);
  });

  it('agrees with Python on what the Worker gets, for every tac above', async () => {
    const dirs = await Promise.all([[], ['-r', '--umask=0o7'], ['-n', '-a', 'signal', '--use-tls']].map((o) => pythonTac(o)));
    const calls = await pythonWorkerCalls(dirs.map((d) => join(d, 'buildbot.tac')));
    for (const [i, dir] of dirs.entries()) {
      const call = calls[i]!;
      assert.ok(typeof call !== 'string', String(call));
      const config = readTac(join(dir, 'buildbot.tac'));
      assert.deepEqual(call.args, ['master.example.org', 9999, 'bob', 'pw', config.basedir, config.keepalive]);
      assert.equal(call.kwargs.umask, config.umask ?? null);
      assert.equal(call.kwargs.allow_shutdown, config.allowShutdown ?? null);
      assert.equal(Boolean(call.kwargs.useTls), config.connection.startsWith('tls:'));
    }
  });
});

/** A copy of a tac, edited, beside it. */
function writeTacCopy(path: string, edit: (tac: string) => string): string {
  const copy = `${path}.edited.tac`;
  writeFileSync(copy, edit(readFileSync(path, 'utf8')));
  return copy;
}

describe('readTac reads hand-edited tacs', () => {
  /** A real tac with some lines replaced (and the Worker call's keywords extended). */
  async function edited(edit: (tac: string) => string): Promise<string> {
    const dir = await pythonTac([]);
    const path = join(dir, 'buildbot.tac');
    writeFileSync(path, edit(readFileSync(path, 'utf8')));
    return path;
  }

  it('connection_string, as the Buildbot docs say to edit it', async () => {
    const path = await edited((t) =>
      worker('connection_string=connection_string')(
        t.replace("buildmaster_host = 'master.example.org'\nport = 9999\n", "buildmaster_host = None\nport = None\nconnection_string = 'tls:master.example.org:9989:trustRoots=/etc/ca'\n"),
      ),
    );
    const c = readTac(path);
    assert.equal(c.connection, 'tls:master.example.org:9989:trustRoots=/etc/ca');
    const [call] = await pythonWorkerCalls([path]);
    assert.equal((call as { kwargs: Record<string, unknown> }).kwargs.connection_string, c.connection);
  });

  it("4.x's path= (the msgpack endpoint's URL path): taken over msgpack, ignored over PB as 4.x's Worker ignores it", async () => {
    const msgpack = await edited((t) => worker("path='buildbot/msgpack'")(t.replace("protocol = 'pb'", "protocol = 'msgpack_experimental_v7'")));
    assert.equal(readTac(msgpack).msgpackPath, 'buildbot/msgpack');
    assert.equal(readTac(await edited(worker("path='buildbot/msgpack'"))).msgpackPath, undefined);
    assert.equal(readTac(await edited(worker('path=None'))).msgpackPath, undefined);
    assert.throws(() => readTac(writeTacCopy(msgpack, (t) => t.replace("path='buildbot/msgpack'", 'path=3'))), { code: 'TAC_INVALID', message: /Worker's path must be a str or None, not 3/ });
  });

  it('unicode_encoding, keepaliveTimeout (ignored, as buildbot-worker does) and literals in the call', async () => {
    const path = await edited(worker("unicode_encoding='latin-1', keepaliveTimeout=30"));
    assert.equal(readTac(path).unicodeEncoding, 'latin-1');
    const p2 = await edited((t) => t.replace('s = Worker(buildmaster_host, port,', "s = Worker('other.example', 0x1F90,").replace('keepalive, umask=umask', '-0 + 0 if False else 0, umask=umask'));
    assert.throws(() => readTac(p2), { code: 'TAC_UNSUPPORTED' });
    const p3 = await edited((t) => t.replace('s = Worker(buildmaster_host, port,', "s = Worker('other.example', 0x1F90,"));
    assert.equal(readTac(p3).connection, 'tcp:host=other.example:port=8080');
  });

  it('Python literal forms: escapes, raw and adjacent strings, True/False, underscores, comments, semicolons, continuations', async () => {
    const path = await edited((t) =>
      t
        .replace("workername = 'bob'", "workername = 'b\\x6f' \"b\"  # the name\n")
        .replace("passwd = 'pw'", "passwd = r'a\\b' '\\u00e9\\q' \\\n    '\\101'")
        .replace('keepalive = 600', 'keepalive = 1_200; pass;')
        .replace('maxdelay = 300', 'maxdelay = 0o17')
        .replace('use_tls = 0', 'use_tls = True')
        .replace('delete_leftover_dirs = 0', 'delete_leftover_dirs = (\n    False\n)'),
    );
    const [call] = await pythonWorkerCalls([path]);
    assert.equal(typeof call, 'object', String(call));
    const c = readTac(path);
    assert.deepEqual([c.workername, c.password, c.keepalive, c.maxdelay, c.connection, c.deleteLeftoverDirs], [
      ...(call as { args: unknown[] }).args.slice(2, 4),
      1200,
      15,
      'tls:host=master.example.org:port=9999',
      false,
    ]);
  });

  it('imports in other forms, pass, and if/else', async () => {
    const path = await edited((t) =>
      t
        .replace('import os\n', 'import os.path as osp, os\npass\n')
        .replace('from buildbot_worker.bot import Worker', 'from buildbot_worker.pb import (\n    Worker,\n)')
        .replace('keepalive = 600', "if workername != 'bob':\n    keepalive = 1\nelif port == 9999: keepalive = 2\nelse:\n    keepalive = 3"),
    );
    const c = readTac(path);
    assert.equal(c.keepalive, 2);
  });

  it('a tac written by bbgate reads back what was written', () => {
    const dir = tempDir();
    const settings: TacSettings = {
      basedir: '.',
      logRotate: true,
      logSize: 5,
      logCount: 'None',
      master: { connectionString: 'tcp:host=fd00\\:\\:1:port=1:timeout=5' },
      workername: 'w',
      password: '\'"\\\n\u2028',
      keepalive: 7,
      umask: '0o22',
      maxdelay: 9,
      numcpus: '3',
      allowShutdown: 'signal',
      maxretries: '4',
      useTls: false,
      deleteLeftoverDirs: true,
      proxyConnectionString: 'http://u:p%40ss@proxy:3128',
      protocol: 'pb',
    };
    writeFileSync(join(dir, 'buildbot.tac'), renderTac(settings));
    assert.deepEqual(readTac(join(dir, 'buildbot.tac')), parsed({
      basedir: dir,
      workername: 'w',
      password: '\'"\\\n\u2028',
      connection: 'tcp:host=fd00\\:\\:1:port=1:timeout=5',
      proxyConnectionString: 'http://u:p%40ss@proxy:3128',
      keepalive: 7,
      umask: 0o22,
      maxdelay: 9,
      maxretries: 4,
      numcpus: 3,
      allowShutdown: 'signal',
      deleteLeftoverDirs: true,
      protocol: 'pb',
      usePTY: false,
      logRotate: { size: 5, count: null },
    }));
  });
});

describe('readTac refuses what it does not understand, saying where and why', () => {
  /** [title, edit of a real tac, code, message, whether Python compiles it] */
  const cases: [string, (t: string) => string, string, RegExp, boolean][] = [
    ['buildbot-worker --umask=022', (t) => t.replace('umask = None', 'umask = 022'), 'TAC_SYNTAX', /:32: 022: leading zeros in decimal integer literals are not permitted; for octal write 0o22 \(buildbot-worker create-worker --umask=022 writes this line; bbgate create-worker writes 0o22\)/, false],
    ['buildbot-worker --proxy-connection-string unquoted', (t) => t.replace('proxy_connection_string = None', 'proxy_connection_string = tcp:proxy:3128'), 'TAC_SYNTAX', /:39: "proxy_connection_string = tcp:\.\.\.": the value is not quoted/, false],
    ['an unquoted proxy URL with credentials', (t) => t.replace('proxy_connection_string = None', 'proxy_connection_string = http://user:s3cretpw@proxy:3128'), 'TAC_SYNTAX', /:39: "proxy_connection_string = http:\.\.\.": the value is not quoted/, false],
    ['an unterminated string', (t) => t.replace("passwd = 'pw'", "passwd = 's3cretpw"), 'TAC_SYNTAX', /:30: unterminated string literal$/, false],
    ['a bad indent', (t) => t.replace('keepalive = 600', '  keepalive = 600'), 'TAC_SYNTAX', /:31: unexpected indent/, false],
    ['a bad dedent', (t) => t.replace("    basedir = os.path.abspath", "  basedir = os.path.abspath"), 'TAC_SYNTAX', /:14: unindent does not match any outer indentation level/, false],
    ['an unclosed call', (t) => t.replace('s.setServiceParent(application)', 's.setServiceParent(application'), 'TAC_SYNTAX', /:48: "\(" was never closed/, false],
    ['a missing colon', (t) => t.replace("if basedir == '.':", "if basedir == '.'"), 'TAC_SYNTAX', /:12: expected ":" after the condition of "if", found the end of the line/, false],
    ['return outside a function', (t) => `${t}return\n`, 'TAC_SYNTAX', /:49: 'return' outside function/, false],
    ['a for loop over range()', (t) => `${t}for x in range(3):\n    pass\n`, 'TAC_UNSUPPORTED', /:49: calling Python's range\(\) is not supported/, true],
    ['a while loop', (t) => `${t}while False:\n    pass\n`, 'TAC_UNSUPPORTED', /:49: "while" statements are not supported: bbgate reads a buildbot.tac without running Python/, true],
    ['break outside a loop', (t) => `${t}if True: break\n`, 'TAC_SYNTAX', /:49: 'break' outside loop/, false],
    ['a function', (t) => `${t}def f():\n    return 1\n`, 'TAC_UNSUPPORTED', /:49: "def" statements are not supported/, true],
    ['another import', (t) => t.replace('import os\n', 'import os\nimport socket\n'), 'TAC_UNSUPPORTED', /:3: importing "socket" is not supported/, true],
    ['an f-string', (t) => t.replace("workername = 'bob'", "workername = f'bob'"), 'TAC_UNSUPPORTED', /:29: f-strings are not supported/, true],
    ['arithmetic', (t) => t.replace('keepalive = 600', 'keepalive = 60 * 10'), 'TAC_UNSUPPORTED', /:31: the operator "\*" is not supported/, true],
    ['a list where a number goes', (t) => t.replace('numcpus = None', 'numcpus = [1]'), 'TAC_INVALID', /:34: Worker's numcpus must be None or a whole number from 0 to 1000000, not a list/, true],
    ['a dict', (t) => t.replace('numcpus = None', 'numcpus = {}'), 'TAC_UNSUPPORTED', /:34: dicts and sets are not supported/, true],
    ['a lookup of an unset variable', (t) => t.replace("passwd = 'pw'", "passwd = os.environ.get('BBGATE_TEST_UNSET_PW')"), 'TAC_INVALID', /:30: Worker's passwd must be a str, not None: the environment variable BBGATE_TEST_UNSET_PW is not set$/, true],
    ['a subscript of an unset variable', (t) => t.replace("passwd = 'pw'", "passwd = os.environ['BBGATE_TEST_UNSET_PW']"), 'TAC_INVALID', /:30: os\.environ\[\.\.\.\]: the environment variable BBGATE_TEST_UNSET_PW is not set \(KeyError in Python\)/, true],
    ['a subscript of a str', (t) => t.replace("passwd = 'pw'", "passwd = 'pw'[0]"), 'TAC_UNSUPPORTED', /:30: subscripts of a str are not supported/, true],
    ['a float', (t) => t.replace('keepalive = 600', 'keepalive = 600.0'), 'TAC_UNSUPPORTED', /:31: floating-point numbers \(600\.0\) are not supported/, true],
    ['a print call', (t) => `${t}print('hi')\n`, 'TAC_UNSUPPORTED', /:49: calling Python's print\(\) is not supported/, true],
    ['an unknown protocol', (t) => t.replace("protocol = 'pb'", "protocol = 'msgpack'"), 'TAC_INVALID', /:40: unknown protocol "msgpack": buildbot-worker knows 'pb' and 'msgpack_experimental_v7'/, true],
    ['an undefined name', (t) => t.replace('maxdelay = 300', 'maxdelay = max_delay'), 'TAC_INVALID', /:33: name "max_delay" is not defined/, true],
    ['an unknown Worker keyword', worker('keep_alive=5'), 'TAC_INVALID', /:47: Worker\(\) got an unexpected keyword argument "keep_alive"/, true],
    ['a missing Worker argument', (t) => t.replace('s = Worker(buildmaster_host, port, workername, passwd, basedir,\n           keepalive, ', 's = Worker(buildmaster_host, port, workername, passwd, basedir,\n           '), 'TAC_INVALID', /:42: Worker\(\) is missing required argument keepalive/, true],
    ['no Worker attached', (t) => t.replace('s.setServiceParent(application)\n', ''), 'TAC_INVALID', /buildbot\.tac: no Worker\(\.\.\.\) is attached to the application/, true],
    ['a umask out of range', (t) => t.replace('umask = None', 'umask = 0o1000'), 'TAC_INVALID', /:32: Worker's umask must be None or a whole number from 0o0 to 0o777 \(octal: 0o022\), not 512/, true],
    ['a umask as a string', (t) => t.replace('umask = None', "umask = '022'"), 'TAC_INVALID', /:32: Worker's umask must be None or a whole number .*, not "022"/, true],
    ['an unknown allow_shutdown', (t) => t.replace('allow_shutdown = None', "allow_shutdown = 'sighup'"), 'TAC_INVALID', /:35: allow_shutdown must be None, 'signal' or 'file', not "sighup"/, true],
    ['a password of the wrong type', (t) => t.replace("passwd = 'pw'", 'passwd = 1234567'), 'TAC_INVALID', /:30: Worker's passwd must be a str, not an int$/, true],
    ['a connection string with host and port', (t) => worker("connection_string='tcp:m:1'")(t), 'TAC_INVALID', /:47: with a connection_string, buildmaster_host and port must be None/, true],
    ['a bad connection string', (t) => worker("connection_string='tcp:master'")(t.replace("buildmaster_host = 'master.example.org'\nport = 9999", 'buildmaster_host = None\nport = None')), 'ENDPOINT_SYNTAX', /:47: connection_string: "tcp:master": no port/, true],
    ['a bad proxy string', (t) => t.replace('proxy_connection_string = None', "proxy_connection_string = 'http://u:s3cretpw@proxy:3128/path'"), 'PROXY_SYNTAX', /:39: proxy_connection_string: .*without a path or query/, true],
    ['a port out of range', (t) => t.replace('port = 9999', 'port = 99999'), 'ENDPOINT_SYNTAX', /:28: buildmaster_host and port: .*port must be a whole number from 1 to 65535/, true],
    ['a LogFile elsewhere', (t) => t.replace('os.path.join(basedir, "twistd.log")', '"/var/log/worker.log"'), 'TAC_UNSUPPORTED', /:22: the LogFile writes to \/var\/log\/worker\.log, but bbgate logs to twistd\.log in the Worker's basedir/, true],
  ];

  it('each case, with Python agreeing on whether it compiles', async () => {
    const paths: string[] = [];
    for (const [, edit] of cases) {
      const dir = join(tempDir(), 'w');
      mkdirSync(dir);
      const real = await pythonTac([]);
      writeFileSync(join(dir, 'buildbot.tac'), edit(readFileSync(join(real, 'buildbot.tac'), 'utf8')).split(real).join(dir));
      paths.push(join(dir, 'buildbot.tac'));
    }
    const compiled = await pythonCompileErrors(paths);
    for (const [i, [title, , code, message, compiles]] of cases.entries()) {
      assert.throws(
        () => readTac(paths[i]!),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, code, `${title}: ${err.message}`);
          assert.match(err.message, message, title);
          assert.ok(err.message.startsWith(paths[i]!), `${title}: ${err.message}`);
          assert.ok(!err.message.includes('s3cretpw'), `${title} leaks the secret: ${err.message}`);
          return true;
        },
        title,
      );
      assert.equal(compiled[i] === null, compiles, `${title}: Python says ${JSON.stringify(compiled[i])}`);
      if (code === 'TAC_SYNTAX') assert.match(readTacLine(paths[i]!), new RegExp(`:${compiled[i]!.line}: `), `${title}: Python's line is ${compiled[i]!.line}`);
    }
  });

  it('a file that is not there, or not UTF-8', () => {
    const dir = tempDir();
    assert.throws(() => readTac(join(dir, 'buildbot.tac')), { code: 'TAC_INVALID', message: new RegExp(`^${join(dir, 'buildbot.tac')}: cannot read it: ENOENT`) });
    writeFileSync(join(dir, 'buildbot.tac'), Buffer.from([0x23, 0xff, 0x0a]));
    assert.throws(() => readTac(join(dir, 'buildbot.tac')), { code: 'TAC_SYNTAX', message: /it is not UTF-8 text/ });
  });
});

describe('readTac on mutated tacs, against Python compile()', () => {
  it('never crashes, never accepts what Python cannot compile, and calls TAC_SYNTAX only what Python cannot compile', async () => {
    const real = readFileSync(join(await pythonTac([]), 'buildbot.tac'), 'utf8');
    const seed = Number(process.env.BBGATE_SEED ?? 1);
    let state = seed;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const alphabet = ` \n\t'"\\#:()=.,;[]{}+-*0123456789abcdefxoN_ ifelse`;
    const dir = tempDir();
    const paths: string[] = [];
    for (let i = 0; i < 500; i++) {
      let text = real;
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
        const at = Math.floor(random() * text.length);
        const ch = alphabet[Math.floor(random() * alphabet.length)]!;
        const op = random();
        text = op < 1 / 3 ? text.slice(0, at) + text.slice(at + 1) : op < 2 / 3 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      paths.push(join(dir, `t${i}.tac`));
      writeFileSync(paths[i]!, text);
    }
    const compiled = await pythonCompileErrors(paths);
    for (const [i, path] of paths.entries()) {
      let code = 'accepted';
      try {
        readTac(path);
      } catch (err) {
        code = (err as { code?: string }).code ?? `crash: ${(err as Error).stack}`;
      }
      const where = `seed ${seed}, ${path}: bbgate ${code}, Python ${JSON.stringify(compiled[i])}`;
      assert.ok(!code.startsWith('crash'), where);
      if (compiled[i] !== null) assert.notEqual(code, 'accepted', where);
      if (code === 'TAC_SYNTAX') assert.notEqual(compiled[i], null, where);
    }
  });
});

/** The "file:line:" head of readTac's error for a tac. */
function readTacLine(path: string): string {
  try {
    readTac(path);
    return '';
  } catch (err) {
    return (err as Error).message.slice(0, (err as Error).message.indexOf(': ') + 2);
  }
}
