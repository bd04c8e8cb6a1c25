// Socket errors that loopback cannot produce (DNS, unreachable), mapped by phase.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { socketFailure, timeoutFailure, type Attempt } from '../../src/proxy/failures.js';

const a: Attempt = { proxy: 'http://proxy.corp:3128', target: 'master:9989', port: 9989 };
const errno = (code: string, message = `connect ${code} 10.0.0.1:3128`) => Object.assign(new Error(message), { code });

describe('socketFailure', () => {
  it('blames the proxy, not the master, for errors before the proxy answered', () => {
    const cases: [NodeJS.ErrnoException, string, RegExp][] = [
      [errno('ENOTFOUND', 'getaddrinfo ENOTFOUND proxy.corp'), 'PROXY_DNS', /^cannot resolve the host name of the proxy http:\/\/proxy\.corp:3128 \(ENOTFOUND\), so the master master:9989 was not tried$/],
      [errno('EAI_AGAIN'), 'PROXY_DNS', /EAI_AGAIN/],
      [errno('EHOSTUNREACH'), 'PROXY_UNREACHABLE', /^cannot reach the proxy http:\/\/proxy\.corp:3128 \(to tunnel to master:9989\): connect EHOSTUNREACH 10\.0\.0\.1:3128$/],
      [errno('ENETUNREACH'), 'PROXY_UNREACHABLE', /ENETUNREACH/],
      [errno('ETIMEDOUT'), 'PROXY_TIMEOUT', /the connection timed out \(a firewall may be dropping it\)$/],
      [errno('ECONNRESET'), 'PROXY_CLOSED', /\(ECONNRESET\) before it answered CONNECT master:9989$/],
      // As net reports a name with several addresses: the first errno on an AggregateError without a message.
      [Object.assign(new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' }), 'PROXY_REFUSED', /connection refused/],
      [Object.assign(new AggregateError([errno('EHOSTUNREACH', 'connect EHOSTUNREACH ::1'), errno('ENETUNREACH', 'connect ENETUNREACH 10.0.0.1')], ''), { code: 'EHOSTUNREACH' }), 'PROXY_UNREACHABLE', /\): connect EHOSTUNREACH ::1; connect ENETUNREACH 10\.0\.0\.1$/],
    ];
    for (const [err, code, re] of cases) {
      const failure = socketFailure(err, 'connect', a);
      assert.equal(failure.code, code, err.message);
      assert.match(failure.message, re);
      assert.equal(failure.cause, err);
    }
  });

  it('puts errors during the TLS handshake down to TLS, and errors while waiting for the reply down to the proxy closing', () => {
    assert.match(socketFailure(errno('ECONNRESET'), 'tls', a).message, /closed during the handshake \(is it a plain http:\/\/ proxy\?\)/);
    assert.equal(socketFailure(errno('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), 'tls', a).code, 'PROXY_TLS');
    assert.equal(socketFailure(errno('EPIPE'), 'reply', a).code, 'PROXY_CLOSED');
  });
});

describe('timeoutFailure', () => {
  it('says which step ran out of time', () => {
    assert.match(timeoutFailure('connect', 30, a).message, /^no connection to the proxy http:\/\/proxy\.corp:3128 within 30 s \(to tunnel to master:9989\)/);
    assert.match(timeoutFailure('tls', 10, a).message, /^the TLS handshake with the proxy http:\/\/proxy\.corp:3128 did not finish within 10 s/);
  });
});
