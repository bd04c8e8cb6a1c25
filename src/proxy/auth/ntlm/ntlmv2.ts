import { createHmac } from 'node:crypto';
import { md4 } from './md4.js';

/**
 * The NTLMv2 computations of MS-NLMP 3.3.2, as functions of their inputs (no clock, no
 * randomness: the caller passes the time and the client challenge, so the spec's test vectors
 * can be checked exactly). HMAC-MD5 is in OpenSSL's default provider; only MD4 is not.
 */

/** NTOWFv1: MD4 of the UTF-16LE password, the "NT hash" (`cntlm -H`'s PassNT). */
export function ntHash(password: string): Buffer {
  return md4(Buffer.from(password, 'utf16le'));
}

/** NTOWFv2: bound to the user (upper-cased) and the domain as written (`cntlm -H`'s PassNTLMv2). */
export function ntlmv2Hash(nt: Buffer, user: string, domain: string): Buffer {
  return hmacMd5(nt, Buffer.from(user.toUpperCase() + domain, 'utf16le'));
}

export interface V2Inputs {
  /** NTOWFv2 (ResponseKeyNT, which is also ResponseKeyLM). */
  key: Buffer;
  serverChallenge: Buffer;
  clientChallenge: Buffer;
  /** Windows FILETIME: 100 ns ticks since 1601-01-01 UTC. */
  time: bigint;
  /** The AV_PAIR block the client signs (the server's, with the client's additions). */
  targetInfo: Buffer;
}

export interface V2Response {
  ntResponse: Buffer;
  lmResponse: Buffer;
  ntProofStr: Buffer;
  sessionBaseKey: Buffer;
}

export function ntlmv2Response(i: V2Inputs): V2Response {
  const time = Buffer.alloc(8);
  time.writeBigUInt64LE(i.time);
  // Responserversion 1, HiResponserversion 1, Z(6), Time, ClientChallenge, Z(4), ServerName (the AV pairs), Z(4).
  const temp = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), time, i.clientChallenge, Buffer.alloc(4), i.targetInfo, Buffer.alloc(4)]);
  const ntProofStr = hmacMd5(i.key, Buffer.concat([i.serverChallenge, temp]));
  const lmResponse = Buffer.concat([hmacMd5(i.key, Buffer.concat([i.serverChallenge, i.clientChallenge])), i.clientChallenge]);
  return { ntResponse: Buffer.concat([ntProofStr, temp]), lmResponse, ntProofStr, sessionBaseKey: hmacMd5(i.key, ntProofStr) };
}

/** The MIC over the three messages (the AUTHENTICATE with its MIC zeroed), keyed by the session key. */
export function messageIntegrityCode(sessionKey: Buffer, negotiate: Buffer, challenge: Buffer, authenticate: Buffer): Buffer {
  return hmacMd5(sessionKey, Buffer.concat([negotiate, challenge, authenticate]));
}

/** A Date as a Windows FILETIME. */
export function fileTime(date: Date): bigint {
  return (BigInt(date.getTime()) + 11644473600000n) * 10000n;
}

function hmacMd5(key: Buffer, data: Buffer): Buffer {
  return createHmac('md5', key).update(data).digest();
}
