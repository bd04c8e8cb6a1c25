// `bbgate relay` against a plain TCP forwarder (socat) and no relay at all, in one run: the
// throughput of one stream each way, the time to set a connection up, and the relay's memory per
// idle relayed connection.
//
//   node dist/bench/relay.js [--mb N] [--runs R] [--connects C] [--idle N] [--socat-idle N]
//
// The relay holds each connection to the login it admitted: it follows the Banana framing of
// everything the worker sends for the whole connection (raw bytes there would break the framing
// and get the connection cut), forbids calls to the root after the login, lets one call through
// before the master accepts the password (`respond`), and reads the master's answer to it. So both
// ends here do PB's real login round trip, and the worker's payload is the Banana a worker sends.
//
// A fake Buildbot master (this script with --fake-master, in a child process) offers the dialects,
// answers the worker's choice with ["version", 6], reads the worker's version and login(name)
// (request 1) and answers it with a challenge and a remote reference, reads the worker's
// `respond` call (request 2: a 16-byte response and the worker's mind) and answers
// ["answer", 2, ["remote", 2]], the password accepted: the data path is open from there. The login
// name tells it what to do: "up:N" (count N payload bytes from the worker, then send one ack
// byte), "down:N" (at the worker's first payload byte, send N raw bytes: the relay stops reading
// master → worker once the password is accepted), anything else (stay idle).
//
// The client, in this process, does the worker's part with the bytes bbgate's Broker would send
// (dialect "pb"). Its up payload is a stream of one-way calls ["message", n, 2, "write", 0,
// ["tuple", <64 KiB string>], ["dictionary"]], as a FileUpload's remote_write calls: a few are
// encoded once and repeated, so the client's CPU is not what is measured. Before a download it
// sends one call, ["message", 3, 2, "read", 1, ["tuple", N], ["dictionary"]], to start the master.
//
// Three paths to that master, all on 127.0.0.1, each carrying the same bytes both ways: direct;
// socat (TCP-LISTEN,fork, with nodelay); and the real CLI, `bbgate relay` (dist/src/cli/main.js,
// metrics endpoint off, as by default), which reads the login, checks --allow, dials the master,
// replays the handshake, then pipes, skimming every call of the worker's on the way.
//
// The relay's memory is read from /proc/PID/status (VmRSS) of a freshly started relay, before
// and after N connections have completed the login (password accepted: the relay's "relaying"
// state, as a real idle worker's) and sit idle. The relay holds two file descriptors per
// connection and nothing raises `ulimit -n`, so N is capped below half of it.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BananaParser } from '../src/pb/banana/parser.js';
import { BananaWriter, encodeSexp, type Sexp } from '../src/pb/banana/writer.js';
import { unjelly } from '../src/pb/jelly/decode.js';
import { jelly, type JellyContext } from '../src/pb/jelly/encode.js';
import { Referenceable } from '../src/pb/values/references.js';
import { toText, Tuple } from '../src/pb/values/values.js';

const { values: options } = parseArgs({
  options: {
    mb: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
    connects: { type: 'string', default: '200' },
    idle: { type: 'string', default: '10000' },
    'socat-idle': { type: 'string', default: '200' },
    // Internal: be the fake master (see fakeMaster).
    'fake-master': { type: 'boolean', default: false },
  },
});

const HOST = '127.0.0.1';
/** The master's raw down payload comes in blocks of this size. */
const CHUNK = 256 * 1024;
const BLOCK = Buffer.alloc(CHUNK, 0x5a);
/** The body of each of the worker's write calls. */
const WRITE_SIZE = 64 * 1024;
/** Write calls per pre-encoded up block. */
const WRITES_PER_BLOCK = 4;
const OFFER = encodeSexp([Buffer.from('pb'), Buffer.from('none')]);
const CHOICE = encodeSexp(Buffer.from('pb'));
/** The worker always chooses dialect "pb": everything after its choice uses the PB vocabulary. */
const WORKER_VOCAB = true;
const VERSION = encodeSexp([Buffer.from('version'), 6], WORKER_VOCAB);
const ACK = Buffer.from('A');
const CHALLENGE = Buffer.alloc(16, 0x63);
const RESPONSE = Buffer.alloc(16, 0x72);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Jelly context that sends any Referenceable as ["remote", luid]. */
const refs = (luid: number): JellyContext => ({ referenceFor: () => luid, localIdFor: () => undefined });

