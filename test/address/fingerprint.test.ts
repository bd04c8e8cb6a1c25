// fingerprint= in tls: strings and wss:// URLs: the forms it takes, what it refuses, and a
// connection string written back with it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatEndpoint, parseEndpoint } from '../../src/address/connection-string.js';
import type { TlsEndpoint } from '../../src/address/endpoint.js';

const HEX = '5E8B0C0E5A0D8B2D7A3A0F7C2B6B9E1D4C3F2A1B0E9D8C7B6A5F4E3D2C1B0A99';
const COLONS = HEX.replace(/(..)(?!$)/g, '$1:');
const BASE64 = Buffer.from(HEX, 'hex').toString('base64');

function refused(description: string, pattern: RegExp): void {
  assert.throws(() => parseEndpoint(description), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ENDPOINT_SYNTAX');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('fingerprint= (a pin on the server\'s certificate)', () => {
  it('takes hex with or without colons, base64 and base64url, after an optional sha256:, and keeps 64 upper-case hex digits', () => {
    const forms = [
      `tls:m:9989:fingerprint=${HEX}`,
      `tls:m:9989:fingerprint=${HEX.toLowerCase()}`,
      `tls:m:9989:fingerprint=${COLONS.replace(/:/g, '\\:')}`,
      `tls:m:9989:fingerprint=sha256\\:${HEX}`,
      `tls:m:9989:fingerprint=${BASE64}`,
      `tls:m:9989:fingerprint=SHA256\\:${BASE64.replace(/=$/, '').replace(/\+/g, '-').replace(/\//g, '_')}`,
      `wss://relay/pb#fingerprint=sha256:${COLONS}`,
      `wss://relay/pb#fingerprint=${encodeURIComponent(BASE64)}`,
    ];
    for (const form of forms) {
      const endpoint = parseEndpoint(form) as TlsEndpoint;
      assert.equal(endpoint.fingerprint, HEX, form);
    }
  });

  it('is written back as 64 hex digits, which need no escaping, and read again the same', () => {
    for (const form of [`tls:m:9989:fingerprint=${BASE64}:trustRoots=/ca.pem`, `wss://relay/pb#fingerprint=${COLONS}`]) {
      const written = formatEndpoint(parseEndpoint(form));
      assert.match(written, new RegExp(`fingerprint=${HEX}(?![0-9A-F])`));
      assert.deepEqual(parseEndpoint(written), parseEndpoint(form));
    }
  });

  it('refuses what is not a SHA-256 fingerprint, saying what it takes', () => {
    refused('tls:m:9989:fingerprint=ABCD', /fingerprint= must be the SHA-256 fingerprint of the server's certificate: 64 hex digits .* not "ABCD"/);
    // SHA-1 (40 hex digits) is not taken for SHA-256.
    refused(`tls:m:9989:fingerprint=${HEX.slice(0, 40)}`, /must be the SHA-256 fingerprint/);
    refused(`wss://relay/pb#fingerprint=${COLONS.slice(1)}`, /must be the SHA-256 fingerprint/);
  });

  it('in a tls: string, says that unescaped colons split the fingerprint', () => {
    refused(`tls:m:9989:fingerprint=${COLONS}`, /too many positional arguments .*a fingerprint= is written without colons \(64 hex digits\), or with each ":" escaped as "\\:"/);
  });

  it('belongs to tls: and wss:// only', () => {
    refused(`ssl:host=m:port=9989:fingerprint=${HEX}`, /unknown key "fingerprint" for ssl .*fingerprint= is bbgate's, for tls: and wss:\/\/ only/);
    refused(`ws://relay/pb#fingerprint=${HEX}`, /unknown option "fingerprint" for ws:\/\/.*write wss:\/\//);
    refused(`tcp:m:9989:fingerprint=${HEX}`, /unknown key "fingerprint" for tcp/);
  });
});
