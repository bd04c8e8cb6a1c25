// The CONNECT reply reader on its own: pieces, leftovers, and things that are not HTTP.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConnectReply, type ReplyState } from '../../src/proxy/reply.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds the bytes one at a time, as the slowest proxy would, and returns the first final state. */
function byteByByte(s: string): { state: ReplyState; fed: number } {
  for (let n = 1; n <= s.length; n++) {
    const state = parseConnectReply(b(s.slice(0, n)));
    if (state.kind !== 'incomplete') return { state, fed: n };
  }
  return { state: { kind: 'incomplete' }, fed: s.length };
}

describe('parseConnectReply', () => {
  it('reads a 200 and keeps the bytes after the header block for the tunnel', () => {
    const state = parseConnectReply(b('HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\n\x80\x02pb'));
    assert.equal(state.kind, 'reply');
    if (state.kind !== 'reply') return;
    assert.equal(state.statusLine, 'HTTP/1.1 200 Connection established');
    assert.equal(state.statusCode, 200);
    assert.deepEqual(state.headers, { via: '1.1 squid' });
    assert.deepEqual([...state.rest], [0x80, 0x02, 0x70, 0x62]);
  });

  it('waits for the whole header block however it is split, and completes exactly at its end', () => {
    const head = 'HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\nProxy-Authenticate: Negotiate\r\n\r\n';
    const { state, fed } = byteByByte(head + 'body');
    assert.equal(fed, head.length);
    assert.equal(state.kind, 'reply');
    if (state.kind !== 'reply') return;
    assert.equal(state.statusCode, 407);
    assert.equal(state.headers['proxy-authenticate'], 'Basic realm="x", Negotiate');
    assert.equal(state.rest.length, 0);
  });

  it('takes a status line without a reason phrase, bare LF line ends, and folded header lines', () => {
    const state = parseConnectReply(b('HTTP/1.1 200\nX-A: one\n  two\nx-a: three\nConstructor: c\n\nrest'));
    assert.equal(state.kind, 'reply');
    if (state.kind !== 'reply') return;
    assert.equal(state.statusLine, 'HTTP/1.1 200');
    assert.equal(state.headers['x-a'], 'one two, three');
    assert.equal(state.headers['constructor'], 'c');
    assert.equal(state.rest.toString(), 'rest');
  });

  it('says "not HTTP" from the first wrong byte, without waiting for more', () => {
    for (const [bytes, shown] of [
      ['SSH-2.0-OpenSSH_9.2\r\n', '"SSH-2.0-OpenSSH_9.2\\r\\n"'],
      ['H\x00', '"H\\x00"'],
      ['\x04\x80\x82', '"\\x04\\x80\\x82"'],
    ] as const) {
      const state = parseConnectReply(b(bytes));
      assert.equal(state.kind, 'not-http', bytes);
      if (state.kind === 'not-http') assert.ok(state.detail.includes(shown), state.detail);
    }
  });

  it('rejects a first line that starts like HTTP but is not a status line', () => {
    const state = parseConnectReply(b('HTTP/1.1 OK 200\r\n\r\n'));
    assert.equal(state.kind, 'not-http');
  });

  it('recognises a TLS record, the usual sign of an https:// proxy spoken to as http://', () => {
    const state = parseConnectReply(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]));
    assert.equal(state.kind, 'not-http');
    if (state.kind === 'not-http') assert.match(state.detail, /TLS record: is it an https:\/\/ proxy\?/);
  });

  it('gives up on a header block longer than 64 KiB', () => {
    const state = parseConnectReply(b(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70 * 1024)}`));
    assert.equal(state.kind, 'not-http');
    if (state.kind === 'not-http') assert.match(state.detail, /64 KiB/);
  });
});