/** One PB call as Broker.callRemote writes it: ["message", id, target, method, answerRequired, args, kw]. */
function call(id: number, target: 'root' | number, method: string, answer: boolean, args: unknown[], ctx?: JellyContext): Buffer {
  const w = new BananaWriter(256);
  w.vocab = WORKER_VOCAB;
  w.list(7);
  w.word('message');
  w.int(id);
  if (target === 'root') w.bytes(Buffer.from('root'));
  else w.int(target);
  w.bytes(Buffer.from(method));
  w.int(answer ? 1 : 0);
  jelly(w, Tuple.from(args), ctx);
  jelly(w, {});
  return w.take();
}

/** The master's ["answer", id, <jellied value>]. */
function answer(vocab: boolean, id: number, value: unknown, ctx?: JellyContext): Buffer {
  const w = new BananaWriter(64);
  w.vocab = vocab;
  w.list(3);
  w.word('answer');
  w.int(id);
  jelly(w, value, ctx);
  return w.take();
}

/** login()'s answer: (challenge, challenger), the challenger as the master's object 1. */
const answerLogin = (vocab: boolean) => answer(vocab, 1, Tuple.from([CHALLENGE, new Referenceable()]), refs(1));
/** respond()'s answer, the password accepted: the worker's perspective, as the master's object 2. */
const answerRespond = (vocab: boolean) => answer(vocab, 2, new Referenceable(), refs(2));

/** The worker's side of the handshake once it has the offer: its choice, its version, and login(name). */
function hello(name: string): Buffer {
  return Buffer.concat([CHOICE, VERSION, call(1, 'root', 'login', true, [Buffer.from(name)])]);
}
/** The worker's answer to the challenge: respond(response, mind), the mind as the worker's object 1. */
const RESPOND = call(2, 1, 'respond', true, [RESPONSE, new Referenceable()], refs(1));
/** What the worker reads before it sends RESPOND, and before its data path is open, through any of the three paths. */
const BEFORE_RESPOND = Buffer.concat([OFFER, VERSION, answerLogin(WORKER_VOCAB)]);
const EXPECTED = Buffer.concat([BEFORE_RESPOND, answerRespond(WORKER_VOCAB)]);
/** Up payload: one-way write calls to the master's object 2, encoded once. */
const UP_BLOCK = Buffer.concat(Array.from({ length: WRITES_PER_BLOCK },
  (_, i) => call(3 + i, 2, 'write', false, [Buffer.alloc(WRITE_SIZE, 0x5a)])));
/** Before a download: the call that starts the master's stream. */
const readCall = (n: number) => call(3, 2, 'read', true, [n]);

/** Writes `count` times `block`, waiting for 'drain' whenever the socket asks to. */
async function send(socket: Socket, block: Buffer, count: number, last = block.length): Promise<void> {
  for (let i = 0; i < count && !socket.destroyed; i++) {
    if (!socket.write(i === count - 1 ? block.subarray(0, last) : block)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
}

/** Writes n raw bytes (the master's down payload). */
function sendRaw(socket: Socket, n: number): Promise<void> {
  const count = Math.ceil(n / CHUNK);
  return send(socket, BLOCK, count, n - (count - 1) * CHUNK);
}

const word = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : undefined);

// ---- The fake master (a child process) -----------------------------------------------------

function fakeMaster(): void {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.write(OFFER);
    // 0: choice, 1: version, 2: login, 3: respond, 4: the data path.
    let stage = 0;
    let fed = 0;
    let loginEnd = 0;
    let name = '';
    const parser = new BananaParser((expr: Sexp) => {
      if (stage === 0) {
        parser.vocab = word(expr) === 'pb';
        socket.write(encodeSexp([Buffer.from('version'), 6], parser.vocab));
      } else if (stage === 2) {
        const args = unjelly((expr as Sexp[])[5]!);
        name = (Array.isArray(args) ? toText(args[0]) : undefined) ?? '';
        socket.write(answerLogin(parser.vocab));
      } else if (stage === 3) {
        const e = expr as Sexp[];
        if (word(e[0]) !== 'message' || e[1] !== 2 || word(e[3]) !== 'respond') throw new Error('expected respond()');
        socket.write(answerRespond(parser.vocab));
        loginEnd = parser.position;
      }
      stage++;
    });
    let payload: ((n: number) => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (payload) return payload(chunk.length);
      fed += chunk.length;
      try {
        parser.feed(chunk);
      } catch {
        if (stage < 4) return void socket.destroy();
      }
      if (stage < 4) return;
      const [mode, count] = name.split(':');
      const n = Number(count);
      if (mode === 'up') {
        let got = 0;
        payload = (k) => {
          got += k;
          if (got >= n && got - k < n) socket.write(ACK);
        };
      } else if (mode === 'down') {
        let started = false;
        payload = () => {
          if (started) return;
          started = true;
          void sendRaw(socket, n);
        };
      } else {
        payload = () => undefined;
      }
      if (fed > loginEnd) payload(fed - loginEnd);
    });
  });
  server.listen({ host: HOST, port: 0, backlog: 4096 }, () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}

