/** NEGOTIATE flags (MS-NLMP 2.2.2.5) that bbgate sets or reads; the names are the spec's. */
export const NTLMSSP_NEGOTIATE_UNICODE = 0x00000001;
export const NTLM_NEGOTIATE_OEM = 0x00000002;
export const NTLMSSP_REQUEST_TARGET = 0x00000004;
export const NTLMSSP_NEGOTIATE_NTLM = 0x00000200;
export const NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000;
export const NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000;
export const NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000;
export const NTLMSSP_NEGOTIATE_VERSION = 0x02000000;
export const NTLMSSP_NEGOTIATE_128 = 0x20000000;

/**
 * What bbgate's NEGOTIATE asks for: Unicode strings, NTLM with extended session security (the
 * NTLMv2 family), the target's info block (which carries the timestamp NTLMv2 needs), and the
 * version field, as Windows clients send. No sealing or key exchange: the tunnel is only
 * authenticated, never signed, so there is no session key to protect and no RC4.
 */
export const CLIENT_FLAGS =
  NTLMSSP_NEGOTIATE_UNICODE |
  NTLM_NEGOTIATE_OEM |
  NTLMSSP_REQUEST_TARGET |
  NTLMSSP_NEGOTIATE_NTLM |
  NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
  NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
  NTLMSSP_NEGOTIATE_TARGET_INFO |
  NTLMSSP_NEGOTIATE_VERSION |
  NTLMSSP_NEGOTIATE_128;
