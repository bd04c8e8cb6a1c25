/**
 * How bbgate keeps credentials out of everything it prints: error messages,
 * the probe's report (text and JSON), the worker's twistd.log, the relay's log.
 * Two rules:
 *
 * - A string the user gave is quoted only through `redactCredentials`
 *   (./address/redact.ts, next to the grammars of those strings), which hides
 *   its user info, so that a password written into it is never echoed.
 * - A sink that knows the secrets of its process (the worker's password, a
 *   proxy's password and the Basic token made of it) passes every line through
 *   `secretScrubber` on its way out: the last line of defence, for text that
 *   quotes a secret by some path no rule foresaw (a peer's error message, say).
 */

/** What stands where a known secret was scrubbed out of a line. */
export const CENSOR = '[redacted]';

/**
 * Secrets shorter than this are not scrubbed from text: a three-letter
 * password would blank out every word containing it. (Fields named like
 * credentials are censored by the logger whatever their length.)
 */
const MIN_SCRUBBED = 4;

/**
 * A function that replaces every occurrence of each secret with `[redacted]`,
 * in each form it can take in output: as written, %-encoded (as in a proxy
 * URL), and escaped inside a JSON string (a log line, the probe's --json).
 */
export function secretScrubber(secrets: Iterable<string | undefined>): (text: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SCRUBBED) continue;
    for (const form of [secret, encodeURIComponent(secret)]) forms.add(form).add(JSON.stringify(form).slice(1, -1));
  }
  // Longest first, so that a secret containing another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((out, form) => out.split(form).join(CENSOR), text);
}
