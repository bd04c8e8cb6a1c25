/** The proxy's answer to CONNECT, once its header block is complete. */
export interface ConnectReply {
  kind: 'reply';
  /** Verbatim, without the line ending: proxies put useful words in the reason phrase. */
  statusLine: string;
  statusCode: number;
  /** Lower-case names; repeated fields joined with ", " as HTTP allows. */
  headers: Record<string, string>;
  /** Each Proxy-Authenticate field on its own, in order: the joined form above blurs where one challenge ends. */
  proxyAuthenticate: string[];
  /** Bytes after the header block: already the far end's, e.g. a PB greeting that came in the same packet. */
  rest: Buffer;
}

export type ReplyState = ConnectReply | { kind: 'incomplete' } | { kind: 'not-http'; detail: string };

/** Beyond this a "header block" is not one; squid's own limit is 64 KiB too. */
const MAX_HEAD = 64 * 1024;
const STATUS_LINE = /^HTTP\/\d(?:\.\d)? (\d{3})(?: .*)?$/;

/**
 * Reads a CONNECT reply from everything received so far: call it again with
 * more bytes while it says 'incomplete'. Fails as soon as the bytes cannot be
 * HTTP, so a peer that is not a proxy is reported at once, not at the timeout.
 */
export function parseConnectReply(received: Buffer): ReplyState {
  // latin1 maps bytes to characters one to one, so string offsets are byte offsets.
  const text = received.toString('latin1');
  const start = text.slice(0, 5);
  if (!'HTTP/'.startsWith(start)) return notHttp(received);
  const firstLineEnd = text.indexOf('\n');
  const statusLine = (firstLineEnd < 0 ? text : text.slice(0, firstLineEnd)).replace(/\r$/, '');
  if (firstLineEnd >= 0 && !STATUS_LINE.test(statusLine)) return notHttp(received);
  const end = /\r?\n\r?\n/.exec(text);
  if (!end) {
    return text.length > MAX_HEAD ? { kind: 'not-http', detail: `no end of the header block within ${MAX_HEAD / 1024} KiB` } : { kind: 'incomplete' };
  }
  const block = text.slice(firstLineEnd + 1, end.index);
  return {
    kind: 'reply',
    statusLine,
    statusCode: Number(STATUS_LINE.exec(statusLine)![1]),
    headers: headerFields(block),
    proxyAuthenticate: fieldValues(block, 'proxy-authenticate'),
    rest: received.subarray(end.index + end[0].length),
  };
}

function headerFields(block: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let last: string | undefined;
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) {
      // An obsolete folded continuation of the previous field.
      fields[last] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    fields[last] = Object.hasOwn(fields, last) ? `${fields[last]}, ${value}` : value;
  }
  return fields;
}

/** Every value of one field, unfolded, in order. */
function fieldValues(block: string, name: string): string[] {
  const values: string[] = [];
  let current = false;
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (current) values[values.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    current = colon > 0 && line.slice(0, colon).trim().toLowerCase() === name;
    if (current) values.push(line.slice(colon + 1).trim());
  }
  return values;
}

function notHttp(received: Buffer): ReplyState {
  const tls = received.length >= 2 && (received[0] === 0x15 || received[0] === 0x16) && received[1] === 0x03;
  const hint = tls ? ' (a TLS record: is it an https:// proxy?)' : '';
  return { kind: 'not-http', detail: `it answered ${preview(received)}${hint}, which is not HTTP` };
}

/** The first bytes, printable and quoted, with anything else as \xNN escapes. */
function preview(bytes: Buffer): string {
  const shown = [...bytes.subarray(0, 40)]
    .map((b) => (b === 0x0d ? '\\r' : b === 0x0a ? '\\n' : b === 0x22 || b === 0x5c ? `\\${String.fromCharCode(b)}` : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
    .join('');
  return `"${shown}"${bytes.length > 40 ? '…' : ''}`;
}