// ---- Children, and their cleanup -----------------------------------------------------------

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      // socat runs in a group of its own, with one fork per connection: end them all.
      if (child.spawnargs[0]?.endsWith('socat')) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  children.clear();
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function startFakeMaster(): Promise<{ port: number; child: ChildProcess }> {
  const child = track(fork(fileURLToPath(import.meta.url), ['--fake-master'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ port: (m as { port: number }).port, child }));
    child.once('exit', (code) => reject(new Error(`the fake master exited (${code}) before listening`)));
  });
}

interface RunningRelay {
  port: number;
  pid: number;
  command: string;
  /** Lines above level info, for a failure's message. */
  warnings: string[];
}

function startRelay(masterPort: number): Promise<RunningRelay> {
  const args = [CLI, 'relay', '--listen', `tcp:0:interface=${HOST}`, '--upstream', `tcp:${HOST}:${masterPort}`, '--allow', '*',
    '--max-connections', '20000', '--max-per-source', '20000', '--max-per-worker', '20000', '--no-env-proxy'];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const command = `node dist/src/cli/main.js ${args.slice(1).map((a) => (a === '*' ? `'*'` : a)).join(' ')}`;
  const warnings: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        let entry: { level?: string; msg?: string; listeners?: string[] };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        if (entry.level !== 'info' && warnings.length < 20) warnings.push(line);
        if (entry.msg === 'relay listening') {
          const port = /:(\d+)$/.exec(entry.listeners?.[0] ?? '')?.[1];
          if (port) resolve({ port: Number(port), pid: child.pid!, command, warnings });
          else reject(new Error(`cannot tell the relay's port from ${line}`));
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`the relay exited (${code}) before listening: ${stderr.trim()}`)));
    setTimeout(() => reject(new Error('the relay did not say "relay listening" within 20 s')), 20_000).unref();
  });
}

