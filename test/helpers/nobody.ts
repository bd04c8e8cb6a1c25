// Runs a snippet of the built code as the unprivileged `nobody` user, to check behaviour root
// never sees (unreadable files, read-only trees). The build is copied to a world-readable
// temporary directory first, because wherever the checkout lives may be closed to nobody.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUILT_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const NOBODY = { uid: 65534, gid: 65534, encoding: 'utf8' } as const;

export const canSwitchToNobody = process.getuid?.() === 0;

/** Runs an ES module body as nobody; `src` in it is the URL of the copied build's src/ directory. */
export function runAsNobody(body: (src: string) => string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bbgate-nobody-'));
  try {
    chmodSync(dir, 0o755);
    cpSync(BUILT_SRC, join(dir, 'src'), { recursive: true });
    const src = new URL(`file://${join(dir, 'src')}/`).href;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', body(src)], NOBODY);
    return { status: child.status, stdout: child.stdout, stderr: child.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
