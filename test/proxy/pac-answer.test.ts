// The pure parts of PAC support: the pac+ string (src/address/pac-string.ts, through the one
// parser every proxy flag uses) and FindProxyForURL's answer (src/proxy/pac/answer.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPacSource, parseProxySetting, proxySettingSecrets } from '../../src/address/proxy-setting.js';
import { parsePacAnswer } from '../../src/proxy/pac/answer.js';
import { evaluatePac, shExpMatch } from '../../src/proxy/pac/evaluate.js';
import { resolveRelayConfig } from '../../src/relay/config.js';

function refuses(fn: () => unknown, code: string, re: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    return true;
  });
}

describe('pac+ proxy strings', () => {
  it('parses pac+file:///, pac+http:// and pac+https:// into a PAC location, and other strings as before', () => {
    const file = parseProxySetting('pac+file:///etc/bbgate/proxy.pac');
    assert.ok(isPacSource(file));
    assert.equal(file.location.href, 'file:///etc/bbgate/proxy.pac');
    assert.equal(file.text, 'pac+file:///etc/bbgate/proxy.pac');
    const local = parseProxySetting('PAC+file://localhost/etc/proxy.pac');
    assert.ok(isPacSource(local));
    assert.equal(local.location.href, 'file:///etc/proxy.pac');
    const http = parseProxySetting('pac+http://wpad.corp.example/wpad.dat?v=2');
    assert.ok(isPacSource(http));
    assert.equal(http.location.href, 'http://wpad.corp.example/wpad.dat?v=2');
    const https = parseProxySetting('pac+https://[::1]:8443/proxy.pac');
    assert.ok(isPacSource(https) && https.location.protocol === 'https:');
    const plain = parseProxySetting('http://u:p@proxy:3128');
    assert.ok(!isPacSource(plain));
    assert.deepEqual(proxySettingSecrets(plain), ['p', Buffer.from('u:p').toString('base64')]);
    assert.deepEqual(proxySettingSecrets(http), []);
  });

  it('refuses relative or host-named files, other schemes, fragments and credentials, without echoing a password', () => {
    refuses(() => parseProxySetting('pac+file:proxy.pac'), 'PROXY_SYNTAX', /absolute path, with three slashes/);
    refuses(() => parseProxySetting('pac+file://server/share/proxy.pac'), 'PROXY_SYNTAX', /absolute path/);
    refuses(() => parseProxySetting('pac+file:///etc/'), 'PROXY_SYNTAX', /names a directory/);
    refuses(() => parseProxySetting('pac+ftp://host/proxy.pac'), 'PROXY_SYNTAX', /"ftp:\/\/" PAC URLs are not supported/);
    refuses(() => parseProxySetting('pac+'), 'PROXY_SYNTAX', /not a valid PAC URL/);
    refuses(() => parseProxySetting('pac+http://host/p.pac#x'), 'PROXY_SYNTAX', /no #fragment/);
    for (const s of ['pac+http://b0b:s3cret@host/p.pac', 'pac+https://b0b:s3c/ret@host/p.pac']) {
      assert.throws(() => parseProxySetting(s), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PROXY_SYNTAX');
        assert.doesNotMatch(err.message, /b0b|s3c/);
        return true;
      });
    }
  });

  it('is what the relay\'s upstreamProxy takes', () => {
    const config = resolveRelayConfig({ listen: ['tcp:0'], upstream: 'tcp:master:9989', allow: ['*'], upstreamProxy: 'pac+file:///etc/bbgate/proxy.pac' });
    assert.ok(isPacSource(config.upstreamProxy));
  });
});

