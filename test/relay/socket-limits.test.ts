// --max-connections and --max-per-source without sockets: each limit reached and freed, sources
// counted apart, and a slot given back once however often its socket's close paths release it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SocketLimits } from '../../src/relay/socket-limits.js';

test('--max-connections: raw connections count until released, and one released twice frees one place', () => {
  const limits = new SocketLimits(2, 10);
  const a = limits.enter();
  const b = limits.enter();
  assert.ok(a && b);
  assert.equal(limits.enter(), undefined);
  assert.equal(limits.open, 2);
  a.release();
  a.release();
  assert.equal(limits.open, 1);
  const c = limits.enter();
  assert.ok(c);
  assert.equal(limits.enter(), undefined);
  b.release();
  c.release();
  assert.equal(limits.open, 0);
});

test('--max-per-source: each address has its own count, freed when its connections close', () => {
  const limits = new SocketLimits(100, 2);
  const first = limits.enterFrom('192.0.2.1');
  const second = limits.enterFrom('192.0.2.1');
  assert.ok(first && second);
  assert.equal(limits.enterFrom('192.0.2.1'), undefined);
  assert.equal(limits.openFrom('192.0.2.1'), 2);
  assert.ok(limits.enterFrom('2001:db8::1'), 'another address is not held back');
  first.release();
  first.release();
  assert.equal(limits.openFrom('192.0.2.1'), 1);
  assert.ok(limits.enterFrom('192.0.2.1'));
  assert.equal(limits.enterFrom('192.0.2.1'), undefined);
});

test('the two limits count apart: a source refused does not use up a connection place', () => {
  const limits = new SocketLimits(3, 1);
  limits.enter();
  limits.enterFrom('192.0.2.1');
  limits.enter();
  assert.equal(limits.enterFrom('192.0.2.1'), undefined);
  assert.equal(limits.open, 2);
  assert.equal(limits.openFrom('192.0.2.9'), 0);
});
