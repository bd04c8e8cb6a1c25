// The file system commands, checked against the real buildbot-worker 3.7 commands run on the same
// arguments (updates compared one for one), and cpdir against the real `cp -R -P -p -v`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Tuple } from '../../src/pb/values/values.js';
import * as fsCommands from '../../src/worker/commands/fs.js';
import type { CommandSpec } from '../../src/worker/commands/types.js';
import { canSwitchToNobody, runAsNobody } from '../helpers/nobody.js';
import { fakeContext, python, runCommand, type Update } from './fs-fake-context.js';

/** Runs buildbot-worker's own command classes, with its own path resolution, on each case. */
const PY_FS_ORACLE = `
import json, sys
from buildbot_worker.pb import ProtocolCommandPb
from buildbot_worker.commands import registry

class FakeProtocolCommand:
    pass

out = []
for case in json.load(sys.stdin):
    pc = FakeProtocolCommand()
    pc.basedir = case['builderDir']
    pc.updates = []
    pc.send_update = pc.updates.extend
    args = dict(case['args'])
    ProtocolCommandPb.protocol_args_setup(pc, case['command'], args)
    cmd = registry.getFactory(case['command'])(pc, 'step', args)
    cmd.running = True
    cmd.start()
    out.append([[k, list(v) if isinstance(v, tuple) else v] for k, v in pc.updates])
print(json.dumps(out))
`;

interface Case {
  command: 'mkdir' | 'stat' | 'glob' | 'listdir' | 'rmfile';
  args: Record<string, string>;
}

const SPECS: Record<Case['command'], CommandSpec> = {
  mkdir: fsCommands.mkdir,
  stat: fsCommands.stat,
  glob: fsCommands.glob,
  listdir: fsCommands.listdir,
  rmfile: fsCommands.rmfile,
};

/** The same tree wherever it is made, times included. */
async function makeTree(builderDir: string): Promise<void> {
  const files: Record<string, string> = {
    'file.txt': 'hello\n',
    'src/a.c': 'int a;\n',
    'src/b.h': '',
    'src/sub/c.c': 'int c;\n',
    'src/sub/deep/d.c': 'int d;\n',
    'src/.hidden.c': '',
    'src/.hdir/e.c': '',
    'ünï cödé.txt': 'x',
    'br[acket].txt': 'x',
  };
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(builderDir, name, '..'), { recursive: true });
    await writeFile(join(builderDir, name), content);
  }
  await mkdir(join(builderDir, 'empty'));
  await symlink('src', join(builderDir, 'link-to-src'));
  await symlink('nowhere', join(builderDir, 'dangling'));
  for (const name of Object.keys(files)) await utimes(join(builderDir, name), 1_600_000_000.5, 1_600_000_100.25);
}

/** Updates with the builder directory written as <B>, and file lists sorted (both sides list directories unsorted). */
function normalise(updates: [string, unknown][], builderDir: string): [string, unknown][] {
  const fix = (v: unknown): unknown => (typeof v === 'string' ? v.split(builderDir).join('<B>') : v);
  return updates.map(([k, v]) => [k, Array.isArray(v) ? (k === 'files' ? v.map(fix).sort() : [...v]) : fix(v)]);
}

async function ours(c: Case, builderDir: string): Promise<[string, unknown][]> {
  const run = fakeContext(c.args, { builderDir });
  await runCommand(SPECS[c.command], run);
  return run.updates.map((u: Update) => [u.key, u.value]);
}

