import { isIP } from 'node:net';
import { readPort } from './host-port.js';
import { EndpointSyntaxError } from './syntax-error.js';

// Checks of the values every client string shares (tcp:, tls:, ssl:, ws://, wss://, MASTER), so
// that each is refused in the same words whichever grammar it came in.

/** A whole number from min to max, or undefined when not given. */
export function integer(description: string, key: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new EndpointSyntaxError(description, `${key} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

/** The port of a peer, or undefined when not given. */
export function peerPort(description: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = readPort(value);
  if (port === undefined) throw new EndpointSyntaxError(description, `port must be a whole number from 1 to 65535, not "${value}"`);
  return port;
}

/** The longest timeout anything takes, in seconds (a day): beyond it a timer could not fire as set. */
export const MAX_TIMEOUT_SECONDS = 86400;

/** The connect timeout in seconds: Twisted's default of 30 when not given. */
export function timeoutSeconds(description: string, value: string | undefined): number {
  return integer(description, 'timeout', value, 1, MAX_TIMEOUT_SECONDS) ?? 30;
}

/** bindAddress= as given, which must be an IP address (the local one to connect from). */
export function bindAddress(description: string, value: string | undefined): { bindAddress?: string } {
  if (value === undefined) return {};
  if (!isIP(value)) throw new EndpointSyntaxError(description, `bindAddress "${value}" is not an IP address`);
  return { bindAddress: value };
}

/** Twisted would silently drop a key without its certificate; here it is an error, since the user meant something. */
export function requireCertificate(description: string, certificateKey: string, certificate: string | undefined, privateKey: string | undefined): void {
  if (privateKey !== undefined && certificate === undefined) {
    throw new EndpointSyntaxError(description, `privateKey= needs ${certificateKey}= (the client certificate it belongs to)`);
  }
}

/** The optional fields that are set, so that a parsed endpoint has no keys holding undefined. */
export function present<T extends Record<string, string | undefined>>(fields: T): Partial<Record<keyof T, string>> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, string>>;
}
