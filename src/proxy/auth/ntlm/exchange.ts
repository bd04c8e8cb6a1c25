import { randomBytes } from 'node:crypto';
import type { NtlmCredentials } from './credentials.js';
import { CLIENT_FLAGS, NTLM_NEGOTIATE_OEM, NTLMSSP_NEGOTIATE_UNICODE } from './flags.js';
import { AV, decodeAvPairs, decodeChallenge, encodeAuthenticate, encodeAvPairs, encodeNegotiate, MIC_OFFSET, NtlmMessageError, type AvPair } from './messages.js';
import { fileTime, messageIntegrityCode, ntlmv2Response } from './ntlmv2.js';

/** MsvAvFlags bit: the AUTHENTICATE carries a MIC. */
const MIC_PRESENT = 0x2;

/** Randomness and the clock, injectable so a test can replay a conversation exactly. */
export interface NtlmEntropy {
  clientChallenge(): Buffer;
  now(): Date;
}

const realEntropy: NtlmEntropy = { clientChallenge: () => randomBytes(8), now: () => new Date() };

/**
 * NTLM's two legs from the client's side: NEGOTIATE, then, given the proxy's CHALLENGE,
 * AUTHENTICATE with an NTLMv2 response. Both must ride the connection that carried the
 * CHALLENGE; the caller (../../connect.ts) keeps it. It is an AuthExchange (../scheme.ts) by
 * shape: naming the interface here would make the folders import each other.
 */
export class NtlmExchange {
  readonly scheme = 'NTLM' as const;
  done = false;
  private negotiate: Buffer | undefined;

  constructor(
    private readonly credentials: NtlmCredentials,
    private readonly entropy: NtlmEntropy = realEntropy,
  ) {}

  async step(challenge: string | undefined): Promise<string> {
    if (!this.negotiate) {
      this.negotiate = encodeNegotiate(CLIENT_FLAGS);
      return `NTLM ${this.negotiate.toString('base64')}`;
    }
    if (this.done) throw new NtlmMessageError('the NTLM exchange has already sent its last message');
    if (challenge === undefined) throw new NtlmMessageError('the proxy answered the NTLM NEGOTIATE message with a bare "NTLM", without a CHALLENGE');
    const authenticate = this.authenticate(this.negotiate, decodeBase64(challenge));
    this.done = true;
    return `NTLM ${authenticate.toString('base64')}`;
  }

  private authenticate(negotiate: Buffer, challengeBytes: Buffer): Buffer {
    const challenge = decodeChallenge(challengeBytes);
    const pairs = decodeAvPairs(challenge.targetInfo);
    const timestamp = pairs.find((p) => p.id === AV.Timestamp);
    // With the server's timestamp, MS-NLMP 3.1.5.1.2 has the client use it, send a MIC and a
    // zeroed LMv2 response, as Windows does; without one, the client's clock and an LMv2 response.
    const withMic = timestamp !== undefined && timestamp.value.length === 8;
    const time = withMic ? timestamp.value.readBigUInt64LE() : fileTime(this.entropy.now());
    const targetInfo = encodeAvPairs(withMic ? withMicFlag(pairs) : pairs);
    const response = ntlmv2Response({
      key: this.credentials.key,
      serverChallenge: challenge.serverChallenge,
      clientChallenge: this.entropy.clientChallenge(),
      time,
      targetInfo,
    });
    const message = encodeAuthenticate({
      flags: authenticateFlags(challenge.flags),
      lmResponse: withMic ? Buffer.alloc(24) : response.lmResponse,
      ntResponse: response.ntResponse,
      domain: this.credentials.domain,
      user: this.credentials.user,
      workstation: this.credentials.workstation,
    });
    // Without key exchange, NTLMv2's exported session key is the session base key.
    if (withMic) messageIntegrityCode(response.sessionBaseKey, negotiate, challengeBytes, message).copy(message, MIC_OFFSET);
    return message;
  }
}

/**
 * The flags both sides agreed on, with exactly one character set: Unicode, which bbgate's
 * strings are in. A server that echoes both (ntlm_fake_auth does) must not be told OEM, or it
 * reads the UTF-16 names as 8-bit strings (squid then logs "C\\j" for CORP\\jane).
 */
function authenticateFlags(server: number): number {
  return (((server & CLIENT_FLAGS) | NTLMSSP_NEGOTIATE_UNICODE) & ~NTLM_NEGOTIATE_OEM) >>> 0;
}

function withMicFlag(pairs: AvPair[]): AvPair[] {
  const flags = pairs.find((p) => p.id === AV.Flags && p.value.length === 4);
  const value = Buffer.alloc(4);
  value.writeUInt32LE(((flags?.value.readUInt32LE() ?? 0) | MIC_PRESENT) >>> 0);
  return flags ? pairs.map((p) => (p === flags ? { id: p.id, value } : p)) : [...pairs, { id: AV.Flags, value }];
}

function decodeBase64(token: string): Buffer {
  if (!/^[A-Za-z0-9+/]+=*$/.test(token)) throw new NtlmMessageError('the proxy\'s NTLM challenge is not base64');
  return Buffer.from(token, 'base64');
}
