// Proxy resolution from the environment: which variable a PB tunnel takes, and NO_PROXY.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getProxyForUrl } from 'proxy-from-env';
import { proxyFromEnvironment } from '../../src/proxy/index.js';

const P = 'http://proxy.corp:3128';

function via(env: NodeJS.ProcessEnv, host = 'master.example.org', port = 9989): string | undefined {
  return proxyFromEnvironment(host, port, env).proxy?.url.origin;
}

describe('proxyFromEnvironment: which variable', () => {
  it('takes HTTPS_PROXY, the proxy for CONNECT tunnels, and says so', () => {
    const { proxy, reason } = proxyFromEnvironment('master.example.org', 9989, { HTTPS_PROXY: P });
    assert.equal(proxy?.url.href, 'http://proxy.corp:3128/');
    assert.equal(proxy?.source, 'environment');
    assert.equal(proxy?.envVar, 'HTTPS_PROXY');
    assert.equal(reason, 'proxied through http://proxy.corp:3128 from HTTPS_PROXY');
  });

  it('prefers the lower-case spelling, and treats an empty value as unset', () => {
    assert.equal(proxyFromEnvironment('m', 1, { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }).proxy?.envVar, 'https_proxy');
    assert.equal(proxyFromEnvironment('m', 1, { https_proxy: '', HTTPS_PROXY: 'http://upper:2' }).proxy?.envVar, 'HTTPS_PROXY');
  });

  it('falls back to ALL_PROXY, never to HTTP_PROXY, and explains an ignored HTTP_PROXY', () => {
    assert.equal(via({ ALL_PROXY: 'http://all:1' }), 'http://all:1');
    assert.equal(via({ HTTPS_PROXY: 'http://https:1', ALL_PROXY: 'http://all:1', HTTP_PROXY: 'http://http:1' }), 'http://https:1');
    assert.equal(via({ HTTP_PROXY: 'http://http:1', all_proxy: 'http://all:1' }), 'http://all:1');
    const only = proxyFromEnvironment('master', 9989, { http_proxy: 'http://http:1' });
    assert.equal(only.proxy, undefined);
    assert.match(only.reason, /^not proxied: neither HTTPS_PROXY nor ALL_PROXY is set \(http_proxy is set but not used: it is for plain-HTTP requests/);
    assert.equal(proxyFromEnvironment('master', 9989, {}).reason, 'not proxied: neither HTTPS_PROXY nor ALL_PROXY is set');
  });

  it('reads a value without a scheme as http://, as curl does (proxy-from-env would make it https://)', () => {
    assert.equal(proxyFromEnvironment('m', 1, { HTTPS_PROXY: 'proxy.corp:3128' }).proxy?.url.href, 'http://proxy.corp:3128/');
    assert.equal(proxyFromEnvironment('m', 1, { HTTPS_PROXY: 'https://proxy.corp:3129' }).proxy?.url.protocol, 'https:');
  });

  it('decodes credentials from the variable and keeps them out of the reason', () => {
    const { proxy, reason } = proxyFromEnvironment('m', 1, { HTTPS_PROXY: 'http://b0b:s%40cret@proxy:3128' });
    assert.equal(proxy?.username, 'b0b');
    assert.equal(proxy?.password, 's@cret');
    assert.doesNotMatch(reason, /b0b|cret/);
  });

  it('fails with PROXY_SYNTAX, naming the variable, on a value it cannot use (and never shows its password)', () => {
    for (const [env, re] of [
      [{ ALL_PROXY: 'socks5://b0b:s3cret@proxy:1080' }, /^ALL_PROXY="socks5:\/\/\*\*\*@proxy:1080": "socks5:\/\/" proxies are not supported/],
      [{ https_proxy: 'http://b0b:s3cret@proxy:3128/path' }, /^https_proxy=.*without a path/],
      [{ HTTPS_PROXY: 'http://b0b:s3c/ret@proxy:3128' }, /^HTTPS_PROXY="http:\/\/\*\*\*@proxy:3128": not a valid proxy URL/],
    ] as const) {
      assert.throws(() => proxyFromEnvironment('m', 1, env), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PROXY_SYNTAX');
        assert.match(err.message, re);
        assert.doesNotMatch(err.message, /b0b|s3c/);
        return true;
      });
    }
  });

  it('is pure on the env passed in, and reads process.env by default', () => {
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'http://from-process:1';
    try {
      assert.equal(via({}), undefined);
      assert.equal(proxyFromEnvironment('m', 1).proxy?.url.origin, 'http://from-process:1');
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
  });
});

describe('proxyFromEnvironment: NO_PROXY', () => {
  const env = (noProxy: string): NodeJS.ProcessEnv => ({ HTTPS_PROXY: P, NO_PROXY: noProxy });

  it('matches names exactly, or by suffix when the entry starts with "." or "*"', () => {
    assert.equal(via(env('master.example.org')), undefined);
    assert.equal(via(env('MASTER.Example.ORG')), undefined);
    assert.equal(via(env('.example.org')), undefined);
    assert.equal(via(env('*.example.org')), undefined);
    assert.equal(via(env('.example.org'), 'example.org'), P);
    assert.equal(via(env('other.org,.example.com')), P);
    assert.equal(via(env('example.org')), P);
  });

  it('names the entry that matched', () => {
    assert.deepEqual(proxyFromEnvironment('master.example.org', 9989, { HTTPS_PROXY: P, no_proxy: 'localhost, .example.org' }), {
      reason: 'not proxied: no_proxy entry ".example.org" matches master.example.org:9989',
    });
  });

  it('points out a parent-domain entry without a leading dot, which matches only itself', () => {
    const { proxy, reason } = proxyFromEnvironment('master.example.org', 9989, env('localhost,example.org'));
    assert.ok(proxy);
    assert.equal(reason, 'proxied through http://proxy.corp:3128 from HTTPS_PROXY; no NO_PROXY entry matches master.example.org:9989 (an entry without a leading dot matches only that exact name: write ".example.org" to cover its subdomains)');
  });

  it('honours ports in entries, "*" alone or in a list, and commas or spaces as separators', () => {
    assert.equal(via(env('master.example.org:9989')), undefined);
    assert.equal(via(env('master.example.org:9990')), P);
    assert.equal(via(env('*')), undefined);
    assert.equal(via(env('localhost *')), undefined);
    assert.equal(via(env('  localhost ,\t.example.org  ')), undefined);
  });

  it('matches IPv4 and IPv6 addresses numerically, bracketed or not, with or without a port', () => {
    assert.equal(via(env('fd00::1'), '0:0:0:0:0:0:0:fd00'), P);
    assert.equal(via(env('fd00::1'), 'fd00:0:0:0:0:0:0:1'), undefined);
    assert.equal(via(env('[fd00::1]:9989'), '[fd00::1]'), undefined);
    assert.equal(via(env('[fd00::1]:1'), 'fd00::1'), P);
    assert.equal(via(env('192.168.1.10'), '192.168.1.10'), undefined);
    assert.equal(via(env('192.168.1.10:9989'), '192.168.1.10'), undefined);
    assert.equal(via(env('192.168.1.10:1'), '192.168.1.10'), P);
    assert.equal(via(env('::3'), '::2'), P);
  });

  it('matches CIDR ranges, IPv4 and IPv6, for targets written as addresses only', () => {
    assert.equal(via(env('10.0.0.0/8'), '10.200.3.4'), undefined);
    assert.equal(via(env('10.0.0.0/8'), '11.0.0.1'), P);
    assert.equal(via(env('192.168.0.0/16,fd00::/8'), 'fd12:3456::1'), undefined);
    assert.equal(via(env('[fd00::]/8'), 'fd12::1'), undefined);
    assert.equal(via(env('fd00::/8'), 'fe80::1'), P);
    assert.equal(via(env('10.0.0.0/8'), 'fd00::1'), P);
    assert.equal(via(env('10.0.0.0/33'), '10.0.0.1'), P);
    // A name is not resolved to be checked against addresses.
    assert.equal(via(env('10.0.0.0/8'), 'intranet-master'), P);
  });

  it('does not apply to a target when no proxy variable is set', () => {
    assert.equal(proxyFromEnvironment('m', 1, { NO_PROXY: '*' }).reason, 'not proxied: neither HTTPS_PROXY nor ALL_PROXY is set');
  });
});

describe('proxyFromEnvironment: loopback destinations (issue 12, item 5)', () => {
  it('never sends 127.0.0.0/8, ::1 or localhost through HTTPS_PROXY or ALL_PROXY, even without NO_PROXY', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.', 'master.localhost']) {
      for (const env of [{ HTTPS_PROXY: P }, { all_proxy: P }, { HTTPS_PROXY: P, NO_PROXY: 'other.example' }]) {
        const { proxy, reason } = proxyFromEnvironment(host, 9989, env);
        assert.equal(proxy, undefined, `${host} ${JSON.stringify(env)}`);
        assert.match(reason, /^not proxied: .* is this machine \(a loopback destination\), which (HTTPS_PROXY|all_proxy) never applies to; to tunnel to it through a proxy anyway, pass --proxy-connection-string$/);
      }
    }
  });

  it('still proxies names and addresses that only look local', () => {
    for (const host of ['128.0.0.1', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'localhost.example.org', 'mylocalhost', '127.0.0.1.example.org']) {
      assert.equal(via({ HTTPS_PROXY: P }, host), P, host);
    }
  });
});