describe('parsePacAnswer', () => {
  const texts = (answer: string) => parsePacAnswer(answer).entries.map((e) => (e.kind === 'direct' ? 'DIRECT' : `${e.text} → ${e.proxy.url.origin}`));

  it('takes PROXY, HTTP, HTTPS and DIRECT entries in order, in any case, with default ports', () => {
    assert.deepEqual(texts('PROXY a.corp:3128; PROXY b.corp:8080; DIRECT'), ['PROXY a.corp:3128 → http://a.corp:3128', 'PROXY b.corp:8080 → http://b.corp:8080', 'DIRECT']);
    assert.deepEqual(texts(' proxy  a:1 ;;https [fd00::1]:8443; Http b; direct ;'), ['proxy  a:1 → http://a:1', 'https [fd00::1]:8443 → https://[fd00::1]:8443', 'Http b → http://b', 'DIRECT']);
    assert.deepEqual(texts('HTTPS secure.corp'), ['HTTPS secure.corp → https://secure.corp']);
    const [entry] = parsePacAnswer('PROXY 10.0.0.1:3128').entries;
    assert.equal(entry?.kind === 'proxy' && entry.proxy.source, 'pac');
  });

  it('skips SOCKS entries, naming them, and refuses an answer of SOCKS only', () => {
    const answer = parsePacAnswer('SOCKS5 s:1080; PROXY p:3128; SOCKS s:1081');
    assert.deepEqual(answer.skipped, ['SOCKS5 s:1080', 'SOCKS s:1081']);
    assert.equal(answer.entries.length, 1);
    refuses(() => parsePacAnswer('SOCKS s:1080; SOCKS4 t:1080'), 'PROXY_PAC_ANSWER', /names only SOCKS proxies, which bbgate does not support/);
  });

  it('refuses what is not a list of entries, so that a typo never turns into DIRECT', () => {
    refuses(() => parsePacAnswer('PROXXY a:1; DIRECT'), 'PROXY_PAC_ANSWER', /the entry "PROXXY a:1" of the answer/);
    refuses(() => parsePacAnswer('PROXY'), 'PROXY_PAC_ANSWER', /the entry "PROXY"/);
    refuses(() => parsePacAnswer('DIRECT now'), 'PROXY_PAC_ANSWER', /"DIRECT now"/);
    refuses(() => parsePacAnswer('PROXY u:p@host:1'), 'PROXY_PAC_ANSWER', /does not name a HOST:PORT/);
    refuses(() => parsePacAnswer('PROXY host:99999'), 'PROXY_PAC_ANSWER', /does not name a valid HOST:PORT/);
    refuses(() => parsePacAnswer('PROXY host/path:1'), 'PROXY_PAC_ANSWER', /does not name a HOST:PORT/);
    refuses(() => parsePacAnswer(' ; '), 'PROXY_PAC_ANSWER', /no entry \(write "DIRECT"/);
    refuses(() => parsePacAnswer(null), 'PROXY_PAC_ANSWER', /returned null, not a string/);
    refuses(() => parsePacAnswer(undefined), 'PROXY_PAC_ANSWER', /returned undefined/);
    refuses(() => parsePacAnswer(3), 'PROXY_PAC_ANSWER', /returned a number/);
    refuses(() => parsePacAnswer('DIRECT;'.repeat(40)), 'PROXY_PAC_ANSWER', /40 entries, more than 32/);
    refuses(() => parsePacAnswer(`PROXY ${'a'.repeat(5000)}:1`), 'PROXY_PAC_ANSWER', /more than the 4096/);
  });
});

describe('shExpMatch, as the PAC sandbox gets it', () => {
  it('matches shell-style: * any run, ? one character, everything else itself (regex characters included)', () => {
    assert.equal(shExpMatch('https://master.corp:9989/', '*.corp:*'), true);
    assert.equal(shExpMatch('master.corp', 'master.co?p'), true);
    assert.equal(shExpMatch('master.corp', 'master.co?'), false);
    assert.equal(shExpMatch('a.b', 'a?b'), true);
    assert.equal(shExpMatch('axb', 'a.b'), false, 'a "." is a dot, not any character');
    assert.equal(shExpMatch('(a+)+', '(a+)+'), true);
    assert.equal(shExpMatch('', '*'), true);
    assert.equal(shExpMatch('abc', ''), false);
  });

  it('answers a pattern that would backtrack catastrophically as a RegExp ("(a+)+" on "aaa…a!") at once, inside a PAC too', async () => {
    assert.equal(shExpMatch(`${'a'.repeat(5000)}!`, `${'*a'.repeat(50)}?*b`), false);
    const pac = `function FindProxyForURL(url, host) { return shExpMatch("${'a'.repeat(40)}!", "(a+)+") ? "PROXY evil:1" : "DIRECT"; }`;
    assert.equal(await evaluatePac(pac, 'https://m:1/', 'm', { name: 'redos.pac', timeoutMs: 5000 }), 'DIRECT');
  });
});
