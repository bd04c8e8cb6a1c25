// The Python spellings in shell headers (repr of str, bytes and float; shell quoting), checked against real Python.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { decodeSexps } from '../../src/pb/banana/parser.js';
import { BananaWriter } from '../../src/pb/banana/writer.js';
import { unjelly } from '../../src/pb/jelly/decode.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { PyFloat, Tuple, tuple } from '../../src/pb/values/values.js';
import { MAX_REPR_CHARS, pyRepr, REPR_CUT, reprBytes, reprFloat, reprText } from '../../src/worker/python/repr.js';
import { shellQuote } from '../../src/worker/python/shlex.js';
import { PYTHON } from '../helpers/python.js';

const TEXTS = ["it's", 'a"b', `both ' "`, 'tab\there\r\n', '\x00\x1b\x7f\x85\xa0é\u00ad\u200b\u2028😀\u{e0001}', '\\', '', 'plain', 'a b', '-x=1,2:3@%+./', 'ü', '$HOME', '\ud800'];
const FLOATS = [1.5, 0.1, 1e-4, 1e-5, 1.234e-7, 1e15, 1e16, 123456789012345678, 2.5e300, -0.00012, 1 / 3, 5e-324, 600, -0, Infinity, NaN];

const PYTHON_SCRIPT = `
import json, sys, shlex
inp = json.loads(sys.argv[1])
texts = [t.encode('utf-16', 'surrogatepass').decode('utf-16', 'surrogatepass') for t in inp['texts']]
floats = [float(f) for f in inp['floats']]
print(json.dumps({
    'text': [repr(t) for t in texts],
    'bytes': [repr(t.encode('utf-8', 'surrogatepass')) for t in texts],
    'quote': [('""' if not t else shlex.quote(t)) for t in texts],
    'float': [repr(f) for f in floats],
}))
`;

describe('python repr and shlex.quote', () => {
  const python = () => {
    const input = JSON.stringify({ texts: TEXTS, floats: FLOATS.map((f) => (Number.isFinite(f) ? (Object.is(f, -0) ? '-0.0' : String(f)) : String(f).toLowerCase())) });
    return JSON.parse(execFileSync(PYTHON, ['-c', PYTHON_SCRIPT, input], { encoding: 'utf8' })) as Record<string, string[]>;
  };

  it('spells str, bytes and float reprs and shell quoting as Python does', () => {
    const expected = python();
    const lone = TEXTS.length - 1; // a lone surrogate has no UTF-8 form in JavaScript; bytes are not compared for it
    assert.deepEqual(TEXTS.map(reprText), expected.text);
    assert.deepEqual(TEXTS.slice(0, lone).map((t) => reprBytes(Buffer.from(t, 'utf8'))), expected.bytes!.slice(0, lone));
    assert.deepEqual(TEXTS.map(shellQuote), expected.quote);
    assert.deepEqual(FLOATS.map(reprFloat), expected.float);
  });

  it('spells containers as Python does', () => {
    const value = new Map<unknown, unknown>([
      ['a', [1, new PyFloat(2), 2.5, null, true, tuple('x'), tuple(1, 'y')]],
      ['b', { filename: 'f.log', follow: false }],
      [3n, Buffer.from("q'")],
    ]);
    assert.equal(pyRepr(value), `{'a': [1, 2.0, 2.5, None, True, ('x',), (1, 'y')], 'b': {'filename': 'f.log', 'follow': False}, 3: b"q'"}`);
  });

  it('shows cyclic containers as Python does, after a trip through jelly as a master would send them', () => {
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', CYCLES_SCRIPT], { encoding: 'utf8' })) as string[];
    const selfList: unknown[] = [];
    selfList.push(selfList);
    const selfDict = new Map<string, unknown>();
    selfDict.set('a', selfDict);
    const inner: unknown[] = [];
    const outer = Tuple.from([inner]);
    inner.push(outer);
    const viaList = new Map<string, unknown>([['k', [1]]]);
    (viaList.get('k') as unknown[]).push(viaList);
    const shared = [1];
    const reprs = [selfList, selfDict, outer, viaList, [shared, shared, tuple(shared)], chain(10)].map((v) => pyRepr(overTheWire(v)));
    assert.deepEqual(reprs, expected);
  });

  it('cuts its output at MAX_REPR_CHARS: a few hundred bytes of shared references cannot build a giant string', () => {
    const bytes = jellied(chain(40));
    assert.ok(bytes.length < 2000, `the chain is ${bytes.length} bytes`);
    // Uncut it would be 2^40 copies of the leaf (Python builds it all: about 16 TB of text).
    const text = pyRepr(unjelly(decodeSexps(bytes)[0]!));
    assert.equal(text.length, MAX_REPR_CHARS + REPR_CUT.length);
    assert.ok(text.endsWith(REPR_CUT));
    assert.ok(text.startsWith(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['xxxxxxxx'], ['xxxxxxxx']], [['xxxxxxxx'], ['xxxxxxxx']]], `));
    // Short values are not touched.
    assert.equal(pyRepr(chain(2)), "[[['xxxxxxxx'], ['xxxxxxxx']], [['xxxxxxxx'], ['xxxxxxxx']]]");
  });
});

const CYCLES_SCRIPT = `
import json
self_list = []; self_list.append(self_list)
self_dict = {}; self_dict['a'] = self_dict
inner = []; outer = (inner,); inner.append(outer)
via_list = {'k': [1]}; via_list['k'].append(via_list)
shared = [1]
node = ['xxxxxxxx']
for _ in range(10): node = [node, node]
print(json.dumps([repr(v) for v in [self_list, self_dict, outer, via_list, [shared, shared, (shared,)], node]]))
`;

/** Lists that each hold the previous one twice: linear on the wire through jelly's references, exponential as a tree. */
function chain(levels: number): unknown[] {
  let node: unknown[] = ['xxxxxxxx'];
  for (let i = 0; i < levels; i++) node = [node, node];
  return node;
}

function jellied(value: unknown): Buffer {
  const w = new BananaWriter();
  jelly(w, value);
  return w.take();
}

function overTheWire(value: unknown): unknown {
  return unjelly(decodeSexps(jellied(value))[0]!);
}
