// buildbot.tac files configured from the environment, as container images write
// them (the official buildbot-worker image's shapes, old and new, and bbgate's
// own docker/buildbot.tac): bbgate's evaluator against real Python running the
// same file with the same environment, its errors (file:line, what to change),
// its bounds, and the codecs unicode_encoding names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { masterConnectionString } from '../../src/address/master-address.js';
import { fnmatch } from '../../src/worker/python/glob.js';
import { lookupCodec } from '../../src/worker/python/codec.js';
import type { WorkerConfig } from '../../src/worker/config.js';
import { readTac } from '../../src/worker/tac/read.js';
import { python, tempDir } from './support.js';

const IMAGE_TAC = fileURLToPath(new URL('../../../docker/buildbot.tac', import.meta.url));
const GLOB_MODULE = new URL('../../src/worker/python/glob.js', import.meta.url).href;

/** The official image's tac as of 2024 (twisted.python.log to stdout), in its constructs; written here, not copied. */
const LEGACY_LOG_TAC = `import fnmatch
import os
import sys

from twisted.application import service
from twisted.python.log import FileLogObserver
from twisted.python.log import ILogObserver

from buildbot_worker.bot import Worker

basedir = os.environ.get("BUILDBOT_BASEDIR",
    os.path.abspath(os.path.dirname(__file__)))
application = service.Application('buildbot-worker')

application.setComponent(ILogObserver, FileLogObserver(sys.stdout).emit)
buildmaster_host = os.environ.get("BUILDMASTER", 'localhost')
port = int(os.environ.get("BUILDMASTER_PORT", 9989))
protocol = os.environ.get("BUILDMASTER_PROTOCOL", 'pb')
workername = os.environ.get("WORKERNAME", 'docker')
passwd = os.environ.get("WORKERPASS")

blacklist = os.environ.get("WORKER_ENVIRONMENT_BLACKLIST", "WORKERPASS").split()
for name in list(os.environ.keys()):
    for toremove in blacklist:
        if fnmatch.fnmatch(name, toremove):
            del os.environ[name]

keepalive = 600
umask = None
maxdelay = 300
allow_shutdown = None
maxretries = 10
delete_leftover_dirs = False

s = Worker(buildmaster_host, port, workername, passwd, basedir,
           keepalive, umask=umask, maxdelay=maxdelay, protocol=protocol,
           allow_shutdown=allow_shutdown, maxRetries=maxretries,
           delete_leftover_dirs=delete_leftover_dirs)
s.setServiceParent(application)
`;

/** Today's official shape: twisted.logger's textFileLogObserver behind a level filter. */
const LOGGER_TAC = LEGACY_LOG_TAC.replace(
  'from twisted.python.log import FileLogObserver\nfrom twisted.python.log import ILogObserver\n',
  'from twisted.logger import FilteringLogObserver\nfrom twisted.logger import ILogObserver\nfrom twisted.logger import LogLevelFilterPredicate\nfrom twisted.logger import textFileLogObserver\n',
).replace(
  'application.setComponent(ILogObserver, FileLogObserver(sys.stdout).emit)\n',
  'application.setComponent(\n    ILogObserver,\n    FilteringLogObserver(\n        textFileLogObserver(sys.stdout), predicates=[LogLevelFilterPredicate()]\n    ),\n)\n',
);

/** The 2017 shape: no BUILDBOT_BASEDIR, no protocol, no delete_leftover_dirs. */
const OLD_TAC = LEGACY_LOG_TAC.replace('os.environ.get("BUILDBOT_BASEDIR",\n    os.path.abspath(os.path.dirname(__file__)))', 'os.path.abspath(os.path.dirname(__file__))')
  .replace('protocol = os.environ.get("BUILDMASTER_PROTOCOL", \'pb\')\n', '')
  .replace(' protocol=protocol,', '')
  .replace(',\n           delete_leftover_dirs=delete_leftover_dirs)', ')');

/** A hand-written variant: os.getenv, os.environ[...], `in`, `is`, `not`, `and`/`or`, break, an old `usepty`, logging to stderr. */
const HAND_TAC = `import os, sys
from twisted.application import service
from twisted.logger import ILogObserver, textFileLogObserver
from buildbot_worker.bot import Worker

basedir = os.path.abspath(os.path.dirname(__file__))
application = service.Application('buildbot-worker')
application.setComponent(ILogObserver, textFileLogObserver(sys.stderr))
host = os.getenv('MASTER_HOST', 'localhost')
port = 9989
if 'MASTER_PORT' in os.environ and os.environ['MASTER_PORT'].strip():
    port = int(os.environ['MASTER_PORT'])
passwd = os.environ.pop('WORKERPASS', None)
if passwd is None or not passwd:
    passwd = 'unset'
hidden = ['TOKEN', 'KEY']
for name in list(os.environ):
    for word in hidden:
        if word in name.upper().split('_'):
            del os.environ[name]
            break
    else:
        continue
os.environ['BUILD_FLAVOUR'] = os.environ.get('BUILD_FLAVOUR') or 'default'
usepty = 0
s = Worker(host, port, os.getenv('WORKERNAME', 'hand'), passwd, basedir, 600, usepty,
           maxRetries=int(os.environ.get('RETRIES', '3')) or None)
s.setServiceParent(application)
`;

