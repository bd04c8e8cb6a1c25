import { BbgateError } from '../../../errors.js';
import { NTLMSSP_NEGOTIATE_TARGET_INFO } from './flags.js';

/**
 * The three NTLM messages (MS-NLMP 2.2.1) as bytes: pure codecs, no crypto and no I/O. Every
 * variable field is a (length, max length, offset) triple pointing into the payload after the
 * fixed part; all integers are little-endian.
 */

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
/** The VERSION field bbgate sends: 10.0 build 19041 (what a Windows 10 client sends), NTLMSSP revision 15. */
const VERSION = Buffer.from([10, 0, 0x61, 0x4a, 0, 0, 0, 15]);

/** A CHALLENGE that is not one: the proxy (or something posing as it) sent garbage. */
export class NtlmMessageError extends BbgateError {
  constructor(message: string) {
    super('PROXY_AUTH_PROTOCOL', message);
  }
}

/** NEGOTIATE_MESSAGE with empty domain and workstation fields and the version field, as Windows sends it. */
export function encodeNegotiate(flags: number): Buffer {
  const out = Buffer.alloc(40);
  SIGNATURE.copy(out, 0);
  out.writeUInt32LE(1, 8);
  out.writeUInt32LE(flags >>> 0, 12);
  // DomainNameFields and WorkstationFields: empty, offset just past the fixed part.
  writeField(out, 16, 0, 40);
  writeField(out, 24, 0, 40);
  VERSION.copy(out, 32);
  return out;
}

export interface Challenge {
  flags: number;
  serverChallenge: Buffer;
  /** The server's name (Unicode when the flags say so); informative only. */
  targetName: Buffer;
  /** The AV_PAIR list, verbatim: NTLMv2 signs it. Empty when the proxy sent none. */
  targetInfo: Buffer;
}

/**
 * Reads a CHALLENGE_MESSAGE. Short forms are common: squid's ntlm_fake_auth sends 40 fixed bytes
 * (no TargetInfo fields, no version) with the payload right after them, a TargetName offset
 * that points nowhere, and echoes the client's flags, TARGET_INFO included. So TargetInfo is
 * read only when the flags announce it and its field fits in the message, and a TargetName that
 * does not fit is dropped. Neither is trusted for anything: without target info the response is
 * NTLMv2 all the same, made with the client's clock and without a MIC.
 */
export function decodeChallenge(bytes: Buffer): Challenge {
  if (bytes.length < 32) throw new NtlmMessageError(`the NTLM challenge is ${bytes.length} bytes long, shorter than any CHALLENGE message (32)`);
  if (!bytes.subarray(0, 8).equals(SIGNATURE)) throw new NtlmMessageError('the NTLM challenge does not begin with the NTLMSSP signature');
  const type = bytes.readUInt32LE(8);
  if (type !== 2) throw new NtlmMessageError(`the proxy sent NTLM message type ${type} where a CHALLENGE (type 2) belongs`);
  const flags = bytes.readUInt32LE(20);
  const serverChallenge = Buffer.from(bytes.subarray(24, 32));
  const targetName = fieldIfItFits(bytes, 12);
  const announced = (flags & NTLMSSP_NEGOTIATE_TARGET_INFO) !== 0 && bytes.length >= 48;
  const targetInfo = announced ? fieldIfItFits(bytes, 40) : Buffer.alloc(0);
  return { flags, serverChallenge, targetName, targetInfo };
}

export interface AuthenticateFields {
  flags: number;
  lmResponse: Buffer;
  ntResponse: Buffer;
  domain: string;
  user: string;
  workstation: string;
}

/** Where the MIC sits in bbgate's AUTHENTICATE: after the fixed fields (64 bytes) and the version (8). */
export const MIC_OFFSET = 72;
const FIXED = MIC_OFFSET + 16;

/**
 * AUTHENTICATE_MESSAGE with the version field and a zeroed MIC, which the caller fills in (the
 * MIC covers this very message with the MIC zeroed). Strings are UTF-16LE, as NEGOTIATE_UNICODE
 * promises; the payload is ordered as Windows orders it: domain, user, workstation, LM, NT.
 */
export function encodeAuthenticate(f: AuthenticateFields): Buffer {
  const domain = Buffer.from(f.domain, 'utf16le');
  const user = Buffer.from(f.user, 'utf16le');
  const workstation = Buffer.from(f.workstation, 'utf16le');
  const out = Buffer.alloc(FIXED + domain.length + user.length + workstation.length + f.lmResponse.length + f.ntResponse.length);
  SIGNATURE.copy(out, 0);
  out.writeUInt32LE(3, 8);
  let offset = FIXED;
  const put = (at: number, value: Buffer) => {
    writeField(out, at, value.length, offset);
    value.copy(out, offset);
    offset += value.length;
  };
  put(28, domain);
  put(36, user);
  put(44, workstation);
  put(12, f.lmResponse);
  put(20, f.ntResponse);
  // EncryptedRandomSessionKeyFields: empty (no key exchange).
  writeField(out, 52, 0, offset);
  out.writeUInt32LE(f.flags >>> 0, 60);
  VERSION.copy(out, 64);
  return out;
}

function writeField(out: Buffer, at: number, length: number, offset: number): void {
  out.writeUInt16LE(length, at);
  out.writeUInt16LE(length, at + 2);
  out.writeUInt32LE(offset, at + 4);
}

function fieldIfItFits(bytes: Buffer, at: number): Buffer {
  const length = bytes.readUInt16LE(at);
  const offset = bytes.readUInt32LE(at + 4);
  if (length === 0 || offset + length > bytes.length) return Buffer.alloc(0);
  return Buffer.from(bytes.subarray(offset, offset + length));
}

/** AV_PAIR ids (MS-NLMP 2.2.2.1) that bbgate reads or writes. */
export const AV = { EOL: 0, NbDomainName: 2, Flags: 6, Timestamp: 7 } as const;

export type AvPair = { id: number; value: Buffer };

/** Splits a TargetInfo block into its pairs, up to MsvAvEOL. */
export function decodeAvPairs(info: Buffer): AvPair[] {
  const pairs: AvPair[] = [];
  for (let at = 0; at + 4 <= info.length; ) {
    const id = info.readUInt16LE(at);
    const length = info.readUInt16LE(at + 2);
    if (id === AV.EOL) return pairs;
    if (at + 4 + length > info.length) throw new NtlmMessageError(`the NTLM challenge's target info has a pair (id ${id}, ${length} bytes) that runs past its end`);
    pairs.push({ id, value: Buffer.from(info.subarray(at + 4, at + 4 + length)) });
    at += 4 + length;
  }
  return pairs;
}

/** A TargetInfo block from pairs, ending with MsvAvEOL. */
export function encodeAvPairs(pairs: AvPair[]): Buffer {
  const parts: Buffer[] = [];
  for (const { id, value } of [...pairs, { id: AV.EOL, value: Buffer.alloc(0) }]) {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(id, 0);
    head.writeUInt16LE(value.length, 2);
    parts.push(head, value);
  }
  return Buffer.concat(parts);
}
