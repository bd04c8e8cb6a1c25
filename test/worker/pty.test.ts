// Shell steps with usePTY against real processes on real pseudo-terminals, compared where the
// behaviour is meant to be the same with the real buildbot-worker 3.7 RunProcess (Twisted's
// spawnProcess(usePTY=True)).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import type { PbValue } from '../../src/pb/values/values.js';
import { windowSize } from '../../src/worker/process/pty.js';
import { loadPtyBinding } from '../../src/worker/process/pty-binding.js';
import { buildbotRuntime } from '../helpers/buildbot-runtime.js';
import { waitFor } from '../helpers/wait.js';
import { comparable, groupAfterKill, killGroup, runPythonWorker, runShellIn, type RunOptions, type ShellRun } from './shell-harness.js';

let base: string;

before(async () => {
  assert.ok(existsSync('/dev/pts/ptmx'), 'PTY tests need a devpts mount on /dev/pts (mount -t devpts devpts /dev/pts)');
  base = await mkdtemp(join(tmpdir(), 'bbgate-pty-'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

const ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };
const runShell = (args: Record<string, PbValue>, options: RunOptions = {}): Promise<ShellRun> =>
  runShellIn(base, args, { environ: ENV, ...options });

/** Running, not a zombie: a killed grandchild stays a zombie until its new parent (pid 1 here) reaps it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

const TERMINAL_CHECK = 'test -t 0 && test -t 1 && test -t 2 && echo "on a terminal"; echo to-stderr >&2; echo "TERM=${TERM-unset}"';

describe('usePTY: the terminal', () => {
  it('gives stdin, stdout and stderr a terminal only with usePTY, and merges stderr into stdout', async () => {
    const pty = await runShell({ workdir: 'tty', command: TERMINAL_CHECK, usePTY: true, logEnviron: false });
    assert.equal(pty.rc, 0);
    // The terminal's ONLCR turns \n into \r\n, as under buildbot-worker; TERM stays as the environment had it.
    assert.equal(pty.text('stdout'), 'on a terminal\r\nto-stderr\r\nTERM=unset\r\n');
    assert.equal(pty.text('stderr'), '');
    assert.ok(pty.headers().includes(' using PTY: True\n'));

    const pipes = await runShell({ workdir: 'tty', command: TERMINAL_CHECK, usePTY: false, logEnviron: false });
    assert.equal(pipes.text('stdout'), 'TERM=unset\n');
    assert.equal(pipes.text('stderr'), 'to-stderr\n');
    assert.ok(pipes.headers().includes(' using PTY: False\n'));
  });

  it('sends the same headers, output and rc as buildbot-worker 3.7 for a terminal check, a failure and a signal death', async () => {
    const workdir = join(base, 'compare');
    await mkdir(workdir, { recursive: true });
    const env = { ...ENV, TERM: 'dumb' };
    const commands = [TERMINAL_CHECK, 'tty >/dev/null && echo "é"; printf "no newline"; exit 3', 'echo before; kill -TERM $$'];
    for (const command of commands) {
      const python = await runPythonWorker({ command, workdir, kw: { usePTY: true, logEnviron: false } }, env);
      const ours = await runShell({ workdir: 'compare', command, usePTY: true, logEnviron: false }, { environ: env });
      assert.deepEqual(comparable(ours.updates), comparable(python), command);
    }
  });

  it('sets the window from COLUMNS and LINES, 80x24 otherwise (Twisted leaves it 0x0)', async () => {
    const plain = await runShell({ workdir: 'size', command: 'stty size', usePTY: true });
    assert.equal(plain.text('stdout'), '24 80\r\n');
    const sized = await runShell({ workdir: 'size', command: 'stty size', usePTY: true, env: new Map([['COLUMNS', '132'], ['LINES', '50']]) });
    assert.equal(sized.text('stdout'), '50 132\r\n');
    assert.deepEqual(windowSize({ COLUMNS: '0', LINES: 'x' }), { cols: 80, rows: 24 });
    assert.deepEqual(windowSize({ COLUMNS: '70000', LINES: '-3' }), { cols: 80, rows: 24 });
  });

  it('turns the PTY off with 3.7\'s warning when initialStdin is given, even empty', async () => {
    for (const stdin of ['data', '']) {
      const run = await runShell({ workdir: 'stdin', command: 'test -t 0 || echo "stdin is no terminal"; cat', usePTY: true, initial_stdin: stdin, logEnviron: false });
      assert.equal(run.headers()[0], 'WARNING: disabling usePTY for this command');
      assert.ok(run.headers().includes(' using PTY: False\n'));
      assert.equal(run.text('stdout'), `stdin is no terminal\n${stdin}`);
      assert.equal(run.rc, 0);
    }
  });

  it('reports a program that cannot be executed as on pipes (rc 1)', async () => {
    const pty = await runShell({ workdir: 'missing', command: ['no-such-program-here', 'x'], usePTY: true, logEnviron: false });
    const pipes = await runShell({ workdir: 'missing', command: ['no-such-program-here', 'x'], usePTY: false, logEnviron: false });
    assert.equal(pty.rc, 1);
    assert.match(pty.text('stderr'), /^cannot execute 'no-such-program-here' in dir .*: no such file or directory \(ENOENT\)\n$/);
    assert.deepEqual(pty.updates.filter(([k]) => k !== 'header'), pipes.updates.filter(([k]) => k !== 'header'));
    await writeFile(join(base, 'missing', 'not-executable'), 'echo ran\n', { mode: 0o644 });
    const notExecutable = await runShell({ workdir: 'missing', command: ['./not-executable'], usePTY: true, logEnviron: false });
    assert.equal(notExecutable.rc, 1);
    assert.match(notExecutable.text('stderr'), /permission denied \(EACCES\)/);
  });

  it('reports a script whose #! interpreter is missing or not executable as on pipes (rc 1), not as node-pty\'s execvp message', async () => {
    // buildbot-worker 4.2.1 prints a Python traceback on the terminal, where its pipes put it on
    // stderr; bbgate's own report is the same on both.
    const dir = join(base, 'interp');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'no-interpreter'), '#!/no/such/interpreter -x\necho ran\n', { mode: 0o755 });
    await writeFile(join(dir, 'plain-file'), 'not a program\n', { mode: 0o644 });
    await writeFile(join(dir, 'bad-interpreter'), `#! ${join(dir, 'plain-file')}\necho ran\n`, { mode: 0o755 });
    await writeFile(join(dir, 'via-path'), '#!no-such-relative-interpreter\necho ran\n', { mode: 0o755 });
    const cases: [PbValue, RegExp][] = [
      [['./no-interpreter', 'arg'], /^cannot execute '\.\/no-interpreter' in dir .*: no such file or directory \(ENOENT\)\n$/],
      [['./bad-interpreter'], /^cannot execute '\.\/bad-interpreter' in dir .*: permission denied \(EACCES\)\n$/],
      [['via-path'], /^cannot execute 'via-path' in dir .*: no such file or directory \(ENOENT\)\n$/],
    ];
    const env = new Map([['PATH', `/usr/bin:/bin:${dir}`]]);
    for (const [command, message] of cases) {
      const pty = await runShell({ workdir: 'interp', command, usePTY: true, logEnviron: false, env });
      const pipes = await runShell({ workdir: 'interp', command, usePTY: false, logEnviron: false, env });
      assert.match(pipes.text('stderr'), message);
      assert.deepEqual(pty.updates.filter(([k]) => k !== 'header'), pipes.updates.filter(([k]) => k !== 'header'), String(command));
    }
    // A script whose interpreter is there runs, by a relative interpreter path too (from the workdir).
    await writeFile(join(dir, 'relative'), '#!./sh-copy\necho ran "$0"\n', { mode: 0o755 });
    await writeFile(join(dir, 'sh-copy'), await readFile('/bin/sh'), { mode: 0o755 });
    const relative = await runShell({ workdir: 'interp', command: ['./relative'], usePTY: true, logEnviron: false });
    assert.equal(relative.text('stdout'), 'ran ./relative\r\n');
    assert.equal(relative.rc, 0);
  });

  it('takes usePTY "slave-config" as the worker\'s default', async () => {
    const yes = await runShell({ workdir: 'config', command: 'test -t 1', usePTY: 'slave-config' }, { usePTY: true });
    assert.equal(yes.rc, 0);
    const no = await runShell({ workdir: 'config', command: 'test -t 1', usePTY: 'slave-config' }, { usePTY: false });
    assert.equal(no.rc, 1);
    const unset = await runShell({ workdir: 'config', command: 'test -t 1', usePTY: 'slave-config' });
    assert.equal(unset.rc, 1);
  });

  it('fails with PTY_UNAVAILABLE, saying what is missing, when the library cannot be loaded', () => {
    assert.throws(
      () => loadPtyBinding('@bbgate/no-such-pty-package'),
      (err: unknown) => err instanceof BbgateError && err.code === 'PTY_UNAVAILABLE' && /"@bbgate\/no-such-pty-package" package is not installed/.test(err.message),
    );
    // The real one loads: the tests above ran on it.
    assert.equal(typeof loadPtyBinding().fork, 'function');
  });
});

/** A live process's open fds and what each points at, from /proc. */
function openFds(pid: number): Map<number, string> {
  const fds = new Map<number, string>();
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.set(Number(entry), readlinkSync(`/proc/${pid}/fd/${entry}`));
    } catch {
      // closed meanwhile (readdir's own)
    }
  }
  return fds;
}

const O_CLOEXEC = 0o2000000;

/** This process's fds without close-on-exec: every child Node starts inherits them. */
function inheritableFds(): Map<number, string> {
  const fds = openFds(process.pid);
  for (const fd of fds.keys()) {
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!flags || (parseInt(flags[1]!, 8) & O_CLOEXEC) !== 0) fds.delete(fd);
    } catch {
      fds.delete(fd);
    }
  }
  return fds;
}