describe('file system commands (against buildbot-worker 3.7 itself)', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-fs-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  async function compare(name: string, cases: Case[], mutates: boolean): Promise<void> {
    const mine = join(root, `${name}-ours`, 'builder');
    const theirs = mutates ? join(root, `${name}-python`, 'builder') : mine;
    await makeTree(mine);
    if (mutates) await makeTree(theirs);
    const expected = python(PY_FS_ORACLE, cases.map((c) => ({ ...c, builderDir: theirs }))) as [string, unknown][][];
    for (const [i, c] of cases.entries()) {
      const got = await ours(c, mine);
      assert.deepEqual(normalise(got, mine), normalise(expected[i]!, theirs), `${c.command} ${JSON.stringify(c.args)}`);
    }
  }

  it('mkdir: new, existing, over a file, under a file, over a dangling link, too long, absolute, trailing slash', async () => {
    await compare(
      'mkdir',
      [
        { command: 'mkdir', args: { dir: 'new/a/b' } },
        { command: 'mkdir', args: { dir: 'src' } },
        { command: 'mkdir', args: { dir: 'file.txt' } },
        { command: 'mkdir', args: { dir: 'file.txt/x/y' } },
        { command: 'mkdir', args: { dir: 'dangling' } },
        { command: 'mkdir', args: { dir: 'dangling/x' } },
        { command: 'mkdir', args: { dir: 'x'.repeat(300) } },
        { command: 'mkdir', args: { dir: 'trail/ing/' } },
        { command: 'mkdir', args: { dir: 'link-to-src/made' } },
      ],
      true,
    );
  });

  it('stat: files, directories through links, workdir, errors', async () => {
    await compare(
      'stat',
      [
        { command: 'stat', args: { file: 'file.txt' } },
        { command: 'stat', args: { file: 'a.c', workdir: 'src' } },
        { command: 'stat', args: { file: 'link-to-src' } },
        { command: 'stat', args: { file: 'missing' } },
        { command: 'stat', args: { file: 'file.txt/x' } },
        { command: 'stat', args: { file: 'dangling' } },
        { command: 'stat', args: { file: 'ünï cödé.txt', workdir: '' } },
      ],
      false,
    );
  });

  it('glob: wildcards, classes, **, hidden names, links, literal paths, trailing slashes', async () => {
    const patterns = [
      '*.txt',
      'src/*.c',
      'src/**/*.c',
      'src/**',
      '**/*.c',
      'src/**/',
      'src/.*',
      'src/**/.*',
      'link-to-src/**/*.c',
      '*/',
      'src/*/',
      '[!f]*',
      'br[[]acket].txt',
      'br[acket].txt',
      'src/[a-b].*',
      'src/[!a-b].*',
      'src/[z-a].c',
      '??le.txt',
      'file.txt',
      'missing',
      'missing/*',
      '*',
      'ünï*',
      'src/sub/../a.c',
      'src/s[u',
      '*/*/*.c',
      'd*',
    ];
    await compare('glob', patterns.map((path) => ({ command: 'glob', args: { path } })), false);
  });

  it('listdir and rmfile: contents, missing, not a directory, a directory, a dangling link', async () => {
    await compare(
      'listdir',
      [
        { command: 'listdir', args: { dir: 'src' } },
        { command: 'listdir', args: { dir: '' } },
        { command: 'listdir', args: { dir: 'missing' } },
        { command: 'listdir', args: { dir: 'file.txt' } },
      ],
      false,
    );
    await compare(
      'rmfile',
      [
        { command: 'rmfile', args: { path: 'file.txt' } },
        { command: 'rmfile', args: { path: 'file.txt' } },
        { command: 'rmfile', args: { path: 'src' } },
        { command: 'rmfile', args: { path: 'dangling' } },
        { command: 'rmfile', args: { path: 'src/a.c/x' } },
      ],
      true,
    );
  });
});