describe('proxyFromEnvironment agrees with proxy-from-env on what they share', () => {
  const envs: NodeJS.ProcessEnv[] = [
    { HTTPS_PROXY: P },
    { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1' },
    { HTTP_PROXY: 'http://http-only:1' },
    { ALL_PROXY: 'http://all:1', HTTP_PROXY: 'http://http:1' },
    { https_proxy: '', ALL_PROXY: 'https://all:443' },
    { HTTPS_PROXY: P, NO_PROXY: 'localhost,.example.org' },
    { HTTPS_PROXY: P, no_proxy: 'master.example.org:9989', NO_PROXY: '*' },
    { HTTPS_PROXY: P, NO_PROXY: 'example.org *.example.net' },
    { HTTPS_PROXY: P, NO_PROXY: '*' },
    { HTTPS_PROXY: P, NO_PROXY: '10.1.2.3,[fd00::1]:9989' },
    { HTTPS_PROXY: P, NO_PROXY: 'master.example.org:443' },
  ];
  // Loopback targets are left out: bbgate never proxies them (see the test below), proxy-from-env does.
  const targets: [string, number][] = [
    ['master.example.org', 9989], ['master.example.org', 443], ['example.org', 9989], ['www.example.net', 9989],
    ['10.1.2.3', 9989], ['fd00::1', 9989], ['fd00::1', 9990],
  ];

  it('on every combination of these variables and targets', () => {
    const names = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];
    const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    try {
      for (const env of envs) {
        for (const n of names) delete process.env[n];
        Object.assign(process.env, env);
        for (const [host, port] of targets) {
          const theirs = getProxyForUrl(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
          const ours = proxyFromEnvironment(host, port, env).proxy?.url.origin;
          assert.equal(ours, theirs ? new URL(theirs).origin : undefined, `${JSON.stringify(env)} ${host}:${port}`);
        }
      }
    } finally {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n];
        else process.env[n] = saved[n];
      }
    }
  });
});
