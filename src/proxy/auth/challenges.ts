/** One challenge of a Proxy-Authenticate field: the scheme as the proxy spelled it, and what follows. */
export interface AuthChallenge {
  scheme: string;
  /** A token68 (NTLM's and Negotiate's base64 blobs), when the challenge carries one. */
  token?: string;
}

const SCHEME = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+(.*?))?\s*$/s;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Every challenge of every Proxy-Authenticate field of a 407 (RFC 9110 11.6.1: a field may list
 * several, and auth-params after a scheme share its commas). A piece is a new challenge when it
 * begins with a token followed by space and something other than "=", or stands alone.
 */
export function parseChallenges(fields: string[]): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  for (const field of fields) {
    for (const piece of field.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
      if (piece.trim() === '') continue;
      const m = SCHEME.exec(piece);
      // A piece such as ` charset="UTF-8"` is a parameter of the challenge before it.
      if (!m || (m[2] !== undefined && m[2].startsWith('=')) || /^\s*[^\s=]+\s*=/.test(piece)) continue;
      const rest = m[2];
      challenges.push({ scheme: m[1]!, ...(rest !== undefined && TOKEN68.test(rest) ? { token: rest } : {}) });
    }
  }
  return challenges;
}

/** The schemes offered, each once, as the proxy spelled them first. */
export function offeredSchemes(challenges: AuthChallenge[]): string[] {
  const seen = new Map<string, string>();
  for (const c of challenges) if (!seen.has(c.scheme.toLowerCase())) seen.set(c.scheme.toLowerCase(), c.scheme);
  return [...seen.values()];
}
