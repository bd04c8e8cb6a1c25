// Assertions shared by the proxy tests.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { TunnelAuth } from '../../src/proxy/index.js';

/**
 * Awaits a rejection with this code and a message matching `re`, and checks
 * that no secret shows anywhere in the error as it would be logged: message,
 * stack, properties and the whole cause chain.
 */
export async function rejectsWith(promise: Promise<unknown>, code: string, re: RegExp, secrets: string[] = []): Promise<Error> {
  const err = await promise.then(
    (value) => assert.fail(`expected ${code}, got ${inspect(value, { depth: 0 })}`),
    (e: unknown) => e as Error & { code?: string },
  );
  assert.equal(err.code, code, inspect(err));
  assert.match(err.message, re);
  assertNoSecrets(inspect(err, { depth: 10 }), secrets);
  return err;
}

export function assertNoSecrets(text: string, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `secret "${secret}" leaked into:\n${text}`);
}

/** The forms a credential could leak in: as given, URL-encoded, and in a Basic token. */
export function secretForms(username: string, password: string): string[] {
  return [password, encodeURIComponent(password), Buffer.from(`${username}:${password}`).toString('base64')];
}

/** A proxy offering NTLM and Basic was passed with NTLM: its three legs, all on the first connection. */
export function assertNtlmOverBasic(auth: TunnelAuth): void {
  assert.equal(auth.scheme, 'NTLM');
  assert.deepEqual(auth.offered, ['NTLM', 'Basic']);
  assert.deepEqual(auth.legs.map((l) => [l.sent, l.answer, l.reconnected]), [
    ['CONNECT', '407 NTLM, Basic', false],
    ['NTLM negotiate', '407 NTLM challenge', false],
    ['NTLM authenticate', '200', false],
  ]);
}
