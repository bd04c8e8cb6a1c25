// The relay's allow-list: glob matching, source addresses in both families, the --allow flag,
// every configuration error, and a name built to make a backtracking matcher explode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BbgateError } from '../../src/errors.js';
import { AllowList, notAllowed, parseAllowRule, type AllowRule } from '../../src/relay/policy.js';

const ANYWHERE = '198.51.100.1';

function names(pattern: string, candidates: string[]): string[] {
  const list = new AllowList([{ pattern }]);
  return candidates.filter((name) => list.check(name, ANYWHERE).allowed);
}

function configError(rules: AllowRule[], message: string): void {
  assert.throws(
    () => new AllowList(rules),
    (err: unknown) => {
      assert.ok(err instanceof BbgateError, String(err));
      assert.equal(err.code, 'RELAY_CONFIG');
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('an exact name matches only itself, whole and case-sensitively', () => {
  assert.deepEqual(names('build-01', ['build-01', 'Build-01', 'build-011', 'xbuild-01', 'build-0', '']), ['build-01']);
});

test('* matches any run of characters, / included; ? exactly one', () => {
  assert.deepEqual(names('build-*', ['build-', 'build-01', 'build-a/b', 'build', 'xbuild-1']), ['build-', 'build-01', 'build-a/b']);
  assert.deepEqual(names('*-win-*', ['a-win-b', '-win-', 'a-win', 'winx']), ['a-win-b', '-win-']);
  assert.deepEqual(names('**', ['', 'x']), ['', 'x']);
  assert.deepEqual(names('w?', ['w1', 'w', 'w12', 'wé', 'w😀']), ['w1', 'wé', 'w😀']);
});

test('character classes: sets, ranges, negation, literal - at the edges', () => {
  assert.deepEqual(names('w[abc]', ['wa', 'wc', 'wd', 'wab', 'w']), ['wa', 'wc']);
  assert.deepEqual(names('w[0-9][0-9]', ['w01', 'w99', 'w1a', 'w1']), ['w01', 'w99']);
  assert.deepEqual(names('w[!0-9]', ['wa', 'w1', 'w!']), ['wa', 'w!']);
  assert.deepEqual(names('w[-a]', ['w-', 'wa', 'wb']), ['w-', 'wa']);
  assert.deepEqual(names('w[a-]', ['w-', 'wa', 'wb']), ['w-', 'wa']);
  assert.deepEqual(names('w[a-cx-z]', ['wb', 'wy', 'wd']), ['wb', 'wy']);
});

test('backslash makes the next character literal, inside classes too', () => {
  assert.deepEqual(names('w\\*', ['w*', 'wx']), ['w*']);
  assert.deepEqual(names('w\\?\\[x\\]', ['w?[x]', 'wa[x]']), ['w?[x]']);
  assert.deepEqual(names('w[\\]\\\\]', ['w]', 'w\\', 'wx']), ['w]', 'w\\']);
  assert.deepEqual(names('a\\b', ['ab', 'a\\b']), ['ab']);
});

test('a rule without addresses admits from anywhere and names the rule', () => {
  const list = new AllowList([{ pattern: 'build-*' }]);
  assert.deepEqual(list.check('build-1', '192.0.2.7'), { allowed: true, rule: 'build-*' });
  assert.deepEqual(list.check('build-1', '2001:db8::1'), { allowed: true, rule: 'build-*' });
  assert.deepEqual(list.check('other', '192.0.2.7'), {
    allowed: false,
    reason: 'not_listed',
    message: notAllowed('other'),
    detail: `worker "other" is not on this relay's allow-list`,
  });
});

test('IPv4 CIDRs and plain addresses', () => {
  const list = new AllowList([{ pattern: 'w', from: ['10.0.0.0/8', '192.0.2.7'] }]);
  assert.deepEqual(list.check('w', '10.255.0.1'), { allowed: true, rule: 'w@10.0.0.0/8,192.0.2.7' });
  assert.equal(list.check('w', '192.0.2.7').allowed, true);
  assert.deepEqual(list.check('w', '192.0.2.8'), {
    allowed: false,
    reason: 'source_address',
    message: notAllowed('w'),
    detail: 'worker "w" may only connect from 10.0.0.0/8 or 192.0.2.7, not from 192.0.2.8',
  });
  assert.equal(list.check('w', '11.0.0.1').allowed, false);
  assert.equal(list.check('w', '2001:db8::1').allowed, false);
});

test('IPv6 CIDRs and plain addresses, zones ignored', () => {
  const list = new AllowList([{ pattern: 'w', from: ['2001:db8:1::/48', '::1', 'fe80::/10'] }]);
  assert.equal(list.check('w', '2001:db8:1:ffff::2').allowed, true);
  assert.equal(list.check('w', '::1').allowed, true);
  assert.equal(list.check('w', 'fe80::1%eth0').allowed, true);
  assert.deepEqual(list.check('w', '2001:db8:2::1'), {
    allowed: false,
    reason: 'source_address',
    message: notAllowed('w'),
    detail: 'worker "w" may only connect from 2001:db8:1::/48 or ::1 or fe80::/10, not from 2001:db8:2::1',
  });
  assert.equal(list.check('w', '127.0.0.1').allowed, false);
});

test('IPv4-mapped peers (a dual-stack listener) match IPv4 rules and are reported as IPv4', () => {
  const list = new AllowList([{ pattern: 'w', from: ['10.0.0.0/8'] }]);
  assert.equal(list.check('w', '::ffff:10.1.2.3').allowed, true);
  assert.equal(list.check('w', '::FFFF:10.1.2.3').allowed, true);
  assert.deepEqual(list.check('w', '::ffff:192.0.2.7'), {
    allowed: false,
    reason: 'source_address',
    message: notAllowed('w'),
    detail: 'worker "w" may only connect from 10.0.0.0/8, not from 192.0.2.7',
  });
});

test('a name matching several rules is admitted if any of them admits its address', () => {
  const list = new AllowList([
    { pattern: 'build-*', from: ['10.0.0.0/8'] },
    { pattern: 'build-win-*', from: ['192.168.0.0/16', '10.0.0.0/8'] },
    { pattern: 'other' },
  ]);
  assert.deepEqual(list.check('build-win-1', '192.168.3.4'), { allowed: true, rule: 'build-win-*@192.168.0.0/16,10.0.0.0/8' });
  assert.deepEqual(list.check('build-win-1', '10.0.0.1'), { allowed: true, rule: 'build-*@10.0.0.0/8' });
  assert.deepEqual(list.check('build-win-1', '172.16.0.1'), {
    allowed: false,
    reason: 'source_address',
    message: notAllowed('build-win-1'),
    detail: 'worker "build-win-1" may only connect from 10.0.0.0/8 or 192.168.0.0/16, not from 172.16.0.1',
  });
});

test('a peer without a usable address is refused by rules that name addresses', () => {
  const list = new AllowList([{ pattern: 'w', from: ['0.0.0.0/0', '::/0'] }]);
  assert.equal(list.check('w', '1.2.3.4').allowed, true);
  assert.deepEqual(list.check('w', ''), {
    allowed: false,
    reason: 'source_address',
    message: notAllowed('w'),
    detail: 'worker "w" may only connect from 0.0.0.0/0 or ::/0, not from an unknown address',
  });
});

test('names in messages are quoted so control characters cannot forge log lines', () => {
  const denied = new AllowList([]).check('evil"\nrelay: admitted', ANYWHERE);
  assert.equal(denied.allowed, false);
  assert.equal(!denied.allowed && denied.message, `worker "evil\\"\\nrelay: admitted" is not allowed to log in through this relay`);
  assert.equal(!denied.allowed && denied.detail, `worker "evil\\"\\nrelay: admitted" is not on this relay's allow-list`);
});

test('the client is told the same for a name not listed and for a listed name from the wrong address', () => {
  const list = new AllowList([{ pattern: 'w', from: ['10.9.8.0/24'] }]);
  const wrongAddress = list.check('w', '192.0.2.7');
  const unlisted = new AllowList([{ pattern: 'x' }]).check('w', '192.0.2.7');
  assert.ok(!wrongAddress.allowed && !unlisted.allowed);
  assert.equal(wrongAddress.message, unlisted.message);
  assert.equal(wrongAddress.message, 'worker "w" is not allowed to log in through this relay');
  assert.doesNotMatch(wrongAddress.message, /10\.9\.8|192\.0\.2/);
  assert.match(wrongAddress.detail, /may only connect from 10\.9\.8\.0\/24, not from 192\.0\.2\.7/);
});

test('an empty list denies everyone', () => {
  assert.equal(new AllowList([]).check('w', ANYWHERE).allowed, false);
});

test('configuration errors name the rule and the problem', () => {
  configError([{ pattern: '' }], 'allow rule "": empty worker name pattern');
  configError([{ pattern: '', from: ['10.0.0.0/8'] }], 'allow rule "@10.0.0.0/8": empty worker name pattern');
  configError([{ pattern: 'build-[ab' }], 'allow rule "build-[ab": "[" at position 7 is never closed by "]" (write \\[ for a literal "[")');
  configError([{ pattern: 'w[]' }], 'allow rule "w[]": empty character class "[]" (write \\] for a literal "]")');
  configError([{ pattern: 'w[!]' }], 'allow rule "w[!]": empty character class "[!]" (write \\] for a literal "]")');
  configError([{ pattern: 'w[z-a]' }], 'allow rule "w[z-a]": character range z-a is backwards (did you mean a-z?)');
  configError([{ pattern: 'w\\' }], 'allow rule "w\\\\": pattern ends with a lone "\\"');
  configError([{ pattern: 'w[a\\' }], 'allow rule "w[a\\\\": pattern ends with a lone "\\"');
  configError([{ pattern: 'w', from: [] }], 'allow rule "w@": empty list of source addresses (leave it out to allow any address)');
  configError([{ pattern: 'w', from: ['10.0.0.0/8', ''] }], 'allow rule "w@10.0.0.0/8,": empty source address');
  configError([{ pattern: 'w', from: ['10.0.0.300'] }], 'allow rule "w@10.0.0.300": "10.0.0.300" is not an IPv4 or IPv6 address');
  configError([{ pattern: 'w', from: ['build.example/24'] }], 'allow rule "w@build.example/24": "build.example" is not an IPv4 or IPv6 address');
  configError([{ pattern: 'w', from: ['fe80::1%eth0'] }], 'allow rule "w@fe80::1%eth0": "fe80::1%eth0" is not an IPv4 or IPv6 address');
  configError([{ pattern: 'w', from: ['10.0.0.0/33'] }], 'allow rule "w@10.0.0.0/33": prefix length 33 is too long for an IPv4 address (0-32)');
  configError([{ pattern: 'w', from: ['::/129'] }], 'allow rule "w@::/129": prefix length 129 is too long for an IPv6 address (0-128)');
  configError([{ pattern: 'w', from: ['10.0.0.0/'] }], 'allow rule "w@10.0.0.0/": "" is not a prefix length (0-32)');
  configError([{ pattern: 'w', from: ['10.0.0.0/8/8'] }], 'allow rule "w@10.0.0.0/8/8": "8/8" is not a prefix length (0-32)');
  configError([{ pattern: 'w', from: ['::/-1'] }], 'allow rule "w@::/-1": "-1" is not a prefix length (0-128)');
  // One bad rule spoils the list, wherever it is.
  configError([{ pattern: 'ok' }, { pattern: 'w', from: ['x'] }], 'allow rule "w@x": "x" is not an IPv4 or IPv6 address');
});

test('host bits under the prefix are ignored', () => {
  const list = new AllowList([{ pattern: 'w', from: ['10.1.2.3/8'] }]);
  assert.equal(list.check('w', '10.200.0.1').allowed, true);
});

test('parseAllowRule: the --allow flag', () => {
  assert.deepEqual(parseAllowRule('build-*'), { pattern: 'build-*' });
  assert.deepEqual(parseAllowRule('build-*@10.0.0.0/8'), { pattern: 'build-*', from: ['10.0.0.0/8'] });
  assert.deepEqual(parseAllowRule('w@10.0.0.0/8, 2001:db8::/32,192.0.2.7'), { pattern: 'w', from: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] });
  assert.deepEqual(parseAllowRule('ci\\@lab@::1'), { pattern: 'ci\\@lab', from: ['::1'] });
  assert.deepEqual(parseAllowRule('w\\\\@::1'), { pattern: 'w\\\\', from: ['::1'] });
  assert.deepEqual(parseAllowRule('w@'), { pattern: 'w', from: [''] });
  const list = new AllowList([parseAllowRule('ci\\@lab@::1')]);
  assert.equal(list.check('ci@lab', '::1').allowed, true);
  configError([parseAllowRule('w@')], 'allow rule "w@": empty source address');
});

test('adversarial names and patterns cannot make matching blow up', () => {
  // A backtracking matcher tries every way to split the name between the stars: with 12 stars
  // and 100 000 characters, more combinations than it could finish. Bounded by length × pattern.
  const list = new AllowList([{ pattern: '*a*a*a*a*a*a*a*a*a*a*a*a*b' }, { pattern: '*?*?*?*?*?*?*?*?*?*?*?*?!' }]);
  const name = 'a'.repeat(100_000);
  assert.equal(list.check(name, ANYWHERE).allowed, false);
  assert.equal(list.check(name + 'b', ANYWHERE).allowed, true);
  assert.equal(list.check(name + '!', ANYWHERE).allowed, true);
});
