/**
 * PB's messages on the wire, each with its encoder and its decoder: the one
 * place that knows their shapes, for the broker and for the relay (which
 * reads and writes a few of them without a broker).
 *
 * Encoders write one whole expression into a BananaWriter (jellying what the
 * message carries); decoders take a received expression and give its parts,
 * or undefined when it does not have the message's shape.
 */
import { DIALECTS } from './banana/constants.js';
import { BananaWriter, type Sexp } from './banana/writer.js';
import { jelly, type JellyContext } from './jelly/encode.js';
import type { PbFailure } from './values/failure.js';
import type { KwArgs } from './values/references.js';
import { Tuple } from './values/values.js';

/** PB protocol version spoken by Twisted since 2004, and checked by both sides. */
export const PB_VERSION = 6;

const ROOT = Buffer.from('root');

function latin1(v: Sexp | undefined): string | undefined {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1') : undefined;
}

/** One expression on its own, for a peer that keeps no writer (the relay). */
export function encodeMessage(vocab: boolean, write: (w: BananaWriter) => void): Buffer {
  const w = new BananaWriter(512);
  w.vocab = vocab;
  write(w);
  return w.take();
}

/** The command a PB expression carries: its first element, if it is a list that starts with a string. */
export function commandOf(expr: Sexp): string | undefined {
  return Array.isArray(expr) ? latin1(expr[0]) : undefined;
}

// ---- The dialect handshake -------------------------------------------------------

/**
 * The server's first expression: the dialects it speaks, most preferred first, then any `marks`
 * (names no client speaks: a Twisted client picks the first offered dialect it knows, and never
 * a mark).
 */
export function writeDialectOffer(w: BananaWriter, marks: readonly string[] = []): void {
  w.list(DIALECTS.length + marks.length);
  for (const dialect of [...DIALECTS, ...marks]) w.bytes(Buffer.from(dialect, 'latin1'));
}

/** The dialects a server offers; what is no string reads "?". Undefined if the expression is no offer. */
export function decodeDialectOffer(expr: Sexp): string[] | undefined {
  return Array.isArray(expr) ? expr.map((d) => latin1(d) ?? '?') : undefined;
}

/** The client's answer to the offer: the one dialect it picked. */
export function writeDialectChoice(w: BananaWriter, dialect: string): void {
  w.bytes(Buffer.from(dialect, 'latin1'));
}

/** The dialect a client picked, if it is one bbgate offers. */
export function decodeDialectChoice(expr: Sexp): string | undefined {
  const choice = latin1(expr);
  return choice !== undefined && DIALECTS.includes(choice) ? choice : undefined;
}

/** `["version", 6]`, as both sides send it once the dialect is chosen. */
export function writeVersion(w: BananaWriter): void {
  w.list(2);
  w.word('version');
  w.int(PB_VERSION);
}

/** The version a peer announced (whatever it is), or undefined if the expression is no announcement. */
export function decodeVersion(expr: Sexp): { version: Sexp | undefined } | undefined {
  return commandOf(expr) === 'version' ? { version: (expr as Sexp[])[1] } : undefined;
}

// ---- Calls and their replies ----------------------------------------------------------

/** A call to one of the receiver's objects: `message` (or `cachemessage`, for a cached copy). */
export interface CallMessage {
  requestId: number;
  /** "root", another name (which addresses nothing), or a local object id. */
  target: string | number | undefined;
  method: string;
  /** The caller waits for an answer or error. */
  answerRequired: boolean;
  /** The jellied argument tuple and keyword dict, unjellied by whoever serves the call. */
  args: Sexp;
  kwargs: Sexp;
}

/** `["message", id, target, method, answerRequired, args, kwargs]`; the caller always waits for the answer. */
export function writeCall(w: BananaWriter, requestId: number, target: number | 'root', method: string, args: readonly unknown[], kwargs: KwArgs, ctx?: JellyContext): void {
  w.list(7);
  w.word('message');
  w.int(requestId);
  if (target === 'root') w.bytes(ROOT);
  else w.int(target);
  w.bytes(Buffer.from(method, 'utf8'));
  w.int(1);
  jelly(w, Tuple.from(args), ctx);
  jelly(w, kwargs instanceof Map ? kwargs : { ...kwargs }, ctx);
}

/** A `message` or `cachemessage` expression's parts; undefined if it is malformed. */
export function decodeCall(expr: Sexp[]): CallMessage | undefined {
  const [, requestId, target, method, answerRequired, args, kwargs] = expr;
  if (expr.length !== 7 || typeof requestId !== 'number' || !Number.isInteger(requestId) || !(method instanceof Uint8Array)) return undefined;
  return {
    requestId,
    target: typeof target === 'number' ? target : latin1(target),
    method: Buffer.from(method).toString('utf8'),
    answerRequired: answerRequired !== 0,
    args: args!,
    kwargs: kwargs!,
  };
}

/** `["answer", id, value]`: a call's result. */
export function writeAnswer(w: BananaWriter, requestId: number, value: unknown, ctx?: JellyContext): void {
  w.list(3);
  w.word('answer');
  w.int(requestId);
  jelly(w, value, ctx);
}

/** `["error", id, failure]`: a call's failure. */
export function writeError(w: BananaWriter, requestId: number, failure: PbFailure, ctx?: JellyContext): void {
  w.list(3);
  w.word('error');
  w.int(requestId);
  jelly(w, failure, ctx);
}

/** An `answer` or `error` expression's parts: which request, and the jellied result or failure. */
export function decodeReply(expr: Sexp[]): { requestId: number; body: Sexp } | undefined {
  const [, requestId, body] = expr;
  return expr.length === 3 && typeof requestId === 'number' ? { requestId, body: body! } : undefined;
}

/** `["decref", luid]`: the sender dropped one reference to the receiver's object `luid`. */
export function writeDecref(w: BananaWriter, luid: number): void {
  w.list(2);
  w.word('decref');
  w.int(luid);
}

/** The object a `decref` releases, if it names one by number. */
export function decodeDecref(expr: Sexp[]): number | undefined {
  const luid = expr[1];
  return typeof luid === 'number' ? luid : undefined;
}
