// The two rules that keep credentials out of output (src/redact.ts): user info hidden when a
// string the user gave is quoted, and known secrets scrubbed from what a process writes.
// test/cli/no-echo.test.ts checks every command's every channel end to end.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactCredentials } from '../src/address/redact.js';
import { secretScrubber } from '../src/redact.js';

describe('redactCredentials', () => {
  it('hides the user name and password of URLs, connection strings and bare HOST strings', () => {
    assert.equal(redactCredentials('http://bob:s3cret@proxy:3128'), 'http://***@proxy:3128');
    assert.equal(redactCredentials(new URL('https://token@proxy')), 'https://***@proxy/');
    assert.equal(redactCredentials('tcp:bob:s3cret@master:9989'), 'tcp:***@master:9989');
    assert.equal(redactCredentials('TLS:host=bob\\:s3cret@master:port=1'), 'TLS:***@master:port=1');
    assert.equal(redactCredentials('wss://bob:s3cret@relay/pb'), 'wss://***@relay/pb');
    assert.equal(redactCredentials('bob:s3cret@proxy'), '***@proxy');
  });

  it('hides everything up to the last "@", whatever a password holds', () => {
    assert.equal(redactCredentials('http://bob:pa/s3c@ret@proxy:99999'), 'http://***@proxy:99999');
    assert.equal(redactCredentials('http://user:p@ss/word@proxy:3128'), 'http://***@proxy:3128');
    assert.equal(redactCredentials('http://u:a#b?c\nd@proxy'), 'http://***@proxy');
  });

  it('leaves a string without "@" as written', () => {
    for (const s of ['http://proxy:3128', 'tcp:master:9989', 'not a url', '', 'ws://relay/pb#timeout=5']) assert.equal(redactCredentials(s), s);
  });
});

describe('secretScrubber', () => {
  it('replaces each secret as written, %-encoded and JSON-escaped, longest first', () => {
    const scrub = secretScrubber(['p@ss:"word"', 'word', undefined, 'abc']);
    assert.equal(scrub('a p@ss:"word" b'), 'a [redacted] b');
    assert.equal(scrub('http://u:p%40ss%3A%22word%22@h'), 'http://u:[redacted]@h');
    assert.equal(scrub(JSON.stringify({ msg: 'said p@ss:"word"' })), '{"msg":"said [redacted]"}');
    assert.equal(scrub('a word, abc'), 'a [redacted], abc', 'secrets under four characters are left alone');
  });
});
