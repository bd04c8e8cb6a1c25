/**
 * The `kerberos` npm package (MIT krb5's GSSAPI, compiled at install) loaded on first use.
 * It is an optional dependency: where it did not build or is not installed, Negotiate is
 * unavailable and the reason is kept for the message, while NTLM and Basic, which need no
 * native code, go on working. The specifier is a variable so that TypeScript neither needs the
 * package to compile nor takes its types (whose option names disagree with its code: the
 * flags are read from `flags`, not the `gssFlag` its index.d.ts declares).
 */

/** The part of the package bbgate uses. */
export interface KerberosBinding {
  GSS_MECH_OID_SPNEGO: number;
  initializeClient(service: string, options: { mechOID: number; flags: number }): Promise<GssClient>;
}

export interface GssClient {
  /** One gss_init_sec_context call: base64 in (empty on the first leg), base64 out (empty when there is nothing to send). */
  step(challenge: string): Promise<string>;
  readonly contextComplete: boolean;
}

export type BindingLoad = { ok: true; binding: KerberosBinding } | { ok: false; reason: string };

const PACKAGE = 'kerberos';
let loading: Promise<BindingLoad> | undefined;

export function loadKerberos(): Promise<BindingLoad> {
  return (loading ??= (async (): Promise<BindingLoad> => {
    try {
      const module = (await import(PACKAGE)) as { default?: KerberosBinding } & Partial<KerberosBinding>;
      const binding = (module.default ?? module) as KerberosBinding;
      if (typeof binding.initializeClient !== 'function') return { ok: false, reason: `the "${PACKAGE}" package has no initializeClient()` };
      return { ok: true, binding };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason = code === 'ERR_MODULE_NOT_FOUND'
        ? `the optional "${PACKAGE}" package is not installed (npm install ${PACKAGE}; it builds against libkrb5-dev)`
        : `the optional "${PACKAGE}" package failed to load (${(err as Error).message.split('\n')[0]}); reinstall it where libkrb5-dev, make and a C++ compiler are present`;
      return { ok: false, reason };
    }
  })());
}
