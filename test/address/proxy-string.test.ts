// --proxy-connection-string parsing (redaction itself: test/redact.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxyString, type ProxyConfig } from '../../src/address/proxy-string.js';

function fails(s: string, code: string, re: RegExp, secrets: string[] = []): void {
  assert.throws(() => parseProxyString(s), (err: Error & { code?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    for (const secret of secrets) assert.ok(!err.message.includes(secret), `"${secret}" leaked: ${err.message}`);
    return true;
  });
}

const plain = (c: ProxyConfig) => ({ ...c, url: c.url.href });

describe('parseProxyString', () => {
  it('takes buildbot-worker tcp: endpoints, keeping their timeout and bindAddress', () => {
    assert.deepEqual(plain(parseProxyString('tcp:proxy.example:3128')), { url: 'http://proxy.example:3128/', source: 'flag', connectTimeoutS: 30 });
    assert.deepEqual(plain(parseProxyString('tcp:host=proxy:port=3128:timeout=5:bindAddress=127.0.0.2')), {
      url: 'http://proxy:3128/', source: 'flag', connectTimeoutS: 5, bindAddress: '127.0.0.2',
    });
    assert.equal(parseProxyString('tcp:host=fd00\\:\\:1:port=3128').url.href, 'http://[fd00::1]:3128/');
  });

  it('takes http:// and https:// URLs, decoding credentials and keeping them out of the URL', () => {
    const c = parseProxyString('http://us%20er:p%40ss%3Aw%2Frd@Proxy.Example:3128/');
    assert.deepEqual(plain(c), { url: 'http://proxy.example:3128/', username: 'us er', password: 'p@ss:w/rd', source: 'flag' });
    assert.equal(parseProxyString('HTTPS://proxy.example').url.href, 'https://proxy.example/');
    assert.deepEqual(plain(parseProxyString('https://token@[::1]:8443')), { url: 'https://[::1]:8443/', username: 'token', password: '', source: 'flag' });
  });

  it('says what is wrong, as ENDPOINT_SYNTAX for tcp: strings and PROXY_SYNTAX otherwise', () => {
    fails('tcp:proxy', 'ENDPOINT_SYNTAX', /no port/);
    fails('tcp:proxy:3128:colour=red', 'ENDPOINT_SYNTAX', /unknown key "colour"/);
    fails('proxy.example:3128', 'PROXY_SYNTAX', /not a proxy connection string: write tcp:HOST:PORT, http:\/\/\[USER:PASSWORD@\]HOST:PORT\[#OPTIONS\] or https:/);
    fails('tls:proxy:3129', 'PROXY_SYNTAX', /for TLS to the proxy write https:\/\/HOST:PORT/);
    fails('socks5://u:s3cret@proxy:1080', 'PROXY_SYNTAX', /"socks5:\/\/" proxies are not supported/, ['s3cret']);
    fails('http://proxy:3128/some/path', 'PROXY_SYNTAX', /without a path or query$/);
    fails('http://a%3Ab:pw@proxy:3128', 'PROXY_SYNTAX', /user name contains ":"/, ['pw']);
  });

  it('takes #auth= (a forced scheme) and #hash= (the password is an NTLM hash), and refuses what it cannot use', () => {
    assert.deepEqual(plain(parseProxyString('http://CORP%5Cjane:pw@proxy:3128#auth=NTLM')), {
      url: 'http://proxy:3128/', username: 'CORP\\jane', password: 'pw', source: 'flag', auth: 'NTLM',
    });
    const hash = '8846F7EAEE8FB117AD06BDD830B7586C';
    assert.deepEqual(plain(parseProxyString(`http://jane@CORP:${hash}@proxy:3128#hash=nt&auth=ntlm`)), {
      url: 'http://proxy:3128/', username: 'jane@CORP', password: hash, source: 'flag', auth: 'NTLM', passwordHash: 'nt',
    });
    assert.equal(parseProxyString('http://proxy:3128#auth=negotiate').auth, 'Negotiate');
    assert.equal(parseProxyString(`http://u:${hash}@proxy:3128#hash=ntlmv2`).passwordHash, 'ntlmv2');
    fails('http://u:pw@proxy:3128#auth=digest', 'PROXY_SYNTAX', /#auth= takes basic, ntlm or negotiate; a "#" in a password must be written %23/, ['pw']);
    fails('http://u:pw@proxy:3128#colour=red', 'PROXY_SYNTAX', /unknown option after "#"/, ['pw']);
    fails('http://u:pw@proxy:3128#auth=ntlm=x', 'PROXY_SYNTAX', /an option after "#" is KEY=VALUE/, ['pw']);
    // An unescaped "#" in a password: what follows it looks like options, and none of it is quoted.
    fails('http://jane:2024#Winter@proxy.corp:3128', 'PROXY_SYNTAX', /must be written %23/, ['Winter', '2024']);
    fails('http://jane:2024#auth=Winter@proxy.corp:3128', 'PROXY_SYNTAX', /must be written %23/, ['Winter', '2024']);
    fails('http://u:n0th3x@proxy:3128#hash=nt', 'PROXY_SYNTAX', /#hash=nt wants the password to be the 32 hex digits/, ['n0th3x']);
    fails(`http://u:${hash}@proxy:3128#hash=nt&auth=basic`, 'PROXY_SYNTAX', /#hash= works with NTLM only/, [hash]);
    // WHATWG URLs read a backslash as "/": the message says how to write DOMAIN\user.
    fails('http://CORP\\jane:s3cret@proxy:3128', 'PROXY_SYNTAX', /write DOMAIN\\user as DOMAIN%5Cuser/, ['s3cret', 'jane']);
  });

  it('never repeats a password in its errors, even one that breaks the URL', () => {
    fails('http://b0bby:s3cr%E0%A4%A@proxy:3128', 'PROXY_SYNTAX', /malformed %-escape/, ['s3cr', 'b0bby']);
    fails('b0bby:s3cret@proxy:3128', 'PROXY_SYNTAX', /not a proxy connection string/, ['s3cret', 'b0bby']);
    fails('http://user:pa/s3cret@proxy:3128', 'PROXY_SYNTAX', /not a valid proxy URL/, ['s3cret', 'pa/']);
    fails('http://user:s3cret@proxy:99999', 'PROXY_SYNTAX', /not a valid proxy URL/, ['s3cret']);
  });
});
