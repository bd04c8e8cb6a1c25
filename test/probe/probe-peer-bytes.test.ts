// What the probe shows when the peer is not a PB master: its first bytes, escaped and bounded,
// from a real HTTP server (Python's http.server), an SSH-like banner, and binary garbage.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bbgate, type ProbeJson } from '../helpers/cli.js';
import { PYTHON } from '../helpers/python.js';
import { startProcess, type LineProcess } from '../helpers/processes.js';

async function probe(args: string[]): Promise<{ status: number; step: ProbeJson['steps'][number]; text: string }> {
  const run = await bbgate(['probe', ...args, '--timeout', '1', '--json']);
  return { status: run.status, step: (JSON.parse(run.stdout) as ProbeJson).steps.at(-1)!, text: run.stdout + run.stderr };
}

/** A listener that writes `greeting` to each connection and then keeps it open, silent. */
async function scripted(greeting: Buffer | string, end = false): Promise<{ port: number; close(): void }> {
  const held: Socket[] = [];
  const server: Server = createServer((s) => {
    held.push(s);
    if (end) s.end(greeting);
    else s.write(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

describe('bbgate probe shows what a non-PB peer sent', () => {
  let http: LineProcess;
  let httpPort: number;
  before(async () => {
    http = startProcess(PYTHON, ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1'], { cwd: '/tmp' });
    httpPort = Number(/port (\d+)/.exec(await http.waitForLine(/^Serving HTTP on .* port \d+/))![1]);
  });
  after(() => http?.kill());

  it('a real HTTP server on a tcp: port sent nothing: says so (exit 6)', async () => {
    const { status, step, text } = await probe([`tcp:127.0.0.1:${httpPort}`]);
    assert.equal(status, 6, text);
    assert.equal(step.code, 'PB_NOT_PB');
    assert.match(step.message, /no PB greeting arrived within 1 s \(it sent nothing: a Buildbot master greets at once; an HTTP server waits for a request\)/);
  });

  it('a real HTTP server on a tls: port: shows its answer to the ClientHello, escaped and cut at 64 bytes (exit 4)', async () => {
    const { status, step, text } = await probe([`tls:127.0.0.1:${httpPort}`]);
    assert.equal(status, 4, text);
    assert.equal(step.code, 'TLS_NOT_TLS');
    assert.match(step.message, /\("<!DOCTYPE HTML>\\n<html lang=\\"en\\">\\n.{20,}"…: an HTTP server \(a page with no status line\)\)/);
    const shown = /\("(.*)"…/.exec(step.message)![1]!.replace(/\\(["\\nrt]|x..)/g, '_');
    assert.equal(shown.length, 64, 'exactly 64 bytes shown');
  });

  it('an SSH banner: shows it with its \\r\\n (exit 6)', async () => {
    const ssh = await scripted('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n');
    try {
      const { status, step, text } = await probe([`tcp:127.0.0.1:${ssh.port}`]);
      assert.equal(status, 6, text);
      assert.equal(step.code, 'PB_NOT_PB');
      assert.match(step.message, / \(it sent "SSH-2\.0-OpenSSH_9\.2p1 Debian-2\+deb12u3\\r\\n": an SSH server\)$/);
    } finally {
      ssh.close();
    }
  });

  it('binary bytes: escaped as \\xHH, never raw in the output', async () => {
    const garbage = await scripted(Buffer.concat([Buffer.from([0x01, 0xff, 0x00, 0x1b]), Buffer.from('[2J'), Buffer.alloc(100, 0x41)]));
    try {
      const { status, step, text } = await probe([`tcp:127.0.0.1:${garbage.port}`]);
      assert.equal(status, 6, text);
      assert.equal(step.code, 'PB_NOT_PB');
      assert.match(step.message, /it sent "\\x01\\xff\\x00\\x1b\[2JA+"…\)$/);
      assert.doesNotMatch(text, /[\x00\x1b]/);
    } finally {
      garbage.close();
    }
  });

  it('an HTTP error that hangs up: shows its status line, cut at 64 bytes', async () => {
    const answer = await scripted('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', true);
    try {
      const { status, step, text } = await probe([`tcp:127.0.0.1:${answer.port}`]);
      assert.equal(status, 6, text);
      assert.equal(step.code, 'PB_NOT_PB');
      assert.match(step.message, /\(it sent "HTTP\/1\.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n"…: an HTTP server\)$/);
    } finally {
      answer.close();
    }
  });
});
