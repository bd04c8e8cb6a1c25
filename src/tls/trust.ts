import type { TlsLogger } from './options.js';
import { platformTrust } from './platform-trust.js';
import { loadTrustRoots, type TrustRoots } from './trust-roots.js';

/** The CAs one connection trusts, and how to speak of them. */
export interface Trust {
  pem: string[];
  /** Where we looked, for messages: "the trustRoots directory …", "this machine's CA store (…)". */
  description: string;
  /** The trustRoots directory or file, when that is what is trusted. */
  roots?: Pick<TrustRoots, 'path' | 'kind'>;
}

export async function resolveTrust(trustRoots: string | undefined, logger?: TlsLogger): Promise<Trust> {
  if (trustRoots === undefined) {
    const { pem, sources } = await platformTrust();
    return { pem, description: `this machine's CA store (${sources.join(', ')})` };
  }
  const roots = await loadTrustRoots(trustRoots, logger);
  const n = roots.certificates.length;
  const { path, kind } = roots;
  return { pem: roots.pem, description: `the trustRoots ${kind} ${path} (${n} certificate${n === 1 ? '' : 's'})`, roots: { path, kind } };
}
