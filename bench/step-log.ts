// A deterministic build log, as a C/C++ build prints it, for the benches that need step output.
import { int, pick, type Rng } from '../test/helpers/random-values.js';

const FILES = ['core/buffer', 'net/socket', 'util/strings', 'drivers/e1000_main', 'fs/ext4/inode', 'crypto/sha256', 'parser/lexer', 'tests/test_http'];
const IDENTS = ['len', 'ctx', 'buf', 'flags', 'ret', 'node', 'priv', 'skb', 'offset', 'state'];

/** Lines like those a C/C++ build prints (GCC quotes with ‘’ in a UTF-8 locale). */
const LINE_MAKERS: ((r: Rng) => string)[] = [
  (r) => `gcc -O2 -g -Wall -Wextra -fPIC -Iinclude -I/usr/include/openssl -c src/${pick(r, FILES)}.c -o build/${pick(r, FILES)}.o`,
  (r) => `src/${pick(r, FILES)}.c:${1 + int(r, 3000)}:${1 + int(r, 80)}: warning: unused variable ‘${pick(r, IDENTS)}’ [-Wunused-variable]`,
  (r) => `[ ${String(int(r, 101)).padStart(3)}%] Building CXX object src/CMakeFiles/core.dir/${pick(r, FILES)}.cpp.o`,
  (r) => `  CC [M]  ${pick(r, FILES)}.o`,
  (r) => `In file included from include/${pick(r, FILES)}.h:${1 + int(r, 400)},`,
  (r) => ` ${String(1 + int(r, 3000)).padStart(4)} |     return ${pick(r, IDENTS)}(${pick(r, IDENTS)}, ${int(r, 4096)});`,
  () => `      |            ^~~~~~~~~~~~~~~~~~`,
  (r) => `PASS: ${pick(r, FILES)} (${int(r, 5000)} ms)`,
];

/** One line of build output, without its "\n". */
export function logLine(r: Rng): string {
  return pick(r, LINE_MAKERS)(r);
}

/** `length` characters of whole lines, the last one cut wherever the length ends. */
export function logText(r: Rng, length: number): string {
  let s = '';
  while (s.length < length) s += logLine(r) + '\n';
  return s.slice(0, length);
}
