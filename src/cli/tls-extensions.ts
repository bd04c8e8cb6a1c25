import { statSync } from 'node:fs';
import type { Endpoint } from '../address/endpoint.js';

const CANNOT = 'buildbot-worker cannot run this buildbot.tac';

/**
 * Notes for create-worker on the TLS settings of a tls: string that only bbgate reads (a wss://
 * URL has its own note: buildbot-worker has no WebSocket transport at all): Twisted's tls:
 * reads trustRoots= as a directory, and refuses keys it does not know.
 */
export function tlsExtensionNotes(endpoint: Endpoint): string[] {
  if (endpoint.type !== 'tls') return [];
  const notes: string[] = [];
  if (endpoint.trustRoots !== undefined && statSync(endpoint.trustRoots, { throwIfNoEntry: false })?.isFile()) {
    notes.push(`${CANNOT}: its trustRoots= must be a directory of .pem files (Twisted lists it), and ${endpoint.trustRoots} is a file; bbgate reads a PEM file too`);
  }
  if (endpoint.fingerprint !== undefined) {
    notes.push(`${CANNOT}: Twisted's tls: has no fingerprint= (it refuses the key); bbgate pins the master's certificate with it`);
  }
  return notes;
}
