// The one reader of command arguments, and Python truthiness checked against real Python.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { PbFailure } from '../../src/pb/values/failure.js';
import { FrozenSet, PyFloat, Tuple, type PbValue } from '../../src/pb/values/values.js';
import { CommandArgs } from '../../src/worker/commands/command-args.js';
import { pyTruthy } from '../../src/worker/python/truth.js';
import { PYTHON } from '../helpers/python.js';

/** Each value with its Python spelling. */
const VALUES: [PbValue, string][] = [
  [null, 'None'],
  [false, 'False'],
  [true, 'True'],
  [0, '0'],
  [-0, '-0'],
  [7, '7'],
  [0n, '0'],
  [2n ** 70n, '2**70'],
  [new PyFloat(0), '0.0'],
  [new PyFloat(-0), '-0.0'],
  [0.5, '0.5'],
  ['', "''"],
  ['0', "'0'"],
  [Buffer.alloc(0), "b''"],
  [Buffer.from('a'), "b'a'"],
  [[], '[]'],
  [[0], '[0]'],
  [Tuple.from([]), '()'],
  [Tuple.from([0]), '(0,)'],
  [new Map(), '{}'],
  [new Map([['a', 0]]), "{'a': 0}"],
  [new Set(), 'set()'],
  [new Set([0]), '{0}'],
  [new FrozenSet(), 'frozenset()'],
];

describe('Python truthiness', () => {
  it('is bool() of the value, as Python computes it (an empty dict or set is false)', () => {
    const script = `import json, sys\nprint(json.dumps([bool(eval(s)) for s in json.loads(sys.argv[1])]))`;
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', script, JSON.stringify(VALUES.map(([, py]) => py))], { encoding: 'utf8' })) as boolean[];
    assert.deepEqual(VALUES.map(([value]) => pyTruthy(value)), expected);
  });

  it('is what CommandArgs.flag answers, absent and None alike falling back as dict.get does', () => {
    for (const [value, py] of VALUES) assert.equal(new CommandArgs(new Map([['f', value]])).flag('f', true), pyTruthy(value), py);
    assert.equal(new CommandArgs(new Map()).flag('f', true), true, 'absent: the fallback');
    assert.equal(new CommandArgs(new Map([['f', null]])).flag('f', true), false, 'None: not the fallback');
  });
});

describe('CommandArgs', () => {
  const args = (entries: Record<string, PbValue>) => new CommandArgs(new Map(Object.entries(entries)));

  it('refuses every unusable value with one error: a TypeError failure, code COMMAND_ARGS', () => {
    const refusals: [string, () => unknown, string][] = [
      ['text', () => args({ dir: 3 }).text('dir'), "'dir' must be a string, not 3"],
      ['text of None', () => args({ dir: null }).text('dir'), "'dir' must be a string, not None"],
      ['textList', () => args({ dir: ['a', 1] }).textList('dir'), "'dir' must be a string or a list of strings, not ['a', 1]"],
      ['number', () => args({ blocksize: true }).number('blocksize'), "'blocksize' must be a number, not True"],
      ['seconds', () => args({ timeout: 'soon' }).seconds('timeout'), "'timeout' must be a number of seconds, not 'soon'"],
      ['reference', () => args({ writer: null }).reference('writer'), "'writer' must be a remote reference, not None"],
      ['command', () => args({ command: 5 }).command(), "'command' must be a string or a list, not 5"],
      ['env', () => args({ env: new Map([['X', 5]]) }).env(), "'env' values must be strings or lists; key 'X' is incorrect"],
      ['logfiles', () => args({ logfiles: new Map([['log', new Map()]]) }).logfiles(), "logfile 'log' must be a path or a dict with a 'filename'"],
      ['initial_stdin', () => args({ initial_stdin: 1 }).initialStdin(), "'initial_stdin' must be a string, not 1"],
    ];
    for (const [what, read, message] of refusals) {
      assert.throws(read, (err: unknown) => {
        assert.ok(err instanceof PbFailure, what);
        assert.equal(err.type, 'builtins.TypeError', what);
        assert.equal(err.code, 'COMMAND_ARGS', what);
        assert.equal(err.value, message, what);
        return true;
      });
    }
  });

  it('reads values as buildbot-worker does: dict.get, bytes as UTF-8, floats kept for the headers', () => {
    const a = args({ dir: Buffer.from('b/ü'), list: [Buffer.from('x'), 'y'], timeout: new PyFloat(600), maxTime: null, big: 5n, flag: true });
    assert.equal(a.text('dir'), 'b/ü');
    assert.deepEqual(a.textList('list'), ['x', 'y']);
    assert.deepEqual(a.textList('dir'), ['b/ü']);
    assert.ok(a.seconds('timeout') instanceof PyFloat);
    assert.equal(a.seconds('maxTime', 120), null, 'None is not the fallback');
    assert.equal(a.seconds('absent', 120), 120);
    assert.equal(a.seconds('big'), 5);
    assert.equal(a.seconds('flag'), 1);
    assert.equal(a.optionalText('maxTime'), undefined);
    assert.equal(a.optionalNumber('maxTime'), undefined);
    assert.equal(a.number('big'), 5);
    assert.deepEqual(args({ command: ['echo', Tuple.from(['obfuscated', 'secret', '***'])] }).command(), ['echo', { real: 'secret', fake: '***' }]);
  });
});
