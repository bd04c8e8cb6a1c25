// `bbgate relay` as a process: configuration errors are reported before anything listens, and
// SIGTERM drains (no new connections, /healthz 503, live ones go on until the drain timeout).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startTestWorker } from '../helpers/bbgate-worker.js';
import { bbgate, CLI } from '../helpers/cli.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

describe('bbgate relay: configuration errors come before listening', () => {
  const errors: [string, string[], RegExp][] = [
    ['no allow rule', ['--listen', 'tcp:0', '--upstream', 'tcp:127.0.0.1:9989'], /no --allow rule: the relay admits only the workers it is told to/],
    ['no listener', ['--upstream', 'tcp:127.0.0.1:9989', '--allow', '*'], /no listener: give at least one --listen/],
    ['no upstream', ['--listen', 'tcp:0', '--allow', '*'], /no upstream: give --upstream/],
    ['a bad listener', ['--listen', 'udp:53', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*'], /listener type "udp" is not supported/],
    ['a TLS listener without a certificate', ['--listen', 'tls:0', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*'], /needs certKey=PEM/],
    ['an unreadable certificate', ['--listen', 'tls:0:certKey=/nonexistent.pem', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*'], /cannot read certKey \/nonexistent.pem: ENOENT/],
    ['a bad upstream', ['--listen', 'tcp:0', '--upstream', 'tcp:master', '--allow', '*'], /upstream \(--upstream\): "tcp:master": no port/],
    ['a bad CIDR', ['--listen', 'tcp:0', '--upstream', 'tcp:127.0.0.1:9989', '--allow', 'w@10.0.0.0/33'], /RELAY|10\.0\.0\.0\/33/],
    ['a bad number', ['--listen', 'tcp:0', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*', '--max-connections', 'lots'], /maxConnections \(--max-connections\) must be a whole number/],
    ['a per-source limit of 0', ['--listen', 'tcp:0', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*', '--max-per-source', '0'], /maxPerSource \(--max-per-source\) must be a whole number of at least 1, not 0/],
    ['certNames=1 without client certificates', ['--listen', 'tls:0:certKey=/c.pem:certNames=1', '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*'], /certNames=1 needs client certificates: add caCertsDir=DIR/],
    ['an argument', ['extra', '--listen', 'tcp:0'], /relay takes no arguments/],
  ];
  for (const [what, args, message] of errors) {
    it(`exits 1 for ${what}`, async () => {
      const run = await bbgate(['relay', ...args]);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stdout, /relay listening/);
    });
  }

  it('exits 1 for a TLS listener whose key does not match its certificate, and an upstream client certificate that is missing', async () => {
    const pki = await testPki();
    const mismatch = await bbgate(['relay', '--listen', `tls:0:certKey=${pki.server.certFile}:privateKey=${pki.client.keyFile}`, '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*']);
    assert.equal(mismatch.status, 1, mismatch.stderr);
    assert.match(mismatch.stderr, /listener tls:0: the certificate and key cannot be used/);
    const missing = await bbgate(['relay', '--listen', 'tcp:0', '--upstream', 'tls:127.0.0.1:9989:certificate=/nonexistent/worker.pem', '--allow', '*']);
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /upstream tls:127\.0\.0\.1:9989:certificate=\/nonexistent\/worker\.pem: .*nonexistent/);
    assert.doesNotMatch(mismatch.stdout + missing.stdout, /relay listening/);
  });

  it('exits 1 for a port in use, a config file with a typo, and one that is not JSON', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as { port: number }).port;
    try {
      const run = await bbgate(['relay', '--listen', `tcp:${port}:interface=127.0.0.1`, '--upstream', 'tcp:127.0.0.1:9989', '--allow', '*']);
      assert.equal(run.status, 1);
      assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} .*the address is in use`));
    } finally {
      busy.close();
    }
    const dir = await mkdtemp(join(tmpdir(), 'bbgate-relay-cfg-'));
    await writeFile(join(dir, 'typo.json'), JSON.stringify({ listen: ['tcp:0'], upstream: 'tcp:127.0.0.1:9989', allow: ['*'], maxConnection: 5 }));
    const typo = await bbgate(['relay', '--config', join(dir, 'typo.json')]);
    assert.equal(typo.status, 1);
    assert.match(typo.stderr, /unknown setting "maxConnection"/);
    await writeFile(join(dir, 'bad.json'), '{ "listen": [');
    const bad = await bbgate(['relay', '--config', join(dir, 'bad.json')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.json is not valid JSON/);
  });
});

describe('bbgate relay: SIGTERM drains', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'drain-w', password: 'drain-pass' }] });
  });
  after(() => master?.stop());

  it('stops accepting, answers /healthz with 503, lets the live worker run until the drain timeout, then exits 0', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const relay = spawn(process.execPath, [CLI, 'relay', '--listen', `tcp:${port}:interface=127.0.0.1`, '--upstream', `tcp:127.0.0.1:${master.pbPort}`,
      '--allow', 'drain-*', '--metrics', `127.0.0.1:${metricsPort}`, '--drain-timeout', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buffered = '';
    relay.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((resolve) => relay.on('exit', (code) => resolve(code)));
    const waitFor = async (msg: string) => {
      for (let i = 0; i < 200; i++) {
        const hit = lines.find((l) => l.msg === msg);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no "${msg}" from the relay: ${JSON.stringify(lines)}`);
    };
    await waitFor('relay listening');
    const worker = await startTestWorker({ connection: `tcp:127.0.0.1:${port}`, workername: 'drain-w', password: 'drain-pass', maxdelay: 60 });
    try {
      await master.waitForWorker('drain-w');
      assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);
      relay.kill('SIGTERM');
      await waitFor('draining: no new connections');
      const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { draining: boolean }).draining, true);
      const refused = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        s.on('connect', () => resolve('connected'));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.equal(refused, 'ECONNREFUSED');
      // The worker is still attached while the drain runs...
      await master.waitForWorker('drain-w');
      // ...and is cut at the drain timeout, after which the relay exits cleanly.
      assert.equal(await exited, 0);
      const closed = lines.find((l) => l.msg === 'connection closed' && l.worker === 'drain-w');
      assert.match(String(closed?.reason), /the relay is stopping \(drain timeout of 3 s\)/);
      assert.ok(Number(closed?.bytesToMaster) > 0 && Number(closed?.bytesToWorker) > 0);
      await master.waitForWorker('drain-w', { connected: false });
    } finally {
      relay.kill('SIGKILL');
      await worker.stop();
    }
  });
});

describe('bbgate relay: --max-per-source', () => {
  it('overrides maxPerSource from the config file, and refuses the connection past it at once', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const dir = await mkdtemp(join(tmpdir(), 'bbgate-relay-cfg-'));
    await writeFile(join(dir, 'relay.json'), JSON.stringify({ listen: [`tcp:${port}:interface=127.0.0.1`], upstream: 'tcp:127.0.0.1:9', allow: ['*'], maxPerSource: 5 }));
    const relay = spawn(process.execPath, [CLI, 'relay', '--config', join(dir, 'relay.json'), '--max-per-source', '1', '--metrics', `127.0.0.1:${metricsPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const listening = new Promise<void>((resolve, reject) => {
      relay.stdout.on('data', (c: Buffer) => {
        output += c.toString();
        if (output.includes('"relay listening"')) resolve();
      });
      relay.on('exit', (code) => reject(new Error(`the relay exited (${code}): ${output}`)));
    });
    const client = () => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      return new Promise<{ socket: typeof socket; got: string }>((resolve) => {
        socket.once('data', () => resolve({ socket, got: 'offer' }));
        socket.once('close', () => resolve({ socket, got: 'closed' }));
      });
    };
    try {
      await listening;
      const first = await client();
      const second = await client();
      assert.deepEqual([first.got, second.got], ['offer', 'closed']);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^bbgate_relay_connections_refused_total\{reason="max_per_source"\} 1$/m);
      first.socket.destroy();
    } finally {
      relay.kill('SIGKILL');
    }
  });
});
