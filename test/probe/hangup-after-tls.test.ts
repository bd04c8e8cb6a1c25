// The defect of issue 10, against the real peer that shows it: `openssl s_server -quiet` with
// its stdin at end of file completes each TLS handshake and closes the connection at once, as
// a TLS-terminating load balancer with no healthy backend does. The probe printed nothing and
// exited 0; a started worker logged "TLS established" and exited 0 a little later. Now the
// probe fails naming the step, and the worker logs the cause, retries, and stays up.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bbgate, CLI, type ProbeJson } from '../helpers/cli.js';
import { waitListening } from '../helpers/daemon.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';

describe('a TLS server that hangs up right after the handshake (openssl s_server, stdin at EOF)', () => {
  let pki: TestPki;
  let roots: string;
  const servers: LineProcess[] = [];
  const dirs: string[] = [];

  /** s_server that closes every connection right after its handshake; `args` pick the TLS version and tickets. */
  async function hangUpServer(...args: string[]): Promise<number> {
    const port = await freePort();
    const server = startProcess('openssl', ['s_server', '-quiet', '-accept', `127.0.0.1:${port}`,
      '-cert', pki.server.certFile, '-key', pki.server.keyFile, '-cert_chain', pki.intermediate.certFile, ...args]);
    server.child.stdin.end();
    servers.push(server);
    await waitListening('openssl s_server', server, [port], () => server.stderr());
    return port;
  }

  before(async () => {
    pki = await testPki();
    roots = await pki.trustDir(pki.root);
  });
  after(() => {
    for (const s of servers) s.kill();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const variants: [string, string[]][] = [
    ['TLS 1.3 with session tickets', []],
    ['TLS 1.3 without session tickets', ['-num_tickets', '0']],
    ['TLS 1.2', ['-tls1_2']],
  ];

  for (const [name, args] of variants) {
    it(`${name}: the probe exits non-zero naming the step, in text and in JSON`, { timeout: 60_000 }, async () => {
      const port = await hangUpServer(...args);
      const target = `tls:localhost:${port}:trustRoots=${roots}`;
      const text = await bbgate(['probe', target, '--name', 'w', '--password', 'p', '--timeout', '5']);
      assert.notEqual(text.status, 0, text.stdout + text.stderr);
      // The handshake worked; what failed is the step after it (or the TLS step's own check for
      // a server that hangs up, when the close arrives before the handshake's result is read).
      assert.match(text.stdout, /✘ (tls|pb) .*(closed the connection|hung up|right after)/, text.stdout);
      const json = await bbgate(['probe', target, '--name', 'w', '--password', 'p', '--timeout', '5', '--json']);
      assert.notEqual(json.status, 0);
      const report = JSON.parse(json.stdout) as ProbeJson;
      assert.equal(report.ok, false);
      const failed = report.steps.find((s) => !s.ok)!;
      assert.ok(['tls', 'pb'].includes(failed.step), json.stdout);
      assert.match(failed.code!, /^(PB_NOT_PB|TLS_HANDSHAKE)$/);
      assert.equal(report.steps.at(-1), failed, 'the walk stops at the failing step');
    });
  }

  it('wss://: the probe exits non-zero naming the websocket step', { timeout: 60_000 }, async () => {
    const port = await hangUpServer();
    const r = await bbgate(['probe', `wss://localhost:${port}/pb#trustRoots=${roots}`, '--timeout', '5', '--json']);
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    const failed = (JSON.parse(r.stdout) as ProbeJson).steps.find((s) => !s.ok)!;
    assert.ok(['tls', 'websocket'].includes(failed.step), r.stdout);
  });

  it('a started worker logs why, retries with backoff, and stays up until it is stopped (then exits 0)', { timeout: 60_000 }, async () => {
    const port = await hangUpServer();
    const parent = mkdtempSync(join(tmpdir(), 'bbgate-hangup-'));
    dirs.push(parent);
    const dir = join(parent, 'w');
    const created = await bbgate(['create-worker', '--maxdelay', '1', '--connection-string', `tls:localhost:${port}:trustRoots=${roots}:timeout=5`, dir, 'w', 'p']);
    assert.equal(created.status, 0, created.stderr);
    // JSON lines (as a log shipper takes them), to read each retry's code.
    const child = spawn(process.execPath, [CLI, 'start', '--nodaemon', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BBGATE_LOG_FORMAT: 'json' } });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const retries: { code?: string; msg: string }[] = [];
    let buffered = '';
    const enough = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const entry = JSON.parse(line) as { code?: string; msg: string };
          if (/^connection failed: .*retrying in/.test(entry.msg)) retries.push(entry);
        }
        if (retries.length >= 3) resolve();
      });
      void exited.then((code) => reject(new Error(`the worker exited (${code}) after ${retries.length} retries`)));
    });
    await enough;
    assert.equal(child.exitCode, null, 'still running');
    for (const r of retries) {
      assert.match(r.code!, /^(PB_CONNECTION_LOST|TLS_HANDSHAKE)$/, r.msg);
      assert.match(r.msg, /closed the connection|right after/);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'a stop is the one way to status 0');
  });
});
