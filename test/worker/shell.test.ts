// The shell command against real processes, with a fake CommandContext that records every update;
// its headers are compared with the real buildbot-worker 3.7 RunProcess.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PbFailure } from '../../src/pb/values/failure.js';
import { PyFloat, tuple, type PbValue } from '../../src/pb/values/values.js';
import { lookupCodec } from '../../src/worker/python/codec.js';
import { buildbotRuntime } from '../helpers/buildbot-runtime.js';
import { comparable, groupAfterKill, killGroup, runPythonWorker, runShellIn, WORKER_ENV, type RunOptions, type ShellRun } from './shell-harness.js';

let base: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'bbgate-shell-'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

const runShell = (args: Record<string, PbValue>, options: RunOptions = {}): Promise<ShellRun> => runShellIn(base, args, options);

describe('shell: commands', () => {
  it('runs an argv list without a shell and sends stdout, stderr and rc', async () => {
    const run = await runShell({ workdir: 'argv', command: ['sh', '-c', 'echo "$1 $2"; echo oops >&2; exit 3', 'sh', 'a b', '$HOME'] });
    assert.equal(run.text('stdout'), 'a b $HOME\n');
    assert.equal(run.text('stderr'), 'oops\n');
    assert.equal(run.rc, 3);
    assert.equal(run.error, undefined);
  });

  it('runs a string through /bin/sh -c', async () => {
    const run = await runShell({ workdir: 'string', command: 'echo $((1 + 2)) | tr 3 x; exit 0' });
    assert.equal(run.text('stdout'), 'x\n');
    assert.equal(run.rc, 0);
  });

  it("runs an ('obfuscated', real, fake) tuple's real value and shows only the fake one", async () => {
    const run = await runShell({ workdir: 'obf', command: ['echo', 'user', tuple('obfuscated', 's3cret', 'XXXX')], timeout: 1 });
    assert.equal(run.text('stdout'), 'user s3cret\n');
    const headers = run.text('header');
    assert.ok(!headers.includes('s3cret'), headers);
    assert.equal(run.headers()[0], 'echo user XXXX\n');
    assert.equal(run.headers()[3], " argv: [b'echo', b'user', b'XXXX']\n");
  });

  it("looks argv[0] up in the child's PATH, not the worker's", async () => {
    const bin = join(base, 'private-bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'only-here'), '#!/bin/sh\necho found me\n');
    await chmod(join(bin, 'only-here'), 0o755);
    const run = await runShell({ workdir: 'path', command: ['only-here'], env: new Map([['PATH', [bin, '/usr/bin', '/bin']]]) });
    assert.equal(run.text('stdout'), 'found me\n');
    assert.equal(run.rc, 0);
  });

  it('gives rc 1 and an error on stderr for a missing executable, not an exception', async () => {
    const run = await runShell({ workdir: 'missing', command: ['no-such-program-bbgate', 'x'] });
    assert.equal(run.rc, 1);
    assert.equal(run.error, undefined);
    assert.match(run.text('stderr'), /cannot execute 'no-such-program-bbgate' in dir .*missing: no such file or directory \(ENOENT\)\n/);
    assert.match(run.headers().at(-1)!, /^elapsedTime=\d+\.\d{6}\n$/);
  });

  it('gives rc 1 for an argument the system cannot pass (a NUL byte), as 3.7 does', async () => {
    const run = await runShell({ workdir: 'nul', command: ['echo', 'a\0b'] });
    assert.equal(run.rc, 1);
    assert.match(run.text('stderr'), /^cannot execute 'echo' in dir .*: .*null bytes/);
  });

  it('fails the command when the workdir cannot be created (here: it is a file), as 3.7 does', async () => {
    await writeFile(join(base, 'a-file'), '');
    const run = await runShell({ workdir: 'a-file', command: ['true'] });
    assert.ok(run.error instanceof PbFailure);
    assert.equal(run.error.code, 'PROCESS_START');
    assert.equal(run.rc, undefined);
  });

  it('fails the command (a PbFailure) for unusable arguments', async () => {
    const badEnv = await runShell({ workdir: 'bad', command: 'true', env: new Map([['X', 5]]) });
    assert.ok(badEnv.error instanceof PbFailure);
    assert.equal(badEnv.error.code, 'COMMAND_ARGS');
    assert.equal(badEnv.error.value, "'env' values must be strings or lists; key 'X' is incorrect");
    const empty = await runShell({ workdir: 'bad', command: [] });
    assert.equal((empty.error as PbFailure).code, 'COMMAND_ARGS');
    const signal = await runShell({ workdir: 'bad', command: 'true', interruptSignal: 'NOPE' });
    assert.equal((signal.error as PbFailure).code, 'COMMAND_ARGS');
    assert.deepEqual(badEnv.updates, []);
  });
});

describe('shell: workdir and environment', () => {
  it('joins the workdir to the builder directory, creates it, and sets PWD', async () => {
    const run = await runShell({ workdir: 'deep/new/dir', command: 'pwd; echo "$PWD"' });
    const dir = join(base, 'deep/new/dir');
    assert.equal(run.text('stdout'), `${dir}\n${dir}\n`);
    assert.equal(run.headers()[1], ` in dir ${dir}\n`);
  });

  it('takes an absolute workdir as it is (os.path.join)', async () => {
    const dir = join(base, 'absolute');
    const run = await runShell({ workdir: dir, command: ['pwd'] });
    assert.equal(run.text('stdout'), `${dir}\n`);
  });

  it('applies the env rules: None deletes, lists join with :, only ${VAR} expands, from the worker env', async () => {
    const environ = { ...WORKER_ENV, DOOMED: 'x', KEPT: 'k', FROM_WORKER: 'w' };
    const env = new Map<PbValue, PbValue>([
      ['DOOMED', null],
      ['LIST', ['/a', '/b', '/c']],
      ['BRACED', '${FROM_WORKER}-${UNSET_ANYWHERE}-${HOME}'],
      ['BARE', '$FROM_WORKER'],
    ]);
    const run = await runShell(
      { workdir: 'env', command: ['sh', '-c', 'echo "doomed=${DOOMED-unset} kept=$KEPT list=$LIST braced=$BRACED"; printenv BARE'], env },
      { environ },
    );
    assert.equal(run.text('stdout'), 'doomed=unset kept=k list=/a:/b:/c braced=w--/home/worker\n$FROM_WORKER\n');
    const envHeader = run.headers().find((h) => h.startsWith(' environment:\n'))!;
    assert.ok(envHeader.includes('  LIST=/a:/b:/c\n'));
    assert.ok(!envHeader.includes('DOOMED'));
  });

  it("puts the worker's PYTHONPATH after the master's, without 3.7's empty entry when there is none", async () => {
    const command = ['sh', '-c', 'echo "[$PYTHONPATH]"'];
    const withWorker = await runShell(
      { workdir: 'pp', command, env: new Map([['PYTHONPATH', ['/m1', '/m2']]]) },
      { environ: { ...WORKER_ENV, PYTHONPATH: '/w' } },
    );
    assert.equal(withWorker.text('stdout'), '[/m1:/m2:/w]\n');
    const without = await runShell({ workdir: 'pp', command, env: new Map([['PYTHONPATH', '/m']]) });
    assert.equal(without.text('stdout'), '[/m]\n');
    const removed = await runShell(
      { workdir: 'pp', command, env: new Map([['PYTHONPATH', null]]) },
      { environ: { ...WORKER_ENV, PYTHONPATH: '/w' } },
    );
    assert.equal(removed.text('stdout'), '[]\n');
  });

  it('lists the environment sorted in the header, or not at all with logEnviron off', async () => {
    const run = await runShell({ workdir: 'envh', command: 'true', env: new Map([['AAA', '1']]) });
    const dir = join(base, 'envh');
    assert.equal(
      run.headers()[4],
      ` environment:\n  AAA=1\n  HOME=/home/worker\n  LANG=C.UTF-8\n  PATH=/usr/bin:/bin\n  PWD=${dir}\n`,
    );
    const quiet = await runShell({ workdir: 'envh', command: 'true', logEnviron: false });
    assert.ok(!quiet.headers().some((h) => h.startsWith(' environment')));
  });
});

describe('shell: output', () => {
  it('drops stdout with want_stdout=0 and stderr with want_stderr=0', async () => {
    const command = 'echo out; echo err >&2';
    const noOut = await runShell({ workdir: 'want', command, want_stdout: 0, want_stderr: 1 });
    assert.equal(noOut.text('stdout'), '');
    assert.equal(noOut.text('stderr'), 'err\n');
    const noErr = await runShell({ workdir: 'want', command, want_stdout: 1, want_stderr: 0 });
    assert.equal(noErr.text('stdout'), 'out\n');
    assert.equal(noErr.text('stderr'), '');
  });

  it('writes initial_stdin and closes stdin; without it the child sees EOF at once', async () => {
    const fed = await runShell({ workdir: 'stdin', command: ['cat'], initial_stdin: 'héllo\nworld' });
    assert.equal(fed.text('stdout'), 'héllo\nworld');
    assert.ok(fed.headers().includes(' writing 12 bytes to stdin\n'));
    const empty = await runShell({ workdir: 'stdin', command: ['cat'], initial_stdin: null, maxTime: 10 });
    assert.equal(empty.text('stdout'), '');
    assert.equal(empty.rc, 0);
    assert.ok(!empty.headers().some((h) => h.includes('bytes to stdin')));
  });

  it('passes a line longer than 4096 characters and 5 MB of output through intact', async () => {
    const long = await runShell({ workdir: 'big', command: "head -c 10000 /dev/zero | tr '\\0' x", logEnviron: false });
    assert.equal(long.text('stdout'), 'x'.repeat(10000));
    const size = 5 * 1024 * 1024;
    const big = await runShell({ workdir: 'big', command: `yes 0123456789abcdef | head -c ${size}`, logEnviron: false });
    const stdout = big.text('stdout');
    assert.equal(stdout.length, size);
    assert.equal(stdout, '0123456789abcdef\n'.repeat(Math.ceil(size / 17)).slice(0, size));
    assert.equal(big.rc, 0);
  });

  it('decodes UTF-8 with replacement, without splitting a character across reads', async () => {
    const bad = await runShell({ workdir: 'utf8', command: "printf '\\377\\376ab\\342\\202\\254'" });
    assert.equal(bad.text('stdout'), '\uFFFD\uFFFDab€');
    const split = await runShell({ workdir: 'utf8', command: "printf '\\342'; sleep 0.3; printf '\\202\\254\\n'; printf '\\342\\202' >&2" });
    assert.equal(split.text('stdout'), '€\n');
    assert.ok(split.updates.every(([k, v]) => k !== 'stdout' || !(v as string).includes('\uFFFD')));
    assert.equal(split.text('stderr'), '\uFFFD', 'an unfinished character at the end is replaced, not dropped');
  });

  it("decodes stdout, stderr and watched logfiles with the tac's unicode_encoding", async () => {
    const command = "printf 'caf\\351 \\200' > out.log; printf 'caf\\351 \\200'; printf '\\351' >&2";
    const latin1 = await runShell({ workdir: 'latin1', command, logfiles: new Map([['out', 'out.log']]) }, { codec: lookupCodec('latin-1')! });
    assert.equal(latin1.text('stdout'), 'caf\u00e9 \u0080');
    assert.equal(latin1.text('stderr'), '\u00e9');
    assert.equal(latin1.logs('out'), 'caf\u00e9 \u0080');
    const cp1252 = await runShell({ workdir: 'cp1252', command }, { codec: lookupCodec('cp1252')! });
    assert.equal(cp1252.text('stdout'), 'caf\u00e9 \u20ac');
    const ascii = await runShell({ workdir: 'ascii', command }, { codec: lookupCodec('ascii')! });
    assert.equal(ascii.text('stdout'), 'caf\uFFFD \uFFFD');
  });
});

describe('shell: timeouts, interrupts and killing', () => {
  it('kills a command that is silent for timeout seconds (rc -1, 3.7 header)', async () => {
    const run = await runShell({ workdir: 'timeout', command: 'echo start; sleep 30', timeout: 1, logEnviron: false });
    assert.equal(run.rc, -1);
    assert.equal(run.text('stdout'), 'start\n');
    const headers = run.headers();
    assert.equal(headers[1], ` in dir ${join(base, 'timeout')} (timeout 1 sec)\n`);
    assert.ok(headers.includes("\ncommand timed out: 1 seconds without output running b'echo start; sleep 30', attempting to kill\n"), headers.join(''));
    assert.ok(headers.includes('process killed by signal 9\n'));
  });

  it('takes a timeout of 0 or 0.0 as none', async () => {
    const run = await runShell({ workdir: 'timeout', command: 'sleep 0.2', timeout: new PyFloat(0), maxTime: 0 });
    assert.equal(run.rc, 0);
    assert.equal(run.headers()[1], ` in dir ${join(base, 'timeout')}\n`);
  });

  it('restarts the silence timeout on every output', async () => {
    const run = await runShell({ workdir: 'timeout', command: 'for i in 1 2 3 4; do echo $i; sleep 0.5; done', timeout: 1.5 });
    assert.equal(run.rc, 0);
    assert.equal(run.text('stdout'), '1\n2\n3\n4\n');
  });

  it('does not count the time reading is paused for a slow master as silence', async () => {
    // The master is behind for 1.6 s from the first output on, longer than the 1 s timeout, while the
    // command goes on printing every 0.2 s (into the pipe, which the worker does not read meanwhile).
    const events: string[] = [];
    let stalled = false;
    const stallOnce = () => {
      if (stalled) return undefined;
      stalled = true;
      events.push('paused');
      return new Promise<void>((resolve) => setTimeout(() => resolve(events.push('resumed') as unknown as void), 1600));
    };
    const steady = await runShell(
      { workdir: 'timeout', command: 'for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.2; done', timeout: 1, logEnviron: false },
      { backlog: stallOnce },
    );
    assert.ok(!steady.headers().some((h) => h.includes('attempting to kill')), steady.headers().join(''));
    assert.equal(steady.rc, 0);
    assert.equal(steady.text('stdout'), '1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    assert.deepEqual(events, ['paused', 'resumed']);

    // Real silence still counts, from the moment reading resumes.
    stalled = false;
    events.length = 0;
    const silent = await runShell(
      { workdir: 'timeout', command: 'echo once; sleep 30', timeout: 1, logEnviron: false },
      { backlog: stallOnce, onUpdate: ([key, value]) => key === 'header' && String(value).includes('attempting to kill') && events.push('killed') },
    );
    assert.equal(silent.rc, -1);
    assert.ok(silent.headers().includes("\ncommand timed out: 1 seconds without output running b'echo once; sleep 30', attempting to kill\n"));
    assert.deepEqual(events, ['paused', 'resumed', 'killed']);
  });

  it('kills a command that runs longer than maxTime, output or not', async () => {
    const run = await runShell({ workdir: 'maxtime', command: ['sh', '-c', 'while :; do echo tick; sleep 0.1; done'], maxTime: new PyFloat(1), timeout: 10 });
    assert.equal(run.rc, -1);
    const headers = run.headers();
    assert.equal(headers[1], ` in dir ${join(base, 'maxtime')} (timeout 10 secs) (maxTime 1.0 sec)\n`);
    assert.ok(headers.includes("\ncommand timed out: 1.0 seconds elapsed running [b'sh', b'-c', b'while :; do echo tick; sleep 0.1; done'], attempting to kill\n"));
  });

  it('kills the whole process group on interrupt (rc -1), grandchildren included', async () => {
    let pgid = 0;
    const run = await runShell(
      { workdir: 'interrupt', command: ['sh', '-c', 'echo $$; sleep 100 & sleep 100'] },
      {
        onUpdate: ([key, value], abort) => {
          if (key === 'stdout' && !pgid) {
            pgid = Number(value);
            setTimeout(abort, 200);
          }
        },
      },
    );
    try {
      assert.ok(pgid > 0);
      assert.equal(run.rc, -1);
      assert.ok(run.headers().includes('\ncommand interrupted, attempting to kill\n'));
      assert.ok(run.headers().includes('process killed by signal 9\n'));
      assert.deepEqual(await groupAfterKill(pgid), []);
    } finally {
      killGroup(pgid);
    }
  });

  it('sends TERM first with sigtermTime, then interruptSignal to the group', async () => {
    const run = await runShell(
      { workdir: 'sigterm', command: "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; done", sigtermTime: 1, logEnviron: false },
      // Interrupted once the trap is set.
      { onUpdate: ([key, value], abort) => key === 'stdout' && value === 'ready\n' && abort() },
    );
    assert.equal(run.text('stdout'), 'ready\ngot TERM\n');
    assert.equal(run.rc, -1);
    // The shell lived to answer TERM (sh runs the trap only after its 0.1 s sleep ends), and only then came the KILL.
    const gotTerm = run.updates.findIndex(([k, v]) => k === 'stdout' && String(v).includes('got TERM'));
    const killed = run.updates.findIndex(([k, v]) => k === 'header' && v === 'process killed by signal 9\n');
    assert.ok(gotTerm >= 0 && killed > gotTerm, JSON.stringify(run.updates));
  });

  it('ends at TERM when that is enough, without waiting for sigtermTime', async () => {
    const run = await runShell({ workdir: 'sigterm', command: ['sleep', '100'], sigtermTime: 10 }, { abortAfterMs: 300 });
    assert.equal(run.rc, -1);
    // Signal 15: it ended at TERM; had it waited out sigtermTime, the KILL (signal 9) would have ended it.
    assert.ok(run.headers().includes('process killed by signal 15\n'));
  });

  it('sends the second signal to the group: a grandchild that ignores TERM dies too (3.7 spares it)', async () => {
    let pgid = 0;
    const run = await runShell(
      { workdir: 'sigterm', command: "echo $$; (trap '' TERM; sleep 100) & sleep 100", sigtermTime: 0.5 },
      {
        onUpdate: ([key, value], abort) => {
          if (key === 'stdout' && !pgid) {
            pgid = Number(value);
            setTimeout(abort, 200);
          }
        },
      },
    );
    try {
      assert.equal(run.rc, -1);
      assert.deepEqual(await groupAfterKill(pgid), []);
    } finally {
      killGroup(pgid);
    }
  });

  it('uses interruptSignal, and gives rc -1 to a killed command that still exits 0', async () => {
    const run = await runShell(
      // Quiet: the pipes are closed at the kill, and a write to them would end the shell with SIGPIPE (as in 3.7).
      { workdir: 'intsig', command: "exec >/dev/null 2>&1; trap 'exit 0' TERM; while :; do sleep 0.1; done", interruptSignal: 'TERM' },
      { abortAfterMs: 300 },
    );
    assert.equal(run.rc, -1);
    assert.ok(!run.headers().some((h) => h.startsWith('process killed by signal')));
  });

  it('abandons a process the signal does not kill after 5 s: fake rc -1, then the command fails', async () => {
    let pgid = 0;
    const run = await runShell(
      { workdir: 'unkillable', command: 'echo $$; sleep 100', interruptSignal: 'CONT', logEnviron: false },
      {
        onUpdate: ([key, value], abort) => {
          if (key === 'stdout' && !pgid) {
            pgid = Number(value);
            abort();
          }
        },
      },
    );
    try {
      assert.ok(run.error instanceof PbFailure);
      assert.equal(run.error.code, 'PROCESS_KILL_FAILED');
      assert.equal(run.error.value, 'SIGCONT failed to kill process');
      assert.deepEqual(run.headers().slice(-3), ['\ncommand interrupted, attempting to kill\n', 'SIGCONT failed to kill process\n', 'using fake rc=-1\n']);
      assert.equal(run.rc, -1);
    } finally {
      killGroup(pgid);
    }
  });
});

describe('shell: failure_reason and max_lines (Buildbot 4.x)', () => {
  /** The update just before the kill header, and the kill header itself. */
  const killUpdates = (run: ShellRun) => {
    const at = run.updates.findIndex(([key, value]) => key === 'header' && /attempting to kill\n$/.test(value as string));
    assert.ok(at > 0, JSON.stringify(run.updates));
    return { before: run.updates[at - 1], header: run.updates[at]![1] as string, at };
  };

  it('sends failure_reason timeout_without_output just before the kill header of a silence timeout', async () => {
    const run = await runShell({ workdir: 'reason', command: 'sleep 30', timeout: 1, logEnviron: false });
    assert.equal(run.rc, -1);
    const { before } = killUpdates(run);
    assert.deepEqual(before, ['failure_reason', 'timeout_without_output']);
    assert.equal(run.updates.filter(([key]) => key === 'failure_reason').length, 1);
  });

  it('sends failure_reason timeout just before the kill header of maxTime', async () => {
    const run = await runShell({ workdir: 'reason', command: 'while :; do echo tick; sleep 0.1; done', maxTime: 1, timeout: 10, logEnviron: false });
    assert.equal(run.rc, -1);
    assert.deepEqual(killUpdates(run).before, ['failure_reason', 'timeout']);
  });

  it('sends no failure_reason for an interrupt, nor for a command that ends on its own', async () => {
    const interrupted = await runShell({ workdir: 'reason', command: 'sleep 30' }, { abortAfterMs: 300 });
    assert.equal(interrupted.rc, -1);
    const ended = await runShell({ workdir: 'reason', command: 'exit 3', max_lines: 0 });
    assert.equal(ended.rc, 3);
    for (const run of [interrupted, ended]) assert.ok(!run.updates.some(([key]) => key === 'failure_reason'), JSON.stringify(run.updates));
  });

  it('kills a command past max_lines: failure_reason, the 4.2.1 header, signal 9, and no stdout read after it', async () => {
    // One line per read (the pause lets each echo arrive on its own), so the count trips at 4 of 3.
    const command = ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.05; done; echo done >&2'];
    const run = await runShell({ workdir: 'maxlines', command, max_lines: 3, logEnviron: false });
    assert.equal(run.rc, -1);
    const { before, header, at } = killUpdates(run);
    assert.deepEqual(before, ['failure_reason', 'max_lines_failure']);
    assert.equal(header, `\ncommand exceeds max lines: 4/3 written/allowed running [b'sh', b'-c', b'${command[2]}'], attempting to kill\n`);
    // As in 4.2.1, the read that went over the limit is still sent, after the header; nothing after it.
    assert.equal(run.text('stdout'), '1\n2\n3\n4\n');
    assert.deepEqual(run.updates[at + 1], ['stdout', '4\n']);
    assert.ok(run.headers().includes('process killed by signal 9\n'));
    assert.equal(run.text('stderr'), '');
  });

  it('kills a fast writer past max_lines with the signal (rc -1), not by closing its pipe first (which would end it on EPIPE)', async () => {
    for (let i = 0; i < 3; i++) {
      const run = await runShell({ workdir: 'maxlines', command: ['seq', '1', '10000000'], max_lines: 10, logEnviron: false });
      assert.equal(run.rc, -1, run.headers().join(''));
      assert.ok(run.headers().includes('process killed by signal 9\n'), run.headers().join(''));
      assert.ok(run.text('stdout').length < 1_000_000, `${run.text('stdout').length} characters sent`);
    }
  });

  it('counts CRLF, CR and LF as one line end each, on stdout and stderr together', async () => {
    const within = await runShell({ workdir: 'maxlines', command: "printf 'a\\r\\nb\\rc\\n'; printf 'x\\n' >&2", max_lines: 4 });
    assert.equal(within.rc, 0);
    const over = await runShell({ workdir: 'maxlines', command: "printf 'a\\r\\nb\\rc\\n'; sleep 0.1; printf 'x\\n' >&2; sleep 5", max_lines: 3 });
    assert.equal(over.rc, -1);
    assert.match(killUpdates(over).header, /^\ncommand exceeds max lines: 4\/3 written\/allowed running b"printf /);
  });

  it('does not count a stream the master did not ask for; no limit with None; a float limit prints as one', async () => {
    const unsent = await runShell({ workdir: 'maxlines', command: 'seq 1 50', max_lines: 2, want_stdout: false });
    assert.equal(unsent.rc, 0);
    const none = await runShell({ workdir: 'maxlines', command: 'seq 1 5000', max_lines: null });
    assert.equal(none.rc, 0);
    assert.equal(none.text('stdout').split('\n').length, 5001);
    const float = await runShell({ workdir: 'maxlines', command: 'seq 1 50; sleep 5', max_lines: new PyFloat(2) });
    assert.equal(float.rc, -1);
    assert.match(killUpdates(float).header, /^\ncommand exceeds max lines: 50\/2\.0 written\/allowed running /);
  });

  it('refuses a max_lines that is not a number', async () => {
    const run = await runShell({ workdir: 'maxlines', command: 'true', max_lines: 'many' });
    assert.ok(run.error instanceof PbFailure, String(run.error));
    assert.match((run.error as PbFailure).message, /'max_lines' must be a number of lines, not 'many'/);
  });
});

describe('shell: logfiles', () => {
  it('streams a logfile written during the command, while it runs and at the end', async () => {
    const run = await runShell({
      workdir: 'logs1',
      command: 'echo first > build.log; sleep 2.5; echo marker; echo second >> build.log',
      logfiles: new Map([['build', 'build.log']]),
    });
    assert.equal(run.logs('build'), 'first\nsecond\n');
    const firstLog = run.updates.findIndex(([k]) => k === 'log');
    const marker = run.updates.findIndex(([k]) => k === 'stdout');
    assert.ok(firstLog < marker, 'the 2 s poll sent the first line before the command went on');
    const keys = run.updates.map(([k]) => k);
    assert.ok(keys.lastIndexOf('log') < keys.indexOf('rc'));
    assert.equal(run.headers()[2], " watching logfiles {'build': 'build.log'}\n");
  });

  it('never sends an unchanged pre-existing file; with follow, only what is appended', async () => {
    const dir = join(base, 'logs2');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'old.log'), 'stale\n');
    await writeFile(join(dir, 'followed.log'), 'before\n');
    await writeFile(join(dir, 'whole.log'), 'before\n');
    const run = await runShell({
      workdir: 'logs2',
      command: 'echo after >> followed.log; echo after >> whole.log',
      logfiles: new Map<PbValue, PbValue>([
        ['old', 'old.log'],
        ['followed', new Map<PbValue, PbValue>([['filename', 'followed.log'], ['follow', true]])],
        ['whole', new Map<PbValue, PbValue>([['filename', 'whole.log']])],
      ]),
    });
    assert.equal(run.logs('old'), '');
    assert.equal(run.logs('followed'), 'after\n');
    assert.equal(run.logs('whole'), 'before\nafter\n');
    assert.equal(
      run.headers()[2],
      " watching logfiles {'old': 'old.log', 'followed': {'filename': 'followed.log', 'follow': True}, 'whole': {'filename': 'whole.log'}}\n",
    );
  });

  it('counts logfile output as output for the silence timeout', async () => {
    const run = await runShell({
      workdir: 'logs3',
      command: 'for i in 1 2 3 4; do echo $i >> quiet.log; sleep 1; done',
      logfiles: new Map([['quiet', 'quiet.log']]),
      timeout: 2.5,
    });
    assert.equal(run.rc, 0);
    assert.equal(run.logs('quiet'), '1\n2\n3\n4\n');
  });

  it('reads logfiles relative to the workdir, or at an absolute path', async () => {
    const elsewhere = join(base, 'elsewhere.log');
    const run = await runShell({
      workdir: 'logs4',
      command: `echo abs > ${elsewhere}`,
      logfiles: new Map([['abs', elsewhere]]),
    });
    assert.equal(run.logs('abs'), 'abs\n');
  });
});

describe('shell: headers', () => {
  it('sends the 3.7 headers in order, and 3.7\'s warning (no newline) when initialStdin turns usePTY off', async () => {
    const run = await runShell({
      workdir: 'hdr',
      command: ['printf', '%s', "it's", ''],
      timeout: 1200,
      maxTime: 3600,
      usePTY: true,
      logEnviron: false,
      initial_stdin: 'x',
    });
    assert.deepEqual(run.headers().slice(0, 7), [
      'WARNING: disabling usePTY for this command',
      `printf %s 'it'"'"'s' ""\n`,
      ` in dir ${join(base, 'hdr')} (timeout 1200 secs) (maxTime 3600 secs)\n`,
      ' watching logfiles {}\n',
      ` argv: [b'printf', b'%s', b"it's", b'']\n`,
      ' writing 1 bytes to stdin\n',
      ' using PTY: False\n',
    ]);
    assert.match(run.headers()[7]!, /^elapsedTime=\d+\.\d{6}\n$/);
    assert.equal(run.headers().length, 8);
  });
});

describe('shell: the same headers as the real buildbot-worker 3.7', () => {
  it('for an argv command with obfuscation, env, logfiles, stdin and a timeout kill', async () => {
    const workdir = join(base, 'compare1');
    await mkdir(workdir, { recursive: true });
    await writeFile(join(workdir, 'old.log'), 'stale\n');
    const env = { PATH: '/usr/bin:/bin', HOME: '/home/worker', LANG: 'C.UTF-8', GONE: 'x', SHOWN: 'shown' };
    const script = 'cat; echo; echo "$FOO $LIST $BARE ${GONE-unset}"; echo to-stderr >&2; echo logged > new.log; sleep 30';
    const python = await runPythonWorker(
      {
        command: ['sh', '-c', script, ['obfuscated', 'real-secret', 'FAKE'], '', 'é'],
        workdir,
        kw: {
          environ: { FOO: '${HOME}/x${NOPE}', LIST: ['/a', '/b'], GONE: null, BARE: '$HOME' },
          timeout: 1,
          maxTime: 30,
          logfiles: { old: 'old.log', new: { filename: 'new.log', follow: false } },
          initialStdin: 'from stdin',
        },
      },
      env,
    );
    await rm(join(workdir, 'new.log'));
    const ours = await runShell(
      {
        workdir: 'compare1',
        command: ['sh', '-c', script, tuple('obfuscated', 'real-secret', 'FAKE'), '', 'é'],
        env: new Map<PbValue, PbValue>([
          ['FOO', '${HOME}/x${NOPE}'],
          ['LIST', ['/a', '/b']],
          ['GONE', null],
          ['BARE', '$HOME'],
        ]),
        timeout: 1,
        maxTime: 30,
        logfiles: new Map<PbValue, PbValue>([
          ['old', 'old.log'],
          ['new', new Map<PbValue, PbValue>([['filename', 'new.log'], ['follow', false]])],
        ]),
        initial_stdin: 'from stdin',
      },
      { environ: env },
    );
    const expected = comparable(python);
    assert.deepEqual(comparable(ours.updates), expected);
    assert.equal(expected.stdout, 'from stdin\n/home/worker/x /a:/b $HOME unset\n');
    assert.equal(expected.logs, 'logged\n');
  });

  it('for a string command with float limits, a signal death and a non-zero rc', async () => {
    const workdir = join(base, 'compare2');
    const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };
    for (const [command, rcNote] of [['kill -TERM $$', 'signal'], ["echo 'quoted \"both\"'; exit 7", 'rc']] as const) {
      const python = await runPythonWorker({ command, workdir, kw: { timeout: 2.5, maxTime: 1, logEnviron: false }, floats: ['maxTime'] }, env);
      const ours = await runShell(
        { workdir: 'compare2', command, timeout: 2.5, maxTime: new PyFloat(1), logEnviron: false },
        { environ: env },
      );
      assert.deepEqual(comparable(ours.updates), comparable(python), rcNote);
    }
  });
});

