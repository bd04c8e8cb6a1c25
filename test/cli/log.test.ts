// The worker's log: size rotation compared file for file with Twisted's own
// LogFile (what a buildbot-worker tac uses), and secrets kept out of every line.
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createWorkerLog } from '../../src/worker/log/logger.js';
import { formatLogLine, twistedTime } from '../../src/worker/log/pretty.js';
import { RotatingFile } from '../../src/worker/log/rotating-file.js';
import { python, tempDir } from './support.js';

interface Case {
  title: string;
  size: number;
  count: number | null;
  writes: string[];
  /** Files in the directory before the log is opened. */
  before?: Record<string, string>;
  /** Mode of a pre-existing twistd.log. */
  mode?: number;
}

type Listing = Record<string, { content: string; mode: number }>;

function listing(dir: string): Listing {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((name) => [name, { content: readFileSync(join(dir, name), 'utf8'), mode: statSync(join(dir, name)).mode & 0o777 }]),
  );
}

function setUp(dir: string, c: Case): void {
  for (const [name, content] of Object.entries(c.before ?? {})) writeFileSync(join(dir, name), content);
  if (c.mode !== undefined) chmodSync(join(dir, 'twistd.log'), c.mode);
}

const lines = (n: number, width = 10) => Array.from({ length: n }, (_, i) => `${String(i).padStart(width - 1, '.')}\n`);

const CASES: Case[] = [
  { title: 'rotates once the size is reached, keeping count files', size: 35, count: 3, writes: lines(30) },
  { title: 'unlimited count', size: 25, count: null, writes: lines(20) },
  { title: 'size 0 never rotates', size: 0, count: 3, writes: lines(20) },
  { title: 'count 0 still keeps .1, as Twisted does', size: 20, count: 0, writes: lines(10) },
  { title: 'a single write larger than the size', size: 10, count: 2, writes: ['x'.repeat(50) + '\n', 'y\n', 'z'.repeat(30) + '\n', 'w\n'] },
  {
    title: 'an existing log over the size, old files beyond the count, and files that are not rotations',
    size: 30,
    count: 2,
    writes: lines(8),
    before: { 'twistd.log': 'o'.repeat(40) + '\n', 'twistd.log.1': 'one\n', 'twistd.log.5': 'five\n', 'twistd.log.old': 'keep\n', 'twistd.log.0': 'zero\n', 'twistd.hostname': 'h\n' },
    mode: 0o640,
  },
];

describe('log rotation, file for file as Twisted LogFile does it', () => {
  for (const c of CASES) {
    it(c.title, async () => {
      const ours = tempDir();
      const theirs = tempDir();
      setUp(ours, c);
      setUp(theirs, c);
      const file = new RotatingFile(join(ours, 'twistd.log'), { size: c.size, count: c.count });
      for (const w of c.writes) file.write(w);
      file.close();
      await python(
        `from twisted.python.logfile import LogFile
f = LogFile.fromFullPath(data['path'], rotateLength=data['size'], maxRotatedFiles=data['count'])
for w in data['writes']:
    f.write(w)
f.close()
print('null')`,
        { path: join(theirs, 'twistd.log'), size: c.size, count: c.count, writes: c.writes },
      );
      assert.deepEqual(listing(ours), listing(theirs));
    });
  }

  it('rotate() on demand (SIGUSR1), and a rotation that cannot happen leaves the log in use', () => {
    const dir = tempDir();
    const file = new RotatingFile(join(dir, 'twistd.log'), { size: 0, count: null });
    file.write('a\n');
    file.rotate();
    file.write('b\n');
    file.rotate();
    file.write('c\n');
    assert.deepEqual(
      Object.fromEntries(Object.entries(listing(dir)).map(([k, v]) => [k, v.content])),
      { 'twistd.log': 'c\n', 'twistd.log.1': 'b\n', 'twistd.log.2': 'a\n' },
    );
    chmodSync(dir, 0o500);
    try {
      if (process.getuid?.() !== 0) {
        file.rotate();
        file.write('d\n');
        assert.equal(readFileSync(join(dir, 'twistd.log'), 'utf8'), 'c\nd\n');
      }
    } finally {
      chmodSync(dir, 0o700);
      file.close();
    }
  });
});