describe('file system commands: update shapes', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-fs-shape-'));
    await makeTree(join(root, 'builder'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('stat sends a 10-int Tuple, then rc 0', async () => {
    const run = fakeContext({ file: 'file.txt', workdir: null }, { builderDir: join(root, 'builder') });
    await runCommand(fsCommands.stat, run);
    const [tuple] = run.values('stat');
    assert.ok(tuple instanceof Tuple);
    assert.equal(tuple.length, 10);
    assert.ok(tuple.every((n) => typeof n === 'number' && Number.isInteger(n)));
    const st = await stat(join(root, 'builder', 'file.txt'));
    assert.deepEqual([tuple[0], tuple[6], tuple[7], tuple[8]], [st.mode, 6, 1_600_000_000, 1_600_000_100]);
    assert.deepEqual(run.updates.map((u) => u.key), ['stat', 'rc']);
    assert.equal(run.values('rc')[0], 0);
  });

  it('an OSError is a header without a newline and the errno as rc', async () => {
    const run = fakeContext({ dir: 'file.txt' }, { builderDir: join(root, 'builder') });
    await runCommand(fsCommands.mkdir, run);
    assert.deepEqual(run.updates, [
      { key: 'header', value: `mkdir: File exists: ${join(root, 'builder', 'file.txt')}` },
      { key: 'rc', value: 17 },
    ]);
  });

  it('an absolute path replaces the builder directory; a non-string argument fails the command', async () => {
    const target = join(root, 'elsewhere', 'x');
    const run = fakeContext({ dir: target }, { builderDir: join(root, 'builder') });
    await runCommand(fsCommands.mkdir, run);
    assert.ok((await stat(target)).isDirectory());
    const bad = fakeContext({ dir: 3 }, { builderDir: join(root, 'builder') });
    await assert.rejects(runCommand(fsCommands.mkdir, bad), { type: 'builtins.TypeError' });
  });
});

describe('rmdir and cpdir', () => {
  let root: string;
  let builderDir: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bbgate-fs-rmcp-'));
    builderDir = join(root, 'builder');
    await mkdir(builderDir);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('rmdir removes one directory or a list through rm -rf, a missing path is fine', async () => {
    await makeTree(join(builderDir, 'one'));
    await makeTree(join(builderDir, 'two'));
    await writeFile(join(builderDir, 'plain'), 'x');
    const run = fakeContext({ dir: 'one', logEnviron: true, timeout: 120 }, { builderDir, basedir: root });
    await runCommand(fsCommands.rmdir, run);
    assert.equal(run.values('rc').at(-1), 0);
    const headers = run.text('header');
    assert.ok(headers.startsWith(`rm -rf ${join(builderDir, 'one')}\n in dir ${root} (timeout 120 secs)\n watching logfiles {}\n argv: `), headers);
    assert.match(headers, /\n environment:\n( {2}\S+=.*\n)+ using PTY: False\nelapsedTime=\d+\.\d{6}\n$/);
    assert.equal(run.values('rc').length, 1, 'only the command sends rc, not rm');
    const list = fakeContext({ dir: ['two', 'plain', 'missing'], logEnviron: false, timeout: null }, { builderDir, basedir: root });
    await runCommand(fsCommands.rmdir, list);
    assert.deepEqual(list.values('rc'), [0]);
    assert.ok(!list.text('header').includes('environment'));
    assert.ok(list.text('header').includes(` in dir ${root}\n`));
    assert.deepEqual(await readdir(builderDir), []);
  });

  it('rmdir gets through a read-only tree (chmod u+rwx and again), as an unprivileged user', { skip: canSwitchToNobody ? false : 'only root can run it as the nobody user' }, async () => {
    const dir = join(root, 'ro');
    await mkdir(join(dir, 'locked', 'inner'), { recursive: true });
    await writeFile(join(dir, 'locked', 'inner', 'f'), 'x');
    await chmod(root, 0o755);
    spawnSync('chown', ['-R', 'nobody', dir]);
    await chmod(join(dir, 'locked', 'inner'), 0o500);
    await chmod(join(dir, 'locked'), 0o500);
    const child = runAsNobody((src) => `
      const { rmdir } = await import(${JSON.stringify(src + 'worker/commands/fs.js')});
      const updates = [];
      const ctx = { args: new Map([['dir', 'locked']]), builderDir: ${JSON.stringify(dir)}, basedir: ${JSON.stringify(dir)},
        environ: process.env, interrupted: new AbortController().signal, logger: { info() {}, warn() {} },
        updates: { stdout: (t) => updates.push(['stdout', t]), stderr: (t) => updates.push(['stderr', t]), header: (t) => updates.push(['header', t]),
          log() {}, send: (k, v) => updates.push([k, v]), backlog: () => undefined } };
      await rmdir.run(ctx);
      console.log(JSON.stringify(updates));`);
    assert.equal(child.status, 0, child.stderr);
    const updates = JSON.parse(child.stdout) as [string, unknown][];
    const text = updates.filter(([k]) => k === 'header' || k === 'stderr').map(([, v]) => v).join('');
    assert.match(text, /rm: cannot remove .*: Permission denied\n/);
    assert.match(text, /chmod -Rf u\+rwx /);
    assert.deepEqual(updates.filter(([k]) => k === 'rc'), [['rc', 0]]);
    await assert.rejects(lstat(join(dir, 'locked')), { code: 'ENOENT' });
  });

  it('cpdir runs cp -R -P -p -v: links as links, modes, times, the -v lines, rc', async () => {
    const src = join(builderDir, 'src');
    await makeTree(src);
    await chmod(join(src, 'file.txt'), 0o750);
    await utimes(join(src, 'src', 'sub'), 1_500_000_000, 1_500_000_000.5);
    await utimes(join(src, 'src'), 1_500_000_000, 1_500_000_001);
    const run = fakeContext({ fromdir: 'src', todir: 'out/ours', timeout: 60, maxTime: 300, logEnviron: false }, { builderDir, basedir: root });
    await runCommand(fsCommands.cpdir, run);
    assert.deepEqual(run.values('rc'), [0]);
    assert.match(run.text('header'), /^cp -R -P -p -v \S+\/src \S+\/out\/ours\n in dir \S+ \(timeout 60 secs\) \(maxTime 300 secs\)\n/);
    await mkdir(join(builderDir, 'out'), { recursive: true });
    const real = spawnSync('cp', ['-R', '-P', '-p', '-v', src, join(builderDir, 'out', 'real')], { encoding: 'utf8' });
    assert.equal(real.status, 0, real.stderr);
    assert.deepEqual(await snapshot(join(builderDir, 'out', 'ours')), await snapshot(join(builderDir, 'out', 'real')));
    const lines = (text: string, dest: string) => text.split('\n').filter(Boolean).map((l) => l.split(dest).join('<D>')).sort();
    assert.deepEqual(lines(run.text('stdout'), join(builderDir, 'out', 'ours')), lines(real.stdout, join(builderDir, 'out', 'real')));
  });

  it('cpdir onto an existing directory copies into it, and a missing source fails as cp does', async () => {
    await makeTree(join(builderDir, 'from'));
    await mkdir(join(builderDir, 'into'));
    const run = fakeContext({ fromdir: 'from', todir: 'into' }, { builderDir, basedir: root });
    await runCommand(fsCommands.cpdir, run);
    assert.deepEqual(run.values('rc'), [0]);
    assert.ok((await stat(join(builderDir, 'into', 'from', 'src', 'a.c'))).isFile());

    const missing = fakeContext({ fromdir: 'nothing-here', todir: 'deep/new/to' }, { builderDir, basedir: root });
    await runCommand(fsCommands.cpdir, missing);
    const real = spawnSync('cp', ['-R', '-P', '-p', '-v', join(builderDir, 'nothing-here'), join(builderDir, 'deep/new/to')], { encoding: 'utf8' });
    assert.deepEqual(missing.values('rc'), [real.status]);
    assert.equal(missing.text('stderr'), real.stderr);
    assert.ok((await stat(join(builderDir, 'deep', 'new'))).isDirectory(), 'the parent of todir is created');
  });
});

/** Every entry under dir: type, mode, size, link target and mtime (ns), owner. */
async function snapshot(dir: string): Promise<Record<string, unknown[]>> {
  return python(
    `
import json, os, sys
root = json.load(sys.stdin)
out = {}
for base, dirs, files in os.walk(root):
    for name in dirs + files + ([''] if base == root else []):
        p = os.path.join(base, name) if name else base
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        out[rel] = [oct(st.st_mode), st.st_size if not os.path.isdir(p) or os.path.islink(p) else 0,
                    os.readlink(p) if os.path.islink(p) else None, st.st_mtime_ns, st.st_uid, st.st_gid]
print(json.dumps(out, sort_keys=True))
`,
    dir,
  ) as Record<string, unknown[]>;
}
