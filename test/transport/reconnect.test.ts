// Reconnect with jittered backoff, and the keepalive reply timeout, including a silent drop
// (a relay that stops forwarding without closing, as a NAT box does) in front of a real master.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { openPbSession, type PbSession } from '../../src/pb/session.js';
import { ProbeMind } from '../../src/probe/mind.js';
import { parseProxyString } from '../../src/address/proxy-string.js';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/transport/backoff.js';
import { dial } from '../../src/route/dial.js';
import { parseEndpoint } from '../../src/address/connection-string.js';
import { startKeepalive } from '../../src/transport/keepalive.js';
import { Reconnector, type RetryEvent, type Session } from '../../src/transport/reconnect.js';
import { startMaster, type RunningMaster } from '../helpers/buildbot-master.js';
import { startSquid } from '../helpers/squid.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { waitFor, within } from '../helpers/wait.js';

const policy = { initial: 0.01, factor: 2, max: 0.05 };

function fakeSession(): Session & { end(err: Error): void } {
  let end!: (err: Error) => void;
  const closed = new Promise<Error>((resolve) => (end = resolve));
  return { closed, close: () => end(new Error('closed')), end };
}

describe('backoff', () => {
  it('grows by the factor, is capped by maxdelay, and draws uniformly below the bound (full jitter)', () => {
    assert.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0.999999), 0.999999);
    assert.equal(backoffDelay(3, DEFAULT_BACKOFF, () => 1), 1.5 ** 3);
    assert.equal(backoffDelay(50, DEFAULT_BACKOFF, () => 1), 300);
    assert.equal(backoffDelay(50, { ...DEFAULT_BACKOFF, max: 20 }, () => 1), 20);
    assert.equal(backoffDelay(1e6, DEFAULT_BACKOFF, () => 0.5), 150);
    assert.equal(backoffDelay(5, DEFAULT_BACKOFF, () => 0), 0);
  });
});

describe('Reconnector', () => {
  it('retries failures with growing attempts, and resets the count only after a successful connect', async () => {
    const attempts: number[] = [];
    const outcomes = ['fail', 'fail', 'ok', 'fail', 'ok'];
    const sessions: ReturnType<typeof fakeSession>[] = [];
    const r = new Reconnector({
      policy,
      connect: async (attempt) => {
        attempts.push(attempt);
        if (outcomes.shift() === 'fail') throw new BbgateError('NET_REFUSED', 'refused');
        const s = fakeSession();
        sessions.push(s);
        setTimeout(() => s.end(new Error('dropped')), 5);
        return s;
      },
    });
    const retries: RetryEvent[] = [];
    r.on('retry', (e: RetryEvent) => retries.push(e));
    // Stopped on the second session's event, before its drop (a timer) can start another round.
    const second = new Promise<void>((resolve) => r.on('session', () => sessions.length === 2 && resolve()));
    r.start();
    await within(second, 10_000, 'the second session');
    await r.stop();
    assert.deepEqual(attempts, [0, 1, 2, 0, 1]);
    assert.equal(retries[0]!.error.message, 'refused');
    assert.equal(retries[2]!.error.message, 'dropped');
  });

  it('gives up after maxretries failures in a row, naming the count and the last error, and logs every retry', async () => {
    const lines: string[] = [];
    const logger = { info: (_: object, m: string) => lines.push(`info ${m}`), error: (_: object, m: string) => lines.push(`error ${m}`) };
    const r = new Reconnector({ policy, maxRetries: 3, logger, connect: async () => Promise.reject(new BbgateError('NET_TIMEOUT', 'no answer')) });
    const gaveUp = new Promise<BbgateError>((resolve) => r.on('give-up', resolve));
    r.start();
    const err = await gaveUp;
    assert.equal(err.code, 'NET_TIMEOUT');
    assert.equal(err.message, 'gave up after 3 failed attempts (maxretries 3): no answer');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^info connection failed: no answer; retrying in \d+ ms$/);
    assert.equal(lines[2], 'error gave up after 3 failed attempts (maxretries 3): no answer');
  });

  it('does not retry what no retry can fix', async () => {
    let calls = 0;
    const r = new Reconnector({
      policy,
      isFatal: (e) => (e as BbgateError).code === 'ENDPOINT_SYNTAX',
      connect: async () => {
        calls++;
        throw new BbgateError('ENDPOINT_SYNTAX', 'bad string');
      },
    });
    const gaveUp = new Promise<BbgateError>((resolve) => r.on('give-up', resolve));
    r.start();
    assert.match((await gaveUp).message, /not retrying: bad string/);
    assert.equal(calls, 1);
  });
});