describe('the worker logger', () => {
  it('writes text lines by default, with credentials redacted by field name and by value', () => {
    const dir = tempDir();
    const log = createWorkerLog({ file: { path: join(dir, 'twistd.log'), rotation: { size: 0, count: null } }, secrets: ['hunter2!', 'p@ss w/"rd'] });
    log.logger.info({ password: 'anything', config: { proxy: { password: 'z' } }, headers: { 'proxy-authorization': 'Basic Zm9v' } }, 'fields');
    log.logger.warn({ url: 'http://u:hunter2!@proxy:3128' }, 'the master said "p@ss w/"rd" back');
    log.close();
    const lines = readFileSync(join(dir, 'twistd.log'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} \[-\] fields password=\[redacted\] config=\{"proxy":\{"password":"\[redacted\]"\}\} headers=\{"proxy-authorization":"\[redacted\]"\}$/);
    assert.match(lines[1]!, /\[-\] WARNING: the master said "\[redacted\]" back url=http:\/\/u:\[redacted\]@proxy:3128$/);
    for (const secret of ['anything', 'Zm9v', 'hunter2!', 'p@ss']) assert.ok(!lines.join('\n').includes(secret), secret);
  });

  it('writes JSON lines when asked (BBGATE_LOG_FORMAT=json), with credentials redacted by field name and by value', () => {
    const dir = tempDir();
    const log = createWorkerLog({ file: { path: join(dir, 'twistd.log'), rotation: { size: 0, count: null } }, format: 'json', secrets: ['hunter2!', 'p@ss w/"rd', 'abc'] });
    log.logger.info({ password: 'anything', passwd: 'x', config: { password: 'y', proxy: { password: 'z' } }, headers: { 'proxy-authorization': 'Basic Zm9v' } }, 'fields');
    log.logger.warn({ url: 'http://u:hunter2!@proxy:3128' }, 'the master said "p@ss w/"rd" back');
    log.logger.error({ err: new Error('login failed for hunter2!') }, 'error objects too');
    log.logger.info({ short: 'abc' }, 'secrets under 4 characters are not scrubbed from text: abc');
    log.close();
    const text = readFileSync(join(dir, 'twistd.log'), 'utf8');
    const entries = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(entries.length, 4);
    assert.match(String(entries[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(entries[0]!.pid, process.pid);
    assert.deepEqual(entries[0], {
      ...entries[0],
      level: 'info',
      msg: 'fields',
      password: '[redacted]',
      passwd: '[redacted]',
      config: { password: '[redacted]', proxy: { password: '[redacted]' } },
      headers: { 'proxy-authorization': '[redacted]' },
    });
    for (const secret of ['hunter2!', 'p@ss w/', 'Zm9v', 'anything']) assert.ok(!text.includes(secret), secret);
    assert.equal(entries[1]!.msg, 'the master said "[redacted]" back');
    assert.equal(entries[1]!.url, 'http://u:[redacted]@proxy:3128');
    assert.equal((entries[2]!.err as { message: string }).message, 'login failed for [redacted]');
    assert.equal(entries[3]!.msg, 'secrets under 4 characters are not scrubbed from text: abc');
  });

  it("formats lines as buildbot-worker's twistd.log has them: local time and offset, [-], warnings said", () => {
    const zone = process.env.TZ;
    try {
      // Node reads TZ again when it changes: the offset is the zone's at that moment (CET in January).
      process.env.TZ = 'Europe/Berlin';
      assert.equal(
        formatLogLine('{"level":"warn","time":"2026-01-31T12:00:00.123Z","pid":5,"code":"NET_REFUSED","delay":1.5,"host":"a b","msg":"retrying"}\n'),
        '2026-01-31 13:00:00+0100 [-] WARNING: retrying code=NET_REFUSED delay=1.5 host="a b"\n',
      );
      process.env.TZ = 'America/St_Johns';
      assert.equal(formatLogLine('{"level":"info","time":"2026-07-01T00:00:59.999Z","msg":"attached"}'), '2026-06-30 21:30:59-0230 [-] attached\n');
      process.env.TZ = 'UTC';
      assert.equal(formatLogLine('{"level":"fatal","time":"2026-07-01T00:00:00Z","msg":"crashed"}'), '2026-07-01 00:00:00+0000 [-] FATAL: crashed\n');
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    assert.equal(formatLogLine('Traceback (most recent call last):\n'), 'Traceback (most recent call last):\n');
  });

  it('shows control characters as \\xNN on a terminal, so a name from the network cannot rewrite it, and a line stays one line', () => {
    // A worker name that would retitle the terminal, clear it, back over text, and break the line.
    const name = 'w\x1b]0;owned\x07\x1b[2J\b\x7f\x9b1m\ttab\nnext';
    const line = JSON.stringify({ level: 'info', time: '2026-01-31T12:00:00.123Z', msg: `refused ${name}`, worker: name, bare: 'red\x1b[31m', peer: { name: 'c1\x85' } });
    const shown = 'w\\x1b]0;owned\\x07\\x1b[2J\\x08\\x7f\\x9b1m\\x09tab\\x0anext';
    assert.equal(
      formatLogLine(`${line}\n`),
      `${twistedTime('2026-01-31T12:00:00.123Z')} [-] refused ${shown} worker="${shown}" bare="red\\x1b[31m" peer={"name":"c1\\x85"}\n`,
    );
    // A quote or backslash in a quoted value cannot end the quote early.
    assert.equal(formatLogLine('{"level":"info","time":"t","msg":"m","v":"a \\"b\\\\"}'), 't [-] m v="a \\"b\\\\"\n');
    // A stack keeps its lines, each of them escaped; a line that is not JSON is escaped too.
    assert.equal(
      formatLogLine(JSON.stringify({ level: 'error', time: 't', msg: 'failed', err: { stack: 'Error: \x1b[2Jbad\n    at f (x.js:1:1)' } })),
      't [-] ERROR: failed err=\nError: \\x1b[2Jbad\n    at f (x.js:1:1)\n\n',
    );
    assert.equal(formatLogLine('crash \x1b[2J\x07\n'), 'crash \\x1b[2J\\x07\n');
  });
});