const PASSWORD = 's3cret-Pa55';

interface Case {
  title: string;
  tac: string;
  env: Record<string, string>;
}

/** What a WorkerConfig says of the Worker call and the environment, in the shape the Python side reports. */
function projection(config: WorkerConfig, env: Record<string, string>): unknown {
  const after = { ...env };
  for (const name of config.environ?.unset ?? []) delete after[name];
  Object.assign(after, config.environ?.set ?? {});
  return {
    connection: config.connection,
    name: config.workername,
    passwd: config.password,
    basedir: config.basedir,
    maxretries: config.maxretries ?? null,
    environ: Object.keys(after).sort(),
  };
}

/** Runs each tac in real Python (Twisted's real modules, Worker replaced by a recorder) with exactly `env` as os.environ. */
function pythonRuns(cases: { path: string; env: Record<string, string> }[]): Promise<unknown[]> {
  return python(
    `import os, types
calls = []
class Worker:
    def __init__(self, *args, **kwargs):
        calls.append((args, kwargs))
    def setServiceParent(self, parent):
        pass
stub = types.ModuleType('buildbot_worker.bot')
stub.Worker = Worker
import buildbot_worker
sys.modules['buildbot_worker.bot'] = stub
params = ['buildmaster_host', 'port', 'name', 'passwd', 'basedir', 'keepalive']
out = []
saved = dict(os.environ)
for case in data:
    del calls[:]
    os.environ.clear()
    os.environ.update(case['env'])
    try:
        exec(compile(open(case['path'], encoding='utf-8').read(), case['path'], 'exec'), {'__file__': case['path'], '__name__': '__builtin__'})
        args, kwargs = calls[0]
        bound = dict(zip(params, args))
        bound.update(kwargs)
        out.append({'bound': bound, 'environ': sorted(os.environ.keys())})
    except BaseException as e:
        out.append('%s: %s' % (type(e).__name__, e))
os.environ.clear()
os.environ.update(saved)
print(json.dumps(out))`,
    cases,
  );
}

const BASE_ENV = { PATH: '/usr/bin:/bin', HOME: '/home/buildbot', WORKERPASS: PASSWORD };
/** The variables bbgate's image tac always removes, whatever WORKER_ENVIRONMENT_BLACKLIST says. */
const IMAGE_SECRETS = { BBGATE_PROXY: 'http://u:p@proxy:3128', BBGATE_PROXY_PASSWORD: 'proxy-pw', BBGATE_PASSWORD: 'probe-pw' };