function findSocat(): string | undefined {
  if (existsSync('/usr/bin/socat')) return '/usr/bin/socat';
  return (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'socat')).find((p) => existsSync(p));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startSocat(socat: string, masterPort: number): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = track(spawn(socat, [`TCP-LISTEN:${port},fork,reuseaddr,bind=${HOST},nodelay`, `TCP:${HOST}:${masterPort},nodelay`], { stdio: ['ignore', 'ignore', 'inherit'], detached: true }));
  // Listening once a connection is accepted (and the master's offer comes through).
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error(`socat exited (${child.exitCode})`);
    try {
      const s = await openSession(port, 'probe', 2000);
      s.socket.destroy();
      return { port, child };
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// ---- The worker's side ---------------------------------------------------------------------

interface Session {
  socket: Socket;
  /** connect() to the master's answer to respond(). */
  ms: number;
  /** Bytes that came after that answer. */
  extra: number;
}

/** Connects, does the PB handshake and login and resolves once the master has accepted the password, the socket paused. */
function openSession(port: number, name: string, timeoutMs = 30_000): Promise<Session> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ host: HOST, port, noDelay: true });
    let got: Buffer = Buffer.alloc(0);
    // 0: waiting for the offer, 1: for login()'s answer, 2: for respond()'s.
    let step = 0;
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`${name} via port ${port}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer to respond() within ${timeoutMs} ms (got ${got.toString('hex').slice(0, 200)}, step ${step})`), timeoutMs);
    const onData = (chunk: Buffer) => {
      got = got.length ? Buffer.concat([got, chunk]) : chunk;
      if (step === 0 && got.length >= OFFER.length) {
        if (!got.subarray(0, OFFER.length).equals(OFFER)) return fail(`unexpected offer ${got.toString('hex')}`);
        step = 1;
        socket.write(hello(name));
      }
      if (step === 1 && got.length >= BEFORE_RESPOND.length) {
        if (!got.subarray(0, BEFORE_RESPOND.length).equals(BEFORE_RESPOND)) return fail(`unexpected answer to login() ${got.toString('hex').slice(0, 200)}`);
        step = 2;
        socket.write(RESPOND);
      }
      if (step === 2 && got.length >= EXPECTED.length) {
        const readyAt = performance.now();
        if (!got.subarray(0, EXPECTED.length).equals(EXPECTED)) return fail(`unexpected answer to respond() ${got.toString('hex').slice(0, 200)}`);
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.pause();
        resolve({ socket, ms: readyAt - started, extra: got.length - EXPECTED.length });
      }
    };
    const onClose = () => fail(`closed during the login (step ${step}) after ${got.length} bytes (${got.toString('hex').slice(0, 200)})`);
    socket.on('error', () => undefined);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Client → master, as write calls: MB/s from the first byte written to the master's ack of the last. */
async function upload(port: number, bytes: number): Promise<number> {
  const blocks = Math.ceil(bytes / UP_BLOCK.length);
  const total = blocks * UP_BLOCK.length;
  const { socket } = await openSession(port, `up:${total}`);
  try {
    const started = performance.now();
    const acked = new Promise<number>((resolve, reject) => {
      socket.on('data', () => resolve(performance.now()));
      socket.on('close', () => reject(new Error('closed before the ack')));
    });
    socket.resume();
    await send(socket, UP_BLOCK, blocks);
    return total / ((await acked) - started) / 1000;
  } finally {
    socket.destroy();
  }
}

/** Master → client, raw: MB/s from the worker's read() call to the last byte. */
async function download(port: number, bytes: number): Promise<number> {
  const { socket, extra } = await openSession(port, `down:${bytes}`);
  try {
    let got = extra;
    const done = new Promise<number>((resolve, reject) => {
      socket.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= bytes) resolve(performance.now());
      });
      socket.on('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
    });
    socket.resume();
    const started = performance.now();
    socket.write(readCall(bytes));
    return bytes / ((await done) - started) / 1000;
  } finally {
    socket.destroy();
  }
}

