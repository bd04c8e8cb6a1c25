// What a hostile peer can make bbgate hold: the heap a 16 MiB Banana expression of the
// cheapest elements decodes to, and what 600,000 references sent in print calls leave held.
//
//   node --expose-gc dist/bench/hostile-memory.js
//
// Heap is process.memoryUsage().heapUsed after a full GC, before and after; the input is built
// before the first measurement, and the parser and what it delivered are kept alive until the second. Each case runs
// in a process of its own, so that one case's garbage cannot count in another's figure.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BananaParser } from '../src/pb/banana/parser.js';
import { DEFAULT_MAX_EXPRESSION_BYTES } from '../src/pb/banana/scanner.js';
import { BananaWriter, encodeSexp, type Sexp } from '../src/pb/banana/writer.js';
import { Broker } from '../src/pb/broker.js';
import { Referenceable } from '../src/pb/values/references.js';
import { memoryPair } from '../test/helpers/memory-duplex.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function heapAfterGc(): number {
  // Twice: one full GC can leave garbage of the step before for the next.
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

/** A list of lists of `element`, 640 Ki elements each (Banana's list limit), filling 16 MiB less a little. */
function flood(element: number[]): Buffer {
  // A list's header, as bbgate's own writer writes it.
  const listHeader = (n: number) => {
    const w = new BananaWriter(16);
    w.list(n);
    return w.take();
  };
  const count = Math.floor((DEFAULT_MAX_EXPRESSION_BYTES - 1024) / element.length);
  const perList = 640 * 1024;
  const lists = Math.ceil(count / perList);
  const parts = [listHeader(lists)];
  for (let left = count; left > 0; left -= perList) {
    const n = Math.min(perList, left);
    parts.push(listHeader(n), Buffer.alloc(n * element.length).fill(Buffer.from(element)));
  }
  return Buffer.concat(parts);
}

const ELEMENTS: [string, number[]][] = [
  ['empty lists', [0x80]],
  ['one-byte strings', [0x01, 0x82, 0x61]],
  ['small ints', [0x01, 0x81]],
  ['integral floats', [0x84, 0x40, 0, 0, 0, 0, 0, 0, 0]],
];

const only = process.argv[2];
if (only === undefined) {
  for (const name of [...ELEMENTS.map(([n]) => n), 'references']) {
    process.stdout.write(execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), name], { encoding: 'utf8' }));
  }
  process.exit(0);
}

for (const [name, element] of ELEMENTS.filter(([n]) => n === only)) {
  const bytes = flood(element);
  const before = heapAfterGc();
  // The expression is held, as a broker holds it while it handles the command.
  let held: Sexp | undefined;
  const parser = new BananaParser((expr) => (held = expr));
  let outcome = 'decoded';
  try {
    for (let i = 0; i < bytes.length; i += 65536) parser.feed(bytes.subarray(i, i + 65536));
  } catch (err) {
    outcome = `refused (${(err as { code?: string }).code})`;
  }
  const after = heapAfterGc();
  console.log(`16 MiB of ${name}: ${outcome}, heap +${mib(after - before)}`);
  void parser.bufferedBytes;
  void held;
}

if (only !== 'references') process.exit(0);

class Mind extends Referenceable {
  remote_print(): null {
    return null;
  }
}
const b = (s: string) => Buffer.from(s);
const [near, far] = memoryPair();
far.on('data', () => undefined);
const broker = new Broker(near, { role: 'client', root: new Mind() });
far.write(encodeSexp([b('pb'), b('none')]));
await broker.ready;
const before = heapAfterGc();
let luid = 1;
for (let call = 1; call <= 600; call++) {
  const refs: Sexp[] = Array.from({ length: 1000 }, () => [b('remote'), luid++]);
  far.write(encodeSexp([b('message'), call, b('root'), b('print'), 0, [b('tuple'), [b('list'), ...refs]], [b('dictionary')]], true));
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}
for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
const after = heapAfterGc();
console.log(`600 print calls of 1,000 references each: ${broker.remoteReferenceCount} held, heap +${mib(after - before)}`);
far.destroy();