describe('container tacs run as Python runs them', () => {
  const cases: Case[] = [
    ['the 2024 tac, defaults', LEGACY_LOG_TAC, BASE_ENV],
    ['the 2024 tac, all set', LEGACY_LOG_TAC, { ...BASE_ENV, BUILDMASTER: 'master.example', BUILDMASTER_PORT: ' 1_234 ', WORKERNAME: 'w9', BUILDBOT_BASEDIR: '/srv/worker' }],
    ['the 2024 tac, a blacklist of patterns', LEGACY_LOG_TAC, { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: ' WORKERPASS\tSECRET_*  A?C [xy]Z [!a]B ', SECRET_TOKEN: 't', SECRET_: 'u', ABC: '1', AC: '2', xZ: '3', zZ: '4', bB: '5', aB: '6' }],
    ['the 2024 tac, a blacklist without WORKERPASS', LEGACY_LOG_TAC, { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: 'HOME' }],
    ['the 2024 tac, an empty blacklist', LEGACY_LOG_TAC, { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: '' }],
    ["today's tac (twisted.logger)", LOGGER_TAC, { ...BASE_ENV, BUILDMASTER: '::1', BUILDMASTER_PORT: '9999' }],
    ['the 2017 tac', OLD_TAC, { ...BASE_ENV, WORKERNAME: 'old' }],
    ["bbgate's image tac, defaults", '', BASE_ENV],
    ["bbgate's image tac, a connection string and a proxy", '', { ...BASE_ENV, BBGATE_CONNECTION: 'tls:host=m.example:port=9989', BBGATE_PROXY: 'http://u:p@proxy:3128' }],
    ["bbgate's image tac, an empty connection string", '', { ...BASE_ENV, BBGATE_CONNECTION: '', BUILDMASTER: 'm2' }],
    ["bbgate's image tac, a blacklist naming none of the secrets", '', { ...BASE_ENV, ...IMAGE_SECRETS, WORKER_ENVIRONMENT_BLACKLIST: 'HOME' }],
    ["bbgate's image tac, an empty blacklist", '', { ...BASE_ENV, ...IMAGE_SECRETS, WORKER_ENVIRONMENT_BLACKLIST: '' }],
    ['a hand-written tac', HAND_TAC, { ...BASE_ENV, MASTER_PORT: '4321', API_TOKEN: 'x', KEYBOARD: 'y', my_key: 'z', RETRIES: '0' }],
    ['a hand-written tac, nothing set', HAND_TAC, { PATH: '/bin', BUILD_FLAVOUR: 'debug' }],
    // os.environ iterates a snapshot of its names (os._Environ.__iter__), so deleting or adding while looping over it is fine.
    ['deleting while looping over os.environ.keys()', LEGACY_LOG_TAC.replace('list(os.environ.keys())', 'os.environ.keys()'), { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: 'WORKERPASS SECRET_*', SECRET_A: 'a', SECRET_B: 'b' }],
    ['deleting while looping over os.environ', LEGACY_LOG_TAC.replace('list(os.environ.keys())', 'os.environ'), { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: 'WORKERPASS SECRET_*', SECRET_A: 'a' }],
    ['adding while looping over os.environ', LEGACY_LOG_TAC.replace('for name in list(os.environ.keys()):', "for name in os.environ:\n    os.environ[os.path.join(name, 'COPY')] = 'x'\nfor name in list(os.environ.keys()):"), BASE_ENV],
  ].map(([title, tac, env]) => ({ title, tac, env }) as Case);

  it('the same Worker arguments and the same environment afterwards', async () => {
    const paths = cases.map((c) => (c.tac === '' ? IMAGE_TAC : writeTac(c.tac)));
    const py = await pythonRuns(cases.map((c, i) => ({ path: paths[i]!, env: c.env })));
    for (const [i, c] of cases.entries()) {
      const got = py[i] as { bound: Record<string, unknown>; environ: string[] } | string;
      assert.equal(typeof got, 'object', `${c.title}: Python says ${String(got)}`);
      const { bound, environ } = got as { bound: Record<string, unknown>; environ: string[] };
      const config = readTac(paths[i]!, c.env);
      const connection = typeof bound.connection_string === 'string' ? bound.connection_string : masterConnectionString(bound.buildmaster_host as string, bound.port as number, false);
      assert.deepEqual(
        projection(config, c.env),
        { connection, name: bound.name, passwd: bound.passwd, basedir: bound.basedir, maxretries: bound.maxRetries ?? null, environ },
        c.title,
      );
      assert.equal(config.proxyConnectionString ?? null, bound.proxy_connection_string ?? null, c.title);
      assert.equal(config.logTo, c.tac === HAND_TAC ? 'stderr' : 'stdout', c.title);
      assert.equal(config.logRotate, undefined, `${c.title}: no twistd.log rotation when logging to a stream`);
      assert.ok(!JSON.stringify(config.environ?.set ?? {}).includes(PASSWORD), c.title);
    }
  });

  it('WORKERPASS is removed by default, and the blacklist patterns match as fnmatch does', () => {
    const config = readTac(writeTac(LEGACY_LOG_TAC), { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: 'WORKERPASS SECRET_*', SECRET_A: 'a', KEEP: 'k' });
    assert.deepEqual(config.environ, { unset: ['WORKERPASS', 'SECRET_A'], set: {} });
    assert.equal(config.password, PASSWORD);
    assert.equal(config.usePTY, false);
    const image = readTac(IMAGE_TAC, { ...BASE_ENV, BBGATE_PROXY: 'http://u:p@proxy:3128' });
    assert.deepEqual(image.environ?.unset, ['WORKERPASS', 'BBGATE_PROXY'], "the image's tac also hides the proxy's credentials");
    for (const blacklist of ['HOME', '', 'NOTHING_MATCHES']) {
      const own = readTac(IMAGE_TAC, { ...BASE_ENV, ...IMAGE_SECRETS, WORKER_ENVIRONMENT_BLACKLIST: blacklist });
      assert.deepEqual(
        [...(own.environ?.unset ?? [])].sort(),
        ['WORKERPASS', ...Object.keys(IMAGE_SECRETS), ...(blacklist === 'HOME' ? ['HOME'] : [])].sort(),
        `the image's tac removes the password and bbgate's secrets whatever the blacklist (${JSON.stringify(blacklist)})`,
      );
      assert.equal(own.password, PASSWORD);
      assert.equal(own.proxyConnectionString, IMAGE_SECRETS.BBGATE_PROXY, 'read before it is removed');
    }
    assert.equal(image.connection, 'tcp:host=localhost:port=9989');
    assert.equal(image.workername, 'docker');
    assert.equal(image.basedir, join(IMAGE_TAC, '..'));
  });

  it('fnmatch agrees with Python on names and patterns', async () => {
    const names = ['WORKERPASS', 'workerpass', 'SECRET_', 'SECRET_X', 'A\nB', 'ABC', 'A-C', 'a]b', '[x', 'x*y', 'é', ''];
    const patterns = ['WORKERPASS', 'SECRET_*', '*', '?', 'A?C', '[!A]*', '[a-c]*', '[]]*', 'a[]]b', '[x', '[!]x', 'x[*]y', '*[é]', 'A*B', '[z-a]*', '[!-]*', '\\*'];
    const pairs = names.flatMap((n) => patterns.map((p) => [n, p] as const));
    const want = await python<boolean[]>('import fnmatch\nprint(json.dumps([fnmatch.fnmatch(n, p) for n, p in data]))', pairs);
    for (const [i, [n, p]] of pairs.entries()) assert.equal(fnmatch(n, p), want[i], `fnmatch(${JSON.stringify(n)}, ${JSON.stringify(p)})`);
  });

  it('fnmatch does not backtrack on patterns of many stars, as Python 3.11 does not (its atomic groups), and gives the same answers', async () => {
    const names = ['a'.repeat(400), `${'a'.repeat(400)}b`, `${'ab'.repeat(200)}c`];
    const patterns = ['*a*a*a*a*a*a*b', '*a*a*a*a*a*a*', '*?a*[ab]*a*b*', 'a*b*a*b*c', '*ab*ab*ab*b', '**a**b'];
    const pairs = names.flatMap((n) => patterns.map((p) => [n, p] as const));
    const want = await python<boolean[]>('import fnmatch\nprint(json.dumps([fnmatch.fnmatch(n, p) for n, p in data]))', pairs);
    // In a child with a deadline: a backtracking regular expression blocks its thread for hours, past any test timeout.
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `import { fnmatch } from ${JSON.stringify(GLOB_MODULE)};\nconst pairs = ${JSON.stringify(pairs)};\nconsole.log(JSON.stringify(pairs.map(([n, p]) => fnmatch(n, p))));`], { timeout: 30_000, encoding: 'utf8' });
    assert.equal(child.signal, null, 'fnmatch was still matching after 30 s');
    assert.deepEqual(JSON.parse(child.stdout), want);
  });
});

