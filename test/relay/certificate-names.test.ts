// The names a client certificate gives its holder, for a listener's certNames=1.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certificateNames, subjectAltNames } from '../../src/relay/certificate-names.js';

test('the subject CN and DNS subjectAltNames name the holder; other SAN kinds do not', () => {
  assert.deepEqual(certificateNames({ subject: { CN: 'worker-1' } as never, subjectaltname: 'DNS:worker-1.example, IP Address:10.0.0.1, email:w@example.org, DNS:linux-02' }),
    ['worker-1', 'worker-1.example', 'linux-02']);
  assert.deepEqual(certificateNames({ subject: { CN: ['a', 'b'] } as never }), ['a', 'b']);
  assert.deepEqual(certificateNames({ subject: {} as never, subjectaltname: 'URI:spiffe://w' }), []);
  assert.deepEqual(certificateNames(undefined), []);
});

test('a quoted SAN value is one name, whatever commas it holds, and a malformed tail names nothing', () => {
  assert.deepEqual(subjectAltNames('DNS:"evil, DNS:admin", DNS:ok'), [{ kind: 'DNS', value: 'evil, DNS:admin' }, { kind: 'DNS', value: 'ok' }]);
  assert.deepEqual(subjectAltNames('DNS:"\\u0041"'), [{ kind: 'DNS', value: 'A' }]);
  assert.deepEqual(subjectAltNames('DNS:a, garbage without colon'), [{ kind: 'DNS', value: 'a' }]);
  assert.deepEqual(subjectAltNames(''), []);
});