/** Opens `count` sessions, `parallel` logins at a time; all of them stay open. */
async function openMany(port: number, count: number, parallel: number, into: Socket[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      into.push((await openSession(port, `idle-${i}`)).socket);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

// ---- /proc ------------------------------------------------------------------------------------

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** The processes whose parent is `pid`. */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/** Nearest rank. */
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;

// ---- The run ---------------------------------------------------------------------------------

interface Path {
  label: string;
  port?: number;
  /** Why there is no figure. */
  missing?: string;
  up: number[];
  down: number[];
  setup: number[];
}

async function main(): Promise<void> {
  const mb = Number(options.mb);
  const runs = Number(options.runs);
  const connects = Number(options.connects);
  const asked = Number(options.idle);
  const socatIdle = Number(options['socat-idle']);
  if (!(mb > 0) || !(runs >= 1) || !(connects >= 1) || !(asked >= 1) || !(socatIdle >= 0)) {
    throw new Error('usage: relay.js [--mb N>0] [--runs R>=1] [--connects C>=1] [--idle N>=1] [--socat-idle N>=0]');
  }
  const bytes = Math.round(mb * 1e6);
  // The relay needs two descriptors per connection, plus a few dozen of its own.
  const limit = openFilesLimit();
  const idle = Math.min(asked, Math.floor((limit - 100) / 2));
  const started = performance.now();

  const master = await startFakeMaster();
  const socatPath = findSocat();
  const relay = await startRelay(master.port);
  const paths: Path[] = [
    { label: 'direct', port: master.port, up: [], down: [], setup: [] },
    { label: 'socat', up: [], down: [], setup: [] },
    { label: 'bbgate relay', port: relay.port, up: [], down: [], setup: [] },
  ];
  const [, socatRow, relayRow] = paths as [Path, Path, Path];
  let socat: { port: number; child: ChildProcess } | undefined;
  if (socatPath) {
    socat = await startSocat(socatPath, master.port);
    socatRow.port = socat.port;
  } else {
    socatRow.missing = 'socat: not installed (apt-get install socat)';
  }
  const live = paths.filter((p) => p.port !== undefined);
  const failWith = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      const extra = relay.warnings.length ? `\nrelay log:\n${relay.warnings.join('\n')}` : '';
      throw new Error(`${what}: ${(err as Error).message}${extra}`);
    }
  };

  // 1. Throughput, after one untimed smaller run each (JIT, buffers); runs taken in turns.
  const warm = Math.min(bytes, 32e6);
  for (const p of live) {
    await failWith(`${p.label} warm-up`, async () => {
      await upload(p.port!, warm);
      await download(p.port!, warm);
    });
  }
  for (let run = 0; run < runs; run++) {
    for (const p of live) {
      await failWith(`${p.label} throughput`, async () => {
        p.up.push(await upload(p.port!, bytes));
        p.down.push(await download(p.port!, bytes));
      });
    }
  }

  // 2. Set-up latency: sequential connections, the paths in turns, after 20 untimed each.
  for (let i = -20; i < connects; i++) {
    for (const p of live) {
      const s = await failWith(`${p.label} set-up`, () => openSession(p.port!, 'setup'));
      s.socket.destroy();
      if (i >= 0) p.setup.push(s.ms);
    }
  }

  // 3. Idle memory. socat first (a handful of forks is enough to see one's cost), then a fresh relay.
  let socatMemory: { count: number; rss: number; pss: number } | undefined;
  if (socat && socatIdle > 0) {
    const sockets: Socket[] = [];
    await failWith('socat idle connections', () => openMany(socat!.port, socatIdle, 1, sockets));
    await sleep(500);
    const forks = childPids(socat.child.pid!);
    socatMemory = {
      count: forks.length,
      rss: forks.reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0),
      pss: forks.reduce((sum, pid) => sum + pssKiB(pid), 0),
    };
    for (const s of sockets) s.destroy();
  }
  const fresh = await startRelay(master.port);
  const sockets: Socket[] = [];
  // Warm the fresh relay (JIT, pools) with connections that come and go.
  for (let i = 0; i < 100; i++) (await openSession(fresh.port, 'warm')).socket.destroy();
  await sleep(1000);
  const before = statusKiB(fresh.pid, 'VmRSS');
  const openStarted = performance.now();
  await failWith(`opening ${idle} idle connections through the relay`, () => openMany(fresh.port, idle, 100, sockets));
  const openSeconds = (performance.now() - openStarted) / 1000;
  await sleep(2000);
  const after = statusKiB(fresh.pid, 'VmRSS');
  const relayPerConnection = (after - before) / idle;
  for (const s of sockets) s.destroy();

  // ---- The table ----
  const command = `node dist/bench/relay.js --mb ${mb} --runs ${runs} --connects ${connects} --idle ${asked} --socat-idle ${socatIdle}`;
  console.log(`bbgate relay vs socat vs direct, all on ${HOST}: ${command}`);
  console.log(`  relay: ${relay.command}  (metrics endpoint off)`);
  console.log(`  socat: ${socatPath ? `${socatPath} TCP-LISTEN:PORT,fork,reuseaddr,bind=${HOST},nodelay TCP:${HOST}:MASTER,nodelay` : 'not installed'}`);
  console.log('  Throughput: one TCP stream through the path to a fake PB master, after the login (password accepted); up = worker → master');
  console.log(`    as one-way write calls of ${WRITE_SIZE / 1024} KiB strings, the Banana the relay skims (until the master acks the last byte),`);
  console.log(`    down = master → worker, raw (from the worker's read() call); MB/s = 10^6 bytes/s, median of ${runs} runs of ${mb} MB.`);
  console.log(`  Set-up: connect() until the master's answer to respond() reaches the worker: offer, choice, version, login(), its`);
  console.log(`    answer, respond(), its answer (two PB round trips after the offer), ${connects} sequential connections per path (paths in turns).`);
  console.log('    socat gets ",nodelay" on both addresses, as the relay sets TCP_NODELAY: without it the master\'s two small writes');
  console.log('    (version, then login()\'s answer) meet Nagle and the worker\'s delayed ACK, and socat sets up in ~40 ms.');
  console.log(`  Idle memory: VmRSS of a fresh relay before and after N connections have logged in (password accepted: "relaying") and sit idle.`);
  const col = (s: string, w = 12) => s.padStart(w);
  const label = 34;
  const row = (p: Path, cells: (p: Path) => string[]) => console.log(`${p.label.padEnd(label)}${p.missing ? `  ${p.missing}` : cells(p).map((c) => col(c)).join('')}`);
  const mbs = (xs: number[]) => median(xs).toFixed(0);

  console.log();
  console.log(`${'Throughput'.padEnd(label)}${col('up MB/s')}${col('down MB/s')}`);
  for (const p of paths) row(p, (q) => [mbs(q.up), mbs(q.down)]);
  if (!socatRow.missing) {
    const ratio = (a: number[], b: number[]) => `${(median(a) / median(b)).toFixed(2)}×`;
    console.log(`${'relay ÷ socat (target ≥ 0.8×)'.padEnd(label)}${col(ratio(relayRow.up, socatRow.up))}${col(ratio(relayRow.down, socatRow.down))}`);
  }
  console.log(`${'relay ÷ direct'.padEnd(label)}${col(`${(median(relayRow.up) / median(paths[0]!.up)).toFixed(2)}×`)}${col(`${(median(relayRow.down) / median(paths[0]!.down)).toFixed(2)}×`)}`);

  console.log();
  console.log(`${'Set-up, ms'.padEnd(label)}${col('median')}${col('p99')}`);
  for (const p of paths) row(p, (q) => [median(q.setup).toFixed(2), percentile(q.setup, 99).toFixed(2)]);
  const added = (q: Path) => [(median(relayRow.setup) - median(q.setup)).toFixed(2), (percentile(relayRow.setup, 99) - percentile(q.setup, 99)).toFixed(2)];
  row({ ...paths[0]!, label: 'relay added, vs direct' }, added);
  if (!socatRow.missing) row({ ...socatRow, label: 'relay added, vs socat' }, added);

  console.log();
  const capped = idle < asked ? ` (${asked} asked; capped: the relay needs 2 fds each and ulimit -n is ${limit})` : '';
  console.log(`Idle memory, ${idle} connections through a fresh relay${capped}, opened in ${openSeconds.toFixed(1)} s`);
  console.log(`${''.padEnd(label)}${col('before MiB')}${col('after MiB')}${col('KiB/conn')}`);
  console.log(`${'bbgate relay, VmRSS (target ≤ 20)'.padEnd(label)}${col((before / 1024).toFixed(1))}${col((after / 1024).toFixed(1))}${col(relayPerConnection.toFixed(1))}`);
  if (socatMemory) {
    const n = socatMemory.count;
    console.log(`${`socat, its ${n} forks: PSS`.padEnd(label)}${col('')}${col((socatMemory.pss / 1024).toFixed(1))}${col((socatMemory.pss / n).toFixed(1))}`);
    console.log(`${`socat, its ${n} forks: VmRSS`.padEnd(label)}${col('')}${col((socatMemory.rss / 1024).toFixed(1))}${col((socatMemory.rss / n).toFixed(1))}`);
  } else {
    console.log(`${'socat'.padEnd(label)}  ${socatRow.missing ?? 'skipped (--socat-idle 0)'}`);
  }
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
}

if (options['fake-master']) {
  fakeMaster();
} else {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  try {
    await main();
  } finally {
    killAll();
  }
}
