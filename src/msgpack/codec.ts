import { Decoder, Encoder } from '@msgpack/msgpack';
import { BbgateError } from '../errors.js';
import { PyFloat, PyText, type PbValue } from '../pb/index.js';

/**
 * One msgpack_experimental_v7 message: a map whose keys are strings, as the
 * master packs it (`msgpack.packb(..., use_bin_type=True)`): str as str,
 * bytes as bin, tuples as arrays, dicts as maps.
 */
export type WireMessage = Map<string, PbValue>;

/** Bytes of one message the worker accepts: a read block (at most 640 KiB) and its envelope, with room. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const encoder = new Encoder({ useBigInt64: true });
const decoder = new Decoder({ maxStrLength: MAX_MESSAGE_BYTES, maxBinLength: MAX_MESSAGE_BYTES });

/**
 * A value as the master's Python reads it: the command layer's values (the
 * same shapes PB carries, see ../pb/values/values.ts) with dicts as plain
 * maps, tuples and sets as arrays, and floats as floats.
 */
function toWire(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object') return value;
  if (value instanceof PyFloat) return value.value;
  // Output text kept as its pieces for PB's in-place encoding (../pb/values/values.ts): a str here.
  if (value instanceof PyText) return value.toString();
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value) || value instanceof Set) return Array.from(value, toWire);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, item] of entries) out[String(key)] = toWire(item);
  return out;
}

/** A received value in the command layer's shapes: maps become Map, bin a Buffer. */
function fromWire(value: unknown): PbValue {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object') return value as PbValue;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(fromWire);
  return new Map(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, fromWire(item)]));
}

export function encodeMessage(message: Record<string, unknown>): Uint8Array {
  return encoder.encode(toWire(message));
}

/** Decodes one binary WebSocket message; anything but a map with string keys is MSGPACK_PROTOCOL. */
export function decodeMessage(data: Uint8Array): WireMessage {
  let raw: unknown;
  try {
    raw = decoder.decode(data);
  } catch (err) {
    throw new BbgateError('MSGPACK_PROTOCOL', `the master sent a message that is not msgpack: ${(err as Error).message}`, { cause: err });
  }
  const message = fromWire(raw);
  if (!(message instanceof Map)) throw new BbgateError('MSGPACK_PROTOCOL', `the master sent a msgpack ${Array.isArray(message) ? 'array' : typeof message}, not a map`);
  return message as WireMessage;
}