describe('shell: the same updates as the real buildbot-worker 4.2.1 (in the Buildbot 4 root)', () => {
  it('for max_lines and both timeouts: failure_reason, the kill header, signal and rc, in the same order', async () => {
    const runtime = buildbotRuntime('4');
    const dir = await mkdtemp(join(runtime.tmpDir, 'bbgate-shell4-'));
    const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };
    // One line per read (each echo has a pause after it), so both count to 4 of 3 at the same line.
    const lines = ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done'];
    const cases: [string, PbValue, Record<string, number>][] = [
      ['max_lines', lines, { max_lines: 3 }],
      ['timeout', 'sleep 30', { timeout: 1 }],
      ['maxTime', ['sleep', '30'], { maxTime: 1, timeout: 10 }],
    ];
    try {
      const runs = await Promise.all(
        cases.map(async ([name, command, limits]) => {
          const workdir = join(dir, name);
          const kw = { ...limits, logEnviron: false };
          const [python, ours] = await Promise.all([
            runPythonWorker({ command, workdir: runtime.inside(workdir), kw: { ...kw, max_lines: limits.max_lines ?? null } }, env, runtime, dir),
            runShell({ workdir, command, ...kw }, { environ: env }),
          ]);
          return { name, python: comparable(python, { reasons: true, workdir: runtime.inside(workdir) }), ours: comparable(ours.updates, { reasons: true, workdir }) };
        }),
      );
      for (const { name, python, ours } of runs) assert.deepEqual(ours, python, name);
      const [maxLines, timeout, maxTime] = runs.map((r) => r.python);
      assert.ok(maxLines!.headers.includes('failure_reason=max_lines_failure'), JSON.stringify(maxLines));
      assert.equal(maxLines!.stdout, '1\n2\n3\n4\n');
      assert.ok(timeout!.headers.includes('failure_reason=timeout_without_output'), JSON.stringify(timeout));
      assert.ok(maxTime!.headers.includes('failure_reason=timeout'), JSON.stringify(maxTime));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
