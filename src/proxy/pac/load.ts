import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PacSource } from '../../address/pac-string.js';
import { fileReadFailure } from '../../errors.js';
import { ProxyError } from '../failures.js';

/** A PAC file is a few kilobytes of JavaScript; more is not one, and is not held in memory. */
export const MAX_PAC_BYTES = 1 << 20;

export interface LoadedPac {
  script: string;
  /** How it was obtained, for the probe's PAC step: `read 812 bytes`, `HTTP 200, 812 bytes`, `cached`. */
  how: string;
}

/**
 * Scripts loaded so far, by location: a worker reconnecting after a network blip does not
 * fetch its PAC again each time, but `forgetPac` (called after any entry of an answer
 * failed) makes the next dial fetch it afresh, since a PAC that names a dead proxy may
 * have been changed to route around it.
 */
const cache = new Map<string, string>();

export function forgetPac(source: PacSource): void {
  cache.delete(source.location.href);
}

/** The PAC script from the file or URL, from the cache when it is there. Throws PROXY_PAC_LOAD. */
export async function loadPac(source: PacSource, timeoutMs: number): Promise<LoadedPac> {
  const cached = cache.get(source.location.href);
  if (cached !== undefined) return { script: cached, how: `cached (${cached.length} characters)` };
  const loaded = source.location.protocol === 'file:' ? await readPacFile(source) : await fetchPac(source, timeoutMs);
  cache.set(source.location.href, loaded.script);
  return loaded;
}

async function readPacFile(source: PacSource): Promise<LoadedPac> {
  const path = fileURLToPath(source.location);
  try {
    const info = await stat(path);
    if (!info.isFile()) throw failure(source, `${path} is not a file`);
    if (info.size > MAX_PAC_BYTES) throw failure(source, `${path} has ${info.size} bytes, more than the ${MAX_PAC_BYTES} a PAC file may have`);
    const script = await readFile(path, 'utf8');
    return { script, how: `read ${info.size} bytes from ${path}` };
  } catch (err) {
    if (err instanceof ProxyError) throw err;
    throw failure(source, `cannot read ${path}: ${fileReadFailure(err)}`, err);
  }
}

/**
 * GET with a deadline over the whole exchange (connect, headers and body), redirects followed
 * as fetch does; never through a proxy, as browsers fetch PAC files. Node's fetch verifies
 * https:// with its bundled roots, plus NODE_EXTRA_CA_CERTS.
 */
async function fetchPac(source: PacSource, timeoutMs: number): Promise<LoadedPac> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(source.location, { signal, headers: { accept: 'application/x-ns-proxy-autoconfig, */*' } });
    if (!response.ok) {
      await response.body?.cancel();
      throw failure(source, `the server answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    const script = await readBounded(source, response);
    return { script, how: `HTTP ${response.status}, ${Buffer.byteLength(script)} bytes${response.redirected ? ` (redirected to ${response.url})` : ''}` };
  } catch (err) {
    if (err instanceof ProxyError) throw err;
    if (signal.aborted) throw failure(source, `no complete answer within ${timeoutMs / 1000} s`, err);
    throw failure(source, describeFetchError(err), err);
  }
}

async function readBounded(source: PacSource, response: Response): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > MAX_PAC_BYTES) throw failure(source, `the answer is longer than the ${MAX_PAC_BYTES} bytes a PAC file may have`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch fails with "fetch failed" and the real reason (ECONNREFUSED, a certificate error) in `cause`. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused, nothing listens there';
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return `cannot resolve the server's name (${cause.code})`;
  if (cause) return `${cause.code ? `${cause.code}: ` : ''}${cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

function failure(source: PacSource, why: string, cause?: unknown): ProxyError {
  return new ProxyError('PROXY_PAC_LOAD', `cannot load the PAC file ${source.text}: ${why}`, cause === undefined ? undefined : { cause });
}
