// Where the tests' Buildbot programs run: Debian bookworm's 3.7 on this machine, or Debian
// trixie's 4.2.1 in a root made by scripts/buildbot4-root.sh (bookworm packages 3.7 only).
//
// A 4.2.1 program runs as `unshare --mount --propagation private` + `chroot ROOT`: in its own
// mount namespace it mounts /proc (Python and Twisted read it) and binds the host's /dev/pts
// (PTY steps of the Python worker), so those mounts vanish with the process and nothing is left
// mounted in the root. The exec chain keeps one pid from unshare to the program, so the program's
// parent is the test process (the parent watches in master.cfg and the worker tac rely on it).
// The chroot shares the host's network: a master inside listens on the host's 127.0.0.1.
// Needs root (CAP_SYS_ADMIN for unshare and mount), as the rest of the suite does.
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixtureDir } from './fixture-dir.js';
import { PYTHON } from './python.js';

export type BuildbotVersion = '3.7' | '4';
export type BuildbotProgram = 'python' | 'buildbot' | 'buildbot-worker';

export interface Invocation {
  file: string;
  args: string[];
  /** The spawn cwd (3.7); a 4.2.1 program gets its cwd inside the chroot instead. */
  cwd?: string;
}

export interface BuildbotRuntime {
  readonly version: BuildbotVersion;
  /** The host directory that new basedirs go in; the programs see it too. */
  readonly tmpDir: string;
  /** How to run `program args` with working directory `cwd` (a host path under tmpDir). */
  invoke(program: BuildbotProgram, args: string[], cwd: string): Invocation;
  /** The path the programs see for a host path under tmpDir. */
  inside(hostPath: string): string;
}

export const BUILDBOT = process.env.BBGATE_BUILDBOT ?? '/usr/bin/buildbot';
export const BUILDBOT_WORKER = process.env.BBGATE_BUILDBOT_WORKER ?? '/usr/bin/buildbot-worker';

const host37: BuildbotRuntime = {
  version: '3.7',
  tmpDir: os.tmpdir(),
  invoke(program, args, cwd) {
    const file = program === 'python' ? PYTHON : program === 'buildbot' ? BUILDBOT : BUILDBOT_WORKER;
    return { file, args, cwd };
  },
  inside: (hostPath) => hostPath,
};

/** The Buildbot 4.2.1 root: BBGATE_BUILDBOT4_ROOT, else `<repo>/.cache/buildbot4-root`. */
export function buildbot4Root(): string {
  return process.env.BBGATE_BUILDBOT4_ROOT ?? path.join(fixtureDir(), '..', '..', '..', '.cache', 'buildbot4-root');
}

// $1 is the root; the rest is the command to run inside it. Full paths: the caller's PATH may lack sbin.
const ENTER_ROOT =
  'root=$1; shift; /usr/bin/mount -t proc proc "$root/proc" && /usr/bin/mount --bind /dev/pts "$root/dev/pts" && exec /usr/sbin/chroot "$root" "$@"';

function chroot4(root: string): BuildbotRuntime {
  const inside = (hostPath: string) => {
    const rel = path.relative(root, hostPath);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${hostPath} is outside the Buildbot 4 root ${root}`);
    return `/${rel}`;
  };
  return {
    version: '4',
    tmpDir: path.join(root, 'tmp'),
    invoke(program, args, cwd) {
      const file = program === 'python' ? '/usr/bin/python3' : `/usr/bin/${program}`;
      return {
        file: '/usr/bin/unshare',
        args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', ENTER_ROOT, 'sh', root, '/usr/bin/env', '-C', inside(cwd), file, ...args],
      };
    },
    inside,
  };
}

/**
 * The runtime for `version`. A missing 4.2.1 root is an error that says how to make it: the
 * 4.x tests fail, they never skip.
 */
export function buildbotRuntime(version: BuildbotVersion = '3.7'): BuildbotRuntime {
  if (version === '3.7') return host37;
  const root = path.resolve(buildbot4Root());
  if (!existsSync(path.join(root, '.bbgate-ready'))) {
    throw new Error(
      `no Buildbot 4.2.1 root at ${root} (no .bbgate-ready in it): make it with \`bash scripts/buildbot4-root.sh\` ` +
        '(as root; debootstrap from the Debian mirror in the apt sources, about 2.5 minutes and 400 MB), ' +
        'or point BBGATE_BUILDBOT4_ROOT at a finished one',
    );
  }
  return chroot4(root);
}