const isTerminal = (target: string) => /^\/dev\/(pts\/|ptmx$)/.test(target);

/** Starts `echo $$; exec sleep 30` as a step; resolves with its pid once it runs, and a way to end it. */
function startSleeper(workdir: string, usePTY: boolean): Promise<{ pid: number; end: () => Promise<ShellRun> }> {
  return new Promise((resolve, reject) => {
    let stop: (() => void) | undefined;
    let printed = '';
    const run = runShell(
      { workdir, command: 'echo $$; exec sleep 30', usePTY, logEnviron: false },
      {
        onUpdate: ([key, value], abort) => {
          if (key !== 'stdout' || stop) return;
          printed += String(value);
          if (!printed.includes('\n')) return;
          stop = abort;
          resolve({ pid: Number(printed.trim()), end: () => (abort(), run) });
        },
      },
    );
    void run.then((r) => stop || reject(new Error(`the step ended before it printed its pid: ${JSON.stringify(r.updates)}`)));
  });
}

describe('usePTY: file descriptors', () => {
  it('leaks no terminal into the worker\'s other children: a concurrent pipe step and PTY step hold only their own', async () => {
    const inherited = inheritableFds(); // what the test runner itself was started with
    assert.ok(![...inherited.values()].some(isTerminal), `the test runner inherited a terminal: ${[...inherited]}`);
    const first = await startSleeper('fds', true);
    const steps = [first];
    try {
      const workerHolds = inheritableFds();
      const pipes = await startSleeper('fds', false);
      steps.push(pipes);
      const second = await startSleeper('fds', true);
      steps.push(second);

      assert.deepEqual([...workerHolds].filter(([, target]) => isTerminal(target)), [], 'the worker holds a terminal that its children inherit');
      const pipeFds = openFds(pipes.pid);
      assert.deepEqual([...pipeFds].filter(([, target]) => isTerminal(target)), [], 'the pipe step holds a terminal');
      assert.deepEqual([...pipeFds.keys()].filter((fd) => fd > 2 && !inherited.has(fd)), [], `the pipe step's fds: ${[...pipeFds]}`);
      const terminals = [first, second].map(({ pid }) => {
        const fds = openFds(pid);
        // Only the terminal on 0, 1 and 2, as under buildbot-worker (Twisted closes every other fd).
        assert.deepEqual([...fds.keys()].sort(), [0, 1, 2], `a PTY step's fds: ${[...fds]}`);
        assert.equal(new Set(fds.values()).size, 1);
        assert.match(fds.get(0)!, /^\/dev\/pts\/\d+$/);
        return fds.get(0);
      });
      assert.notEqual(terminals[0], terminals[1]);
    } finally {
      for (const step of steps) await step.end();
    }
  });

  it('gives the command the same fds as buildbot-worker 4.2.1 under usePTY (in the Buildbot 4 root)', async () => {
    const runtime = buildbotRuntime('4');
    const dir = await mkdtemp(join(runtime.tmpDir, 'bbgate-ptyfd-'));
    try {
      // The shell's fds, listed by a child of it (`; exit` keeps dash from exec'ing ls in its place).
      const command = 'ls -l /proc/$$/fd; exit 0';
      const kw = { usePTY: true, logEnviron: false };
      const [python, ours] = await Promise.all([
        runPythonWorker({ command, workdir: runtime.inside(dir), kw }, ENV, runtime, dir),
        runShell({ workdir: dir, command, ...kw }),
      ]);
      const listing = (updates: ShellRun['updates']) =>
        [...comparable(updates).stdout.matchAll(/ (\d+) -> (.*?)\r\n/g)].map(([, fd, target]) => `${fd} -> ${target!.replace(/\d+$/, 'N')}\n`).join('');
      assert.equal(listing(python), '0 -> /dev/pts/N\n1 -> /dev/pts/N\n2 -> /dev/pts/N\n');
      assert.equal(listing(ours.updates), listing(python));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('usePTY: the PTY host', () => {
  it('a host killed mid-step takes the command\'s session with it: nothing runs on untracked', async () => {
    // The command ignores the hang-up a dead terminal sends, as a daemonising build tool might.
    const run = runShell({ workdir: 'host', command: 'trap "" HUP; echo $$; exec sleep 300', usePTY: true, logEnviron: false }, {
      onUpdate: ([key, value]) => {
        if (key !== 'stdout' || pid !== undefined) return;
        pid = Number(String(value).trim());
        // The command's parent is the PTY host (the worker never holds the terminal).
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const host = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        assert.notEqual(host, process.pid);
        process.kill(host, 'SIGKILL');
      },
    });
    let pid: number | undefined;
    const result = await run;
    assert.ok(pid, JSON.stringify(result.updates));
    await waitFor(() => !running(pid!), 'the command to be gone', 10_000);
  });
});

describe('usePTY: where no PTY can be made', () => {
  it('says there is no /dev/pts and fails with PTY_UNAVAILABLE (a mount namespace with /dev/pts hidden)', async () => {
    const harness = new URL('./shell-harness.js', import.meta.url).href;
    const script = `
      const { runShellIn } = await import(${JSON.stringify(harness)});
      const run = await runShellIn(process.argv[1], { workdir: 'nopts', command: 'true', usePTY: true, logEnviron: false }, { environ: { PATH: '/usr/bin:/bin' } });
      console.log(JSON.stringify({ headers: run.headers(), rc: run.rc ?? null, code: run.error?.code, message: run.error?.message }));`;
    // A tmpfs over /dev/pts, in a mount namespace of this child only: the worker's machine without devpts.
    const child = spawnSync('unshare', ['--mount', 'sh', '-c', 'mount -t tmpfs none /dev/pts && exec "$0" --input-type=module -e "$1" "$2"', process.execPath, script, base], { encoding: 'utf8' });
    assert.equal(child.status, 0, `unshare --mount (util-linux, as root) must be able to hide /dev/pts: ${child.error?.message ?? child.stderr}`);
    const result = JSON.parse(child.stdout) as { headers: string[]; rc: number | null; code: string; message: string };
    assert.equal(result.code, 'PTY_UNAVAILABLE');
    assert.match(result.message, /this machine has no \/dev\/pts/);
    assert.equal(result.rc, null, 'no rc: the master marks the step EXCEPTION');
    assert.match(result.headers.at(-1)!, /^cannot run the command with a PTY: this machine has no \/dev\/pts .*\n$/);
  });
});

describe('usePTY: output', () => {
  it('sends several MB complete and in order, holding the terminal while the master is behind', async () => {
    const lines = 400_000; // 13 bytes a line: 5.2 MB, 5.6 MB once the terminal makes \n into \r\n
    let behind = 0;
    let calls = 0;
    const run = await runShell(
      { workdir: 'big', command: `seq -f 'line %07g' 1 ${lines}`, usePTY: true, logEnviron: false },
      {
        // Every 20th chunk the master is "behind" for 5 ms: the reader must pause and lose nothing.
        backlog: () => {
          if (++calls % 20 !== 0) return undefined;
          behind++;
          return new Promise((resolve) => setTimeout(resolve, 5));
        },
      },
    );
    assert.equal(run.rc, 0);
    const text = run.text('stdout');
    assert.equal(text.length, lines * 14);
    const expected = Array.from({ length: lines }, (_, i) => `line ${String(i + 1).padStart(7, '0')}\r\n`).join('');
    assert.ok(text === expected, 'the output arrived complete and in order');
    assert.ok(behind > 10, `the master was behind ${behind} times`);
  });

  it('keeps output written just before the exit while reading is paused', async () => {
    let held = false;
    const run = await runShell(
      { workdir: 'tail', command: 'echo first; sleep 0.2; seq 1 2000; echo last', usePTY: true, logEnviron: false },
      {
        // Behind for 600 ms once, right after the first output: the process exits meanwhile.
        backlog: () => {
          if (held) return undefined;
          held = true;
          return new Promise((resolve) => setTimeout(resolve, 600));
        },
      },
    );
    assert.equal(run.rc, 0);
    assert.ok(run.text('stdout').endsWith('1999\r\n2000\r\nlast\r\n'), JSON.stringify(run.text('stdout').slice(-40)));
  });
});

describe('usePTY: killing the session', () => {
  it('kills the whole session on interrupt, grandchild included (rc -1)', async () => {
    let pid = 0;
    // The grandchild ignores SIGHUP, so the terminal's hang-up when the shell dies cannot be what ends it.
    const run = await runShell(
      { workdir: 'interrupt', command: "(trap '' HUP; exec sleep 300) & echo $! > grandchild.pid; echo $$; wait", usePTY: true },
      {
        onUpdate: ([key, value], abort) => {
          if (key === 'stdout' && !pid) {
            pid = Number(String(value).trim());
            setTimeout(abort, 100);
          }
        },
      },
    );
    const grandchild = Number(await readFile(join(base, 'interrupt', 'grandchild.pid'), 'utf8'));
    try {
      assert.ok(pid > 0 && grandchild > 0);
      assert.equal(run.rc, -1);
      assert.ok(run.headers().includes('\ncommand interrupted, attempting to kill\n'));
      assert.ok(run.headers().includes('process killed by signal 9\n'));
      assert.deepEqual(await groupAfterKill(pid), []);
      assert.equal(running(grandchild), false, 'the grandchild is gone');
    } finally {
      killGroup(pid);
    }
  });

  it('kills on timeout and maxTime with the same headers, output and rc as buildbot-worker 3.7', async () => {
    const workdir = join(base, 'timeouts');
    await mkdir(workdir, { recursive: true });
    for (const kw of [{ timeout: 1 }, { maxTime: 1 }] as Record<string, number>[]) {
      const command = 'echo start; sleep 30';
      const python = await runPythonWorker({ command, workdir, kw: { ...kw, usePTY: true, logEnviron: false } }, ENV);
      const ours = await runShell({ workdir: 'timeouts', command, ...kw, usePTY: true, logEnviron: false });
      assert.deepEqual(comparable(ours.updates), comparable(python), JSON.stringify(kw));
      assert.equal(ours.rc, -1);
    }
  });

  it('sends TERM to the session first with sigtermTime', async () => {
    const run = await runShell(
      { workdir: 'sigterm', command: "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.1; done", sigtermTime: 2, usePTY: true, logEnviron: false },
      { onUpdate: ([key, value], abort) => key === 'stdout' && String(value).includes('ready') && abort() },
    );
    assert.match(run.text('stdout'), /got TERM\r\n$/);
    // Exited 5 after the kill: rc is that code, as 3.7 reports a killed process that exits by itself.
    assert.equal(run.rc, 5);
    assert.ok(!run.headers().some((h) => h.startsWith('process killed by signal')));
  });
});

describe('usePTY: Buildbot 4.x limits on a terminal', () => {
  it('kills on max_lines (with and without sigtermTime) and both timeouts with the same updates as buildbot-worker 4.2.1 (in the Buildbot 4 root)', async () => {
    const runtime = buildbotRuntime('4');
    const dir = await mkdtemp(join(runtime.tmpDir, 'bbgate-pty4-'));
    // One line per read (a pause after each), so both workers count to 4 of 3 at the same line.
    const cases: [string, PbValue, Record<string, number>][] = [
      ['max_lines', ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done'], { max_lines: 3 }],
      ['timeout', 'sleep 30', { timeout: 1 }],
      ['maxTime', ['sleep', '30'], { maxTime: 1, timeout: 10 }],
      // The terminal stays open after the limit (Twisted's closeStdout does nothing on a PTY): the
      // command gets TERM alone, no hang-up, and what it prints then is read and sent.
      // (The sleeps ignore TERM, so that no shell reports one killed: the trap alone speaks.)
      ['max_lines+sigtermTime', ['sh', '-c', "trap 'echo got TERM; exit 5' TERM; for i in 1 2 3 4 5 6; do echo $i; (trap '' TERM; exec sleep 0.1); done"], { max_lines: 3, sigtermTime: 5 }],
    ];
    try {
      const runs = await Promise.all(
        cases.map(async ([name, command, limits]) => {
          const workdir = join(dir, name);
          const kw = { ...limits, usePTY: true, logEnviron: false };
          const [python, ours] = await Promise.all([
            runPythonWorker({ command, workdir: runtime.inside(workdir), kw: { ...kw, max_lines: limits.max_lines ?? null } }, ENV, runtime, dir),
            runShell({ workdir, command, ...kw }),
          ]);
          return { name, python: comparable(python, { reasons: true, workdir: runtime.inside(workdir) }), ours: comparable(ours.updates, { reasons: true, workdir }) };
        }),
      );
      for (const { name, python, ours } of runs) assert.deepEqual(ours, python, name);
      const [maxLines, timeout, maxTime, sigterm] = runs.map((r) => r.python);
      assert.match(sigterm!.stdout, /^1\r\n2\r\n3\r\n4\r\ngot TERM\r\n$/, JSON.stringify(sigterm));
      assert.ok(sigterm!.headers.includes('rc=5'), JSON.stringify(sigterm));
      assert.ok(maxLines!.headers.includes(' using PTY: True\n'), JSON.stringify(maxLines));
      assert.ok(maxLines!.headers.includes('failure_reason=max_lines_failure'), JSON.stringify(maxLines));
      assert.equal(maxLines!.stdout, '1\r\n2\r\n3\r\n4\r\n');
      assert.ok(timeout!.headers.includes('failure_reason=timeout_without_output'), JSON.stringify(timeout));
      assert.ok(maxTime!.headers.includes('failure_reason=timeout'), JSON.stringify(maxTime));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
