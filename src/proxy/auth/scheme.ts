export type AuthSchemeName = 'Basic' | 'NTLM' | 'Negotiate';
/** One authentication conversation with a proxy, riding one connection. */
export interface AuthExchange {
  readonly scheme: AuthSchemeName;
  /**
   * The Proxy-Authorization value to send next (`NTLM TlRMTVNT...`). `challenge` is what the
   * proxy's 407 said after this scheme's name in its Proxy-Authenticate (base64 token or
   * undefined when it named the scheme alone / on the first leg).
   */
  step(challenge: string | undefined): Promise<string>;
  /** True once the scheme has sent its final leg (a 407 after it is a rejection). */
  readonly done: boolean;
}