describe('keepalive', () => {
  it('declares the connection dead when a ping goes unanswered for the timeout', async () => {
    const events: string[] = [];
    const dead = await within(
      new Promise<BbgateError>((resolve) => {
        startKeepalive({
          interval: 0.1,
          timeout: 0.2,
          ping: () => {
            events.push('ping');
            return new Promise(() => undefined);
          },
          onDead: (err) => {
            events.push('dead');
            resolve(err);
          },
        });
      }),
      10_000,
      'the keepalive verdict',
    );
    assert.equal(dead.code, 'NET_KEEPALIVE_TIMEOUT');
    // Dead only after a ping went out unanswered, once, and no ping after it.
    assert.equal(events[0], 'ping');
    assert.equal(events.indexOf('dead'), events.length - 1, events.join(', '));
  });

  it('stays quiet while pings are answered', async () => {
    let pings = 0;
    let died = false;
    const stop = startKeepalive({ interval: 0.05, timeout: 0.05, ping: async () => void pings++, onDead: () => (died = true) });
    try {
      await waitFor(() => pings >= 6 || died, 'six answered pings');
    } finally {
      stop();
    }
    assert.equal(died, false);
  });
});

describe('silent drop in front of a real Buildbot master', () => {
  let master: RunningMaster;
  let relay: TcpRelay;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'nat-w', password: 'pw' }] });
    relay = await startTcpRelay(master.pbPort);
  });
  after(async () => {
    await relay?.close();
    await master?.stop();
  });

  it('notices a connection that went silent within keepalive + timeout, and logs in again', async () => {
    const keepalive = { interval: 1, timeout: 1 };
    const reconnector = new Reconnector<PbSession>({
      policy: { initial: 0.2, factor: 1.5, max: 1 },
      connect: async () => {
        const socket = createConnection({ host: '127.0.0.1', port: relay.port, noDelay: true });
        await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        const session = await openPbSession(socket, { username: 'nat-w', password: 'pw', mind: new ProbeMind() });
        const stop = startKeepalive({ ...keepalive, ping: () => session.perspective.callRemote('keepalive'), onDead: (err) => session.close(err) });
        void session.closed.then(stop);
        return session;
      },
    });
    const sessions: PbSession[] = [];
    const retries: RetryEvent[] = [];
    const second = new Promise<void>((resolve) => reconnector.on('session', (s: PbSession) => {
      sessions.push(s);
      if (sessions.length === 2) resolve();
    }));
    reconnector.on('retry', (e: RetryEvent) => retries.push(e));
    reconnector.start();
    try {
      await waitFor(() => sessions.length >= 1, 'the first session');
      relay.blackholeExisting();
      // Nothing else would end it: the relay keeps both sockets open and forwards nothing.
      const reason = await within(sessions[0]!.closed, 20_000, 'the silent connection noticed');
      assert.equal((reason as BbgateError).code, 'NET_KEEPALIVE_TIMEOUT');
      // The master still holds the silent connection: it pings it, gives up on it, and accepts the new login.
      await second;
      assert.equal(relay.accepted(), 2);
      assert.equal(retries[0]!.error, reason);
    } finally {
      await reconnector.stop();
    }
  });
});

describe('a proxy that dies mid-session', () => {
  let master: RunningMaster;
  before(async () => {
    master = await startMaster({ workers: [{ name: 'px-w', password: 'pw' }] });
  });
  after(() => master?.stop());

  it('ends the session, and the worker gets back in through the proxy once it returns', async () => {
    let squid = await startSquid({ allowPorts: [master.pbPort] });
    const proxy = parseProxyString(squid.url);
    const reconnector = new Reconnector<PbSession>({
      policy: { initial: 0.2, factor: 1.5, max: 0.5 },
      connect: async () => {
        const stream = await dial({ endpoint: parseEndpoint(`tcp:127.0.0.1:${master.pbPort}`), proxy });
        return openPbSession(stream, { username: 'px-w', password: 'pw', mind: new ProbeMind() });
      },
    });
    const sessions: PbSession[] = [];
    const retries: RetryEvent[] = [];
    reconnector.on('session', (s: PbSession) => sessions.push(s));
    reconnector.on('retry', (e: RetryEvent) => retries.push(e));
    reconnector.start();
    try {
      await waitFor(() => sessions.length >= 1, 'the first session');
      const port = squid.port;
      await squid.stop();
      await sessions[0]!.closed;
      // While the proxy is down, attempts fail at the proxy, and say so.
      await waitFor(() => retries.some((r) => (r.error as BbgateError).code === 'PROXY_REFUSED'), 'an attempt refused at the proxy');
      squid = await startSquid({ allowPorts: [master.pbPort], port });
      await waitFor(() => sessions.length >= 2, 'the session through the returned proxy', 20_000);
      assert.equal(await sessions[1]!.perspective.callRemote('keepalive'), null);
    } finally {
      await reconnector.stop();
      await squid.stop();
    }
  });
});