describe('container tacs: what bbgate refuses, saying where and what to change', () => {
  const cases: [string, string, Record<string, string>, string, RegExp][] = [
    ['no WORKERPASS', LEGACY_LOG_TAC, { PATH: '/bin' }, 'TAC_INVALID', /:20: Worker's passwd must be a str, not None: the environment variable WORKERPASS is not set$/],
    ['a port that is not a number', LEGACY_LOG_TAC, { ...BASE_ENV, BUILDMASTER_PORT: `x${PASSWORD}` }, 'TAC_INVALID', /:17: invalid literal for int\(\) with base 10 \(from the environment variable BUILDMASTER_PORT\): not a whole number/],
    ['the November 2024 bug: int() of the protocol', LEGACY_LOG_TAC.replace('protocol = os.environ.get("BUILDMASTER_PROTOCOL", \'pb\')', 'protocol = int(os.environ.get("BUILDMASTER_PROTOCOL", \'pb\'))'), BASE_ENV, 'TAC_INVALID', /:18: invalid literal for int\(\) with base 10 \(the default for the unset environment variable BUILDMASTER_PROTOCOL\)/],
    ['two patterns matching one name', LEGACY_LOG_TAC, { ...BASE_ENV, WORKER_ENVIRONMENT_BLACKLIST: 'WORKERPASS WORKER*' }, 'TAC_INVALID', /:26: del os\.environ\[\.\.\.\]: the environment variable WORKERPASS is not set \(KeyError in Python\)/],
    ['a while loop', LEGACY_LOG_TAC.replace('for name in list(os.environ.keys()):', 'while False:\n    pass\nfor name in list(os.environ.keys()):'), BASE_ENV, 'TAC_UNSUPPORTED', /:23: "while" statements are not supported: .*understands .*`for` loops over lists and `del`/],
    ['os.environ.items()', LEGACY_LOG_TAC.replace('list(os.environ.keys())', 'os.environ.items()'), BASE_ENV, 'TAC_UNSUPPORTED', /:23: the attribute \.items of os\.environ is not supported/],
    ['a list comprehension', LEGACY_LOG_TAC.replace('list(os.environ.keys())', '[n for n in os.environ]'), BASE_ENV, 'TAC_UNSUPPORTED', /:23: list comprehensions are not supported/],
    ['unpacking', LEGACY_LOG_TAC.replace('for name in list(os.environ.keys()):', 'for name, value in os.environ.items():'), BASE_ENV, 'TAC_UNSUPPORTED', /:23: unpacking in a "for" \(for a, b in \.\.\.\) is not supported/],
    ['an observer writing elsewhere', LEGACY_LOG_TAC.replace('FileLogObserver(sys.stdout)', 'FileLogObserver(open("/tmp/log", "w"))'), BASE_ENV, 'TAC_UNSUPPORTED', /:15: calling Python's open\(\) is not supported/],
    ['a filter with a level', LOGGER_TAC.replace('LogLevelFilterPredicate()', 'LogLevelFilterPredicate(defaultLogLevel=None)'), BASE_ENV, 'TAC_UNSUPPORTED', /:20: LogLevelFilterPredicate\(\) with arguments is not supported/],
    ['a usepty of 2', LEGACY_LOG_TAC.replace('keepalive, umask=umask', 'keepalive, 2, umask=umask'), BASE_ENV, 'TAC_INVALID', /:36: usePTY must be None, 0, 1, True or False, not 2/],
    ['an unknown unicode_encoding', LEGACY_LOG_TAC.replace('umask=umask,', "umask=umask, unicode_encoding='koi8-r',"), BASE_ENV, 'TAC_UNSUPPORTED', /:36: unicode_encoding "koi8-r" is not supported: bbgate knows utf-8, latin-1, ascii and cp1252/],
    // A value read from the environment (here the password) is named, never quoted, however the tac transformed it.
    ['the password as the protocol', LEGACY_LOG_TAC.replace('os.environ.get("BUILDMASTER_PROTOCOL", \'pb\')', "os.environ['WORKERPASS'].strip()"), BASE_ENV, 'TAC_INVALID', /:18: unknown protocol \(a str from the environment variable WORKERPASS\): buildbot-worker knows/],
    ['the password as allow_shutdown', LEGACY_LOG_TAC.replace('allow_shutdown = None', "allow_shutdown = passwd"), BASE_ENV, 'TAC_INVALID', /:20: allow_shutdown must be None, 'signal' or 'file', not a str from the environment variable WORKERPASS$/],
    ['the password as unicode_encoding', LEGACY_LOG_TAC.replace('umask=umask,', "umask=umask, unicode_encoding=passwd.lower(),"), BASE_ENV, 'TAC_UNSUPPORTED', /:36: unicode_encoding \(a str from the environment variable WORKERPASS\) is not supported/],
    ['the password as the port', LEGACY_LOG_TAC.replace('port = int(os.environ.get("BUILDMASTER_PORT", 9989))', "port = os.environ['WORKERPASS'].split()[0]"), BASE_ENV, 'TAC_INVALID', /:17: port must be a whole number, not a str from the environment variable WORKERPASS$/],
    ['the password as usepty', LEGACY_LOG_TAC.replace('keepalive, umask=umask', "keepalive, [os.path.join(passwd, 'x')][0], umask=umask"), BASE_ENV, 'TAC_INVALID', /:36: usePTY must be None, 0, 1, True or False, not a str from the environment variable WORKERPASS$/],
    ['the password as keepalive', LEGACY_LOG_TAC.replace('keepalive = 600', "keepalive = list(passwd.upper())"), BASE_ENV, 'TAC_INVALID', /:28: Worker's keepalive must be None or a whole number from 0 to \d+, not a list from the environment variable WORKERPASS$/],
    ['the password as a variable to delete', LEGACY_LOG_TAC.replace('passwd = os.environ.get("WORKERPASS")', 'passwd = os.environ.get("WORKERPASS")\ndel os.environ[os.path.dirname(os.path.join(os.environ["WORKERPASS"], "x"))]'), BASE_ENV, 'TAC_INVALID', /:21: del os\.environ\[\.\.\.\]: the environment variable whose name is a str from the environment variable WORKERPASS is not set/],
    ['the password as a variable to read', LEGACY_LOG_TAC.replace('passwd = os.environ.get("WORKERPASS")', 'passwd = os.environ[os.environ.get("WORKERPASS").lower()]'), BASE_ENV, 'TAC_INVALID', /:20: os\.environ\[\.\.\.\]: the environment variable whose name is a str from the environment variable WORKERPASS is not set \(KeyError in Python\)$/],
    ['the password as a variable to pop', LEGACY_LOG_TAC.replace('passwd = os.environ.get("WORKERPASS")', 'passwd = os.environ.pop(os.environ["WORKERPASS"])'), BASE_ENV, 'TAC_INVALID', /:20: os\.environ\.pop\(\): the environment variable whose name is a str from the environment variable WORKERPASS is not set/],
    ['a password ascii cannot encode', LEGACY_LOG_TAC.replace('umask=umask,', "umask=umask, unicode_encoding='ascii',"), { ...BASE_ENV, WORKERPASS: 'pässwort' }, 'TAC_INVALID', /:20: the password cannot be encoded in ascii \(UnicodeEncodeError in Python/],
  ];
  for (const [title, tac, env, code, message] of cases) {
    it(title, () => {
      const path = writeTac(tac);
      assert.throws(
        () => readTac(path, env),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, code, err.message);
          assert.match(err.message, message);
          assert.ok(err.message.startsWith(`${path}:`), err.message);
          assert.ok(!err.message.toLowerCase().includes(PASSWORD.toLowerCase()) && !err.message.includes('pässwort'), `leaks the password: ${err.message}`);
          return true;
        },
      );
    });
  }

  it('usepty 0, 1, True, False and None; unicode_encoding aliases', () => {
    for (const [value, want] of [['0', false], ['1', true], ['True', true], ['False', false], ['None', false]] as const) {
      const path = writeTac(LEGACY_LOG_TAC.replace('keepalive, umask=umask', `keepalive, ${value}, umask=umask`));
      assert.equal(readTac(path, BASE_ENV).usePTY, want, value);
    }
    for (const [alias, name] of [['Latin-1', 'latin-1'], ['iso8859_1', 'latin-1'], ['UTF8', 'utf-8'], ['us-ascii', 'ascii'], ['windows-1252', 'cp1252']]) {
      const path = writeTac(LEGACY_LOG_TAC.replace('umask=umask,', `umask=umask, unicode_encoding='${alias}',`));
      assert.equal(readTac(path, BASE_ENV).unicodeEncoding, name, alias);
    }
  });

  it('a runaway loop is an error, not a hang; deep nesting is an error, not a stack overflow', () => {
    const long = 'x'.repeat(5000);
    // 25 million iterations unbounded: the bound ends it (a hang would be the test's timeout).
    assert.throws(() => readTac(writeTac(`a = '${long}'\nfor i in a:\n    for j in a:\n        pass\n`), BASE_ENV), { code: 'TAC_UNSUPPORTED', message: /:[34]: the tac did more than 1000000 steps of work/ });
    for (const deep of [`x = ${'('.repeat(5000)}1${')'.repeat(5000)}\n`, `x = ${'not '.repeat(5000)}1\n`, `x = ${'-'.repeat(5000)}1\n`, `x = ${'['.repeat(5000)}${']'.repeat(5000)}\n`]) {
      assert.throws(() => readTac(writeTac(deep), BASE_ENV), { code: 'TAC_UNSUPPORTED', message: /:1: nesting deeper than 100 levels is not supported/ });
    }
    let nested = '';
    for (let i = 0; i < 150; i++) nested += `${' '.repeat(i)}if True:\n`;
    nested += `${' '.repeat(150)}pass\n`;
    assert.throws(() => readTac(writeTac(nested), BASE_ENV), { code: 'TAC_UNSUPPORTED', message: /nesting deeper than 100 levels/ });
    // Python compiles these to one n-ary BoolOp; a chain of postfix operations it refuses (RecursionError), bbgate too.
    for (const deep of [`x = os${'.path'.repeat(100_000)}\n`, `x = [0]${'[0]'.repeat(100_000)}\n`, `x = str${'()'.repeat(100_000)}\n`]) {
      assert.throws(() => readTac(writeTac(`import os\n${deep}`), BASE_ENV), { code: 'TAC_UNSUPPORTED', message: /:2: nesting deeper than 100 levels is not supported/ });
    }
  });

  it("the bound counts the work calls do, not only statements: a tac that makes or reads big values ends with the bound's error", () => {
    const big = 'x'.repeat(6000);
    const loops: [string, string][] = [
      ['a string doubling', "a = 'xxxxxxxx'\nfor i in 'abcdefghijklmnopqrstuvwxyzabcdefghij':\n    a = os.path.join(a, a)\n"],
      ['list() of a big value in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = list(s)\n"],
      ['list(os.environ) in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = list(os.environ)\n"],
      ['split() in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = s.split('y')\n    y = os.environ['SPACED'].split()\n"],
      ['lower() in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = s.lower()\n"],
      ['strip() in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = s.strip()\n"],
      ['"in" in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = 'q' in s\n"],
      ['len() in a loop', "s = os.environ['BIG']\nfor i in s:\n    x = len(s)\n"],
      ['int() in a loop', "s = os.environ['DIGITS']\nfor i in os.environ['BIG']:\n    x = int(s)\n"],
    ];
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`V${i}`, 'v']));
    const env = { ...BASE_ENV, ...many, BIG: big, SPACED: 'a '.repeat(3000), DIGITS: '1'.repeat(15).padStart(6000, ' ') };
    for (const [title, loop] of loops) {
      assert.throws(() => readTac(writeTac(`import os\n${loop}`), env), { code: 'TAC_UNSUPPORTED', message: /the tac did more than 1000000 steps of work/ }, title);
    }
  });

  it('long and/or chains give what Python gives, however long', async () => {
    const n = 100_000;
    const chains = [
      `${Array(n).fill("''").join(' or ')} or 'last'`,
      `${Array(n).fill("'x'").join(' and ')} and 'last'`,
      `${Array(n).fill("'' and 'no'").join(' or ')} or 'y' and 'last'`,
      `'first' or ${Array(n).fill('undefined_name').join(' or ')}`,
      `'' and ${Array(n).fill('undefined_name').join(' and ')} or 'last'`,
    ];
    const want = await python<string[]>('out = []\nfor c in data:\n    out.append(eval(c))\nprint(json.dumps(out))', chains);
    for (const [i, chain] of chains.entries()) {
      const tac = `from twisted.application import service\nfrom buildbot_worker.bot import Worker\napplication = service.Application('buildbot-worker')\nname = ${chain}\nWorker('localhost', 9989, name, 'pw', '.', 600).setServiceParent(application)\n`;
      assert.equal(readTac(writeTac(tac), BASE_ENV).workername, want[i], `chain ${i}`);
    }
  });
});

describe("str methods, int() and os.path.abspath as Python's", () => {
  const HEAD = "import os\nfrom twisted.application import service\nfrom buildbot_worker.bot import Worker\napplication = service.Application('buildbot-worker')\ns = os.environ['IN']\n";
  const TAIL = "Worker('localhost', 9989, 'w', 'pw', '.', 600).setServiceParent(application)\n";
  /** What the tac's `os.environ[...] = ` lines set, or the error's code. */
  function outputs(body: string, input: string): Record<string, string> | string {
    try {
      return readTac(writeTac(HEAD + body + TAIL), { IN: input }).environ?.set ?? {};
    } catch (err) {
      return (err as { code: string }).code;
    }
  }

  it("whitespace is str.isspace()'s in strip(), lstrip(), rstrip(), split() and int(); int() takes Unicode digits", async () => {
    const inputs = [
      ' \t\n\v\f\r a b \x1c\x1d\x1e\x1f', '\x85x\x85', '\xa0y\u3000', '\ufeffz\ufeff', '\u2028 a\u2029b \u202f\u205f', '\u1680c\u2000-\u200a',
      ' 12 ', '\x1c-3_4\x85', '\ufeff5', '\u0663\u0664', ' +\uff11_2\u3000', '\ud835\udfce\ud835\udfe1', '1__2', '_1', '1_', '\u00b2', '+', '0_0', '9007199254740991', 'İ ß Σ ΑΣ ǅ',
    ];
    const code = `
import posixpath
out = []
for s in data:
    o = {'STRIP': s.strip(), 'LSTRIP': s.lstrip(), 'RSTRIP': s.rstrip(), 'LOWER': s.lower(), 'UPPER': s.upper(), 'SPLIT_N': str(len(s.split())), 'SPLIT': '/'.join(s.split())}
    try:
        o['INT'] = str(int(s))
    except ValueError:
        o['INT'] = 'TAC_INVALID'
    out.append(o)
print(json.dumps(out))`;
    const want = await python<Record<string, string>[]>(code, inputs);
    const strBody = [
      "os.environ['STRIP'] = s.strip()",
      "os.environ['LSTRIP'] = s.lstrip()",
      "os.environ['RSTRIP'] = s.rstrip()",
      "os.environ['LOWER'] = s.lower()",
      "os.environ['UPPER'] = s.upper()",
      "parts = s.split()",
      "os.environ['SPLIT_N'] = str(len(parts))",
      "joined = ''",
      'for p in parts:',
      '    joined = os.path.join(joined, p)',
      "os.environ['SPLIT'] = joined",
      '',
    ].join('\n');
    for (const [i, input] of inputs.entries()) {
      const { INT: wantInt, ...wantStr } = want[i]!;
      const got = outputs(strBody, input);
      assert.deepEqual(got, wantStr, `str methods of ${JSON.stringify(input)}`);
      const int = outputs("os.environ['INT'] = str(int(s))\n", input);
      assert.deepEqual(typeof int === 'string' ? int : int.INT, wantInt, `int(${JSON.stringify(input)})`);
    }
  });

  it("os.path.abspath normalises as posixpath does: a leading '//' is kept, '///' is '/'", async () => {
    const paths = ['//x/../y', '///x/../y', '//', '/', 'a/../..', '//a//b/./c/..', '../x', '.', 'a/b/', '/..//../a', '//..', '', 'x//y/'];
    const dir = tempDir();
    const want = await python<string[]>(`import os\nos.chdir(${JSON.stringify(dir)})\nprint(json.dumps([os.path.abspath(p) for p in data]))`, paths);
    for (const [i, path] of paths.entries()) {
      const file = join(dir, 'buildbot.tac');
      writeFileSync(file, HEAD + "os.environ['ABS'] = os.path.abspath(s)\n" + TAIL);
      assert.equal(readTac(file, { IN: path }).environ?.set.ABS, want[i], `os.path.abspath(${JSON.stringify(path)})`);
    }
  });
});

describe('unicode_encoding: the codecs decode as Python does with errors="replace"', () => {
  it("a codec's name is found as codecs.lookup finds it: the same spellings accepted and refused", async () => {
    const names = [
      'utf_8_', 'u.t.f.8', 'utf-8', 'UTF8', 'utf 8', '  utf--8  ', 'utf.8', 'utf_8.', '.utf8', 'utf8.', 'utfé8', 'u8', 'U8', 'utf', 'cp65001', 'utf8_ucs4', 'utf-8-sig', 'x-utf8', '',
      'Latin-1', 'latin.1', 'latin_1', 'latin1', 'iso8859_1', 'iso-8859-1', 'iso88591', 'ISO_8859-1:1987', 'iso.8859.1', '8859', 'iso8859', 'l1', 'L1', 'latin', 'cp819', 'csISOLatin1', 'iso-ir-100',
      'cp1252', 'cp-1252', 'windows_1252', 'windows.1252', 'Windows-1252', '1252',
      'us.ascii', 'US-ASCII', 'ascii ', 'ansi_x3.4_1968', 'ANSI_X3.4-1968', 'ansi-x3-4-1968', 'iso_646.irv_1991', 'iso-646-irv-1991', '646', 'csASCII', 'iso646-us', 'IBM367', 'us', 'koi8-r',
    ];
    const want = await python<(string | null)[]>(
      `import codecs
ours = {'utf-8': 'utf-8', 'iso8859-1': 'latin-1', 'ascii': 'ascii', 'cp1252': 'cp1252'}
out = []
for n in data:
    try:
        out.append(ours.get(codecs.lookup(n).name))
    except LookupError:
        out.append(None)
print(json.dumps(out))`,
      names,
    );
    for (const [i, name] of names.entries()) assert.equal(lookupCodec(name)?.name ?? null, want[i], JSON.stringify(name));
  });

  it('every byte, for each codec bbgate knows', async () => {
    const bytes = Array.from({ length: 256 }, (_, b) => b);
    const names = ['utf-8', 'latin-1', 'ascii', 'cp1252'];
    const want = await python<string[]>('print(json.dumps([bytes(data["bytes"]).decode(n, "replace") for n in data["names"]]))', { bytes, names });
    for (const [i, name] of names.entries()) {
      assert.equal(lookupCodec(name)!.decoder().decode(Uint8Array.from(bytes)), want[i], name);
    }
    const split = lookupCodec('utf-8')!.decoder();
    assert.equal(split.decode(Uint8Array.of(0xc3), { stream: true }) + split.decode(Uint8Array.of(0xa9), { stream: true }), 'é', 'a character split across reads');
  });
});

/** Writes a tac into a fresh directory (a tac's basedir defaults to its directory). */
function writeTac(text: string): string {
  const path = join(tempDir(), 'buildbot.tac');
  writeFileSync(path, text);
  return path;
}
