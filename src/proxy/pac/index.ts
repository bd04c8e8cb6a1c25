import type { PacSource } from '../../address/pac-string.js';
import { hostPort } from '../../address/host-port.js';
import { parsePacAnswer, type PacAnswer } from './answer.js';
import { evaluatePac } from './evaluate.js';
import { forgetPac, loadPac } from './load.js';

export { parsePacAnswer, type PacAnswer, type PacEntry } from './answer.js';
export { forgetPac } from './load.js';

export interface PacDecision extends PacAnswer {
  /** The URL FindProxyForURL was asked about, and the host passed with it. */
  url: string;
  host: string;
  /** What FindProxyForURL returned, as it returned it. */
  answer: string;
  /** How the script was obtained (read, fetched, cached). */
  how: string;
}

/**
 * Asks the PAC which proxies carry a connection to host:port. The URL it is asked about is
 * `https://HOST:PORT/`: a PB connection through a proxy is a CONNECT tunnel, like HTTPS (and
 * browsers, too, show a PAC only the scheme, host and port of an https:// URL). Loads the
 * script (cached), evaluates it in the sandbox, parses the answer; a failure at any stage
 * drops the cached script, so that the next attempt fetches it again.
 */
export async function decideByPac(source: PacSource, host: string, port: number, timeoutMs: number): Promise<PacDecision> {
  const url = `https://${hostPort(host, port)}/`;
  const loaded = await loadPac(source, timeoutMs);
  try {
    const answer = await evaluatePac(loaded.script, url, host, { name: source.text, timeoutMs });
    const parsed = parsePacAnswer(answer);
    return { ...parsed, url, host, answer: answer as string, how: loaded.how };
  } catch (err) {
    forgetPac(source);
    throw err;
  }
}
