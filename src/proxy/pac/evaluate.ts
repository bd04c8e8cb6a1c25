import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { createPacResolver } from 'pac-resolver';
import { withDeadline } from '../../deadline.js';
import { QuickJS, type QuickJSOptions } from 'quickjs-wasi';
import { ProxyError } from '../failures.js';

/** Memory the sandbox may allocate: ample for any PAC file, small enough that a hostile one cannot hurt. */
const MEMORY_LIMIT = 32 << 20;

// Node has WebAssembly; the project's type libraries (no DOM) do not declare it.
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<QuickJSOptions['wasm']> };

let engine: Promise<QuickJSOptions['wasm']> | undefined;

/** QuickJS's WebAssembly, compiled once per process (a sandbox per evaluation then costs about a millisecond). */
function quickjsModule(): Promise<QuickJSOptions['wasm']> {
  engine ??= readFile(new URL(import.meta.resolve('quickjs-wasi/quickjs.wasm'))).then((bytes) => WebAssembly.compile(bytes));
  return engine;
}

/**
 * Runs the PAC's FindProxyForURL(url, host) in a fresh QuickJS sandbox (pac-resolver's, with
 * the standard helpers: isInNet, dnsDomainIs, shExpMatch, isPlainHostName, dnsResolve, …),
 * never with eval in bbgate's own JavaScript engine: the script sees only those helpers, no
 * `require`, no network, no files. A deadline interrupts a loop that never ends; the memory
 * limit stops one that allocates without end. Throws PROXY_PAC_EVAL naming the PAC's line
 * where there is one.
 */
export async function evaluatePac(script: string, url: string, host: string, options: { name: string; timeoutMs: number }): Promise<unknown> {
  const deadline = Date.now() + options.timeoutMs;
  const vm = await QuickJS.create({ wasm: await quickjsModule(), memoryLimit: MEMORY_LIMIT, interruptHandler: () => Date.now() > deadline });
  let findProxyForURL: ((url: string, host: string) => Promise<unknown>) | undefined;
  // The VM goes once nothing can call into it any more: a helper's DNS lookup that answers
  // after the deadline still resolves a promise inside it.
  let running: Promise<unknown> = Promise.resolve();
  try {
    findProxyForURL = createPacResolver(vm, script, { filename: 'proxy.pac', sandbox: { myIpAddress, alert, shExpMatch } });
    running = findProxyForURL(url, host);
    running.catch(() => undefined);
    return await withDeadline(running, Math.max(0, deadline - Date.now()), () => new ProxyError('PROXY_PAC_EVAL', `${options.name}: FindProxyForURL did not return within ${options.timeoutMs / 1000} s (a DNS lookup in it, dnsResolve or isInNet, may be hanging)`));
  } catch (err) {
    if (err instanceof ProxyError) throw err;
    throw evalFailure(err, options.name, script, findProxyForURL ? String(findProxyForURL) : undefined);
  } finally {
    void running.finally(() => vm.dispose()).catch(() => undefined);
  }
}

/**
 * Shell-style matching (`*` any run, `?` one character, everything else itself), as PAC's
 * shExpMatch means it. pac-resolver's own runs in bbgate's engine, outside the sandbox and its
 * deadline, and builds a RegExp from the pattern: a pattern such as "(a+)+" froze the process.
 * This one never builds a RegExp; it keeps only the last `*` to go back to, so it takes at most
 * length(text) × length(pattern) steps.
 */
export function shExpMatch(text: unknown, pattern: unknown): boolean {
  const t = String(text);
  const p = String(pattern);
  let ti = 0;
  let pi = 0;
  let star = -1;
  let resume = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === t[ti]))) {
      ti++;
      pi++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      resume = ti;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** PAC scripts' debugging output: pac-resolver's would print to stdout, into the probe's --json. */
function alert(): void {}

/**
 * The machine's address as PAC scripts see it: the first non-internal IPv4 address of its
 * interfaces (127.0.0.1 when there is none). pac-resolver's own opens a TCP connection to
 * 8.8.8.8 to find out, which a worker behind a corporate firewall must not do (and which
 * waits without limit when the packets are dropped).
 */
async function myIpAddress(): Promise<string> {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * A syntax error comes from esprima (pac-resolver parses the script to make its helpers
 * awaitable) with a line of the PAC itself; an error while running comes from QuickJS, with a
 * line of the script as pac-resolver rewrote it, so that line's text is quoted instead.
 */
function evalFailure(err: unknown, name: string, script: string, compiled: string | undefined): ProxyError {
  const e = err as { message?: string; name?: string; lineNumber?: number; description?: string; stack?: string };
  if (typeof e.lineNumber === 'number' && e.description) {
    const line = script.split(/\r?\n/)[e.lineNumber - 1]?.trim() ?? '';
    return new ProxyError('PROXY_PAC_EVAL', `${name}: syntax error on line ${e.lineNumber} of the PAC file: ${e.description}${line ? ` (${JSON.stringify(cut(line))})` : ''}`);
  }
  const message = e.message ?? String(err);
  const at = /\(proxy\.pac:(\d+):\d+\)/.exec(e.stack ?? '');
  const source = at && compiled ? compiled.split('\n')[Number(at[1]) - 1]?.trim() : undefined;
  const where = source ? ` at ${JSON.stringify(cut(source))}` : '';
  const what = message === 'interrupted' ? 'it ran too long and was stopped (an endless loop?)' : message === 'out of memory' ? `it used more than ${MEMORY_LIMIT >> 20} MiB and was stopped` : message;
  return new ProxyError('PROXY_PAC_EVAL', `${name}: the PAC file failed while running FindProxyForURL: ${what}${where}`);
}

function cut(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
