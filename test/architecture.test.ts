// The shape of src/ as the README's architecture section draws it, checked on every run so that it
// stays true: folders form layers with no cycle between them at any depth, and the few rules that
// keep a layer's knowledge in its own room hold. It reads the sources' import lines as text.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// dist/test/architecture.test.js → the repository's src/ (the sources, not the build).
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

interface Import {
  /** Both relative to src/, with '/' and without the extension: 'worker/run'. */
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const moduleName = (path: string) => relative(SRC, path).split(sep).join('/').replace(/\.(ts|js)$/, '');

function readImports(): Import[] {
  // Static imports and re-exports (`import … from`, `export … from`, bare `import '…'`) and
  // dynamic `import('…')` of relative paths: bbgate's own modules.
  const specifier = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  return sourceFiles(SRC).flatMap((path) => {
    const text = readFileSync(path, 'utf8');
    return [...text.matchAll(specifier)].map((m) => ({ from: moduleName(path), to: moduleName(normalize(join(dirname(path), m[1]!))) }));
  });
}

const folderOf = (module: string) => module.split('/').slice(0, -1).join('/') || '.';
const topOf = (module: string) => (module.includes('/') ? module.split('/')[0]! : '.');

/** A cycle in the graph as a path that starts and ends at the same node, or undefined. */
function findCycle(edges: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of edges.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The layers of the README, bottom up: a folder imports only folders on a lower line. */
const LAYERS = [['.'], ['address', 'pb', 'tls'], ['transport', 'proxy'], ['route', 'msgpack'], ['worker', 'relay'], ['probe'], ['cli', 'api']];
const layerOf = (top: string) => LAYERS.findIndex((layer) => layer.includes(top));

describe('architecture of src/', () => {
  const imports = readImports();

  it('reads the imports of every source file', () => {
    assert.ok(imports.length > 300, `only ${imports.length} imports found: the reader has gone wrong`);
    for (const { from, to } of imports) assert.ok(sourceFiles(SRC).some((p) => moduleName(p) === to), `${from} imports ${to}, which is not a source file`);
  });

  it('has no cycle between folders at any depth (a folder is its own files)', () => {
    const edges = new Map<string, Set<string>>();
    for (const { from, to } of imports) {
      const [a, b] = [folderOf(from), folderOf(to)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
    assert.equal(findCycle(edges)?.join(' → '), undefined);
  });

  it('puts every top-level folder on a layer, and each imports only lower layers', () => {
    const tops = new Set(sourceFiles(SRC).map((p) => topOf(moduleName(p))));
    for (const top of tops) assert.notEqual(layerOf(top), -1, `src/${top} is on no layer: add it to LAYERS and to the README`);
    const upward = imports.filter(({ from, to }) => topOf(from) !== topOf(to) && layerOf(topOf(to)) >= layerOf(topOf(from)));
    assert.deepEqual(upward.map(({ from, to }) => `${from} → ${to}`), []);
  });

  it('address/ is pure: it imports nothing of bbgate but the error classes', () => {
    const outside = imports.filter(({ from, to }) => topOf(from) === 'address' && topOf(to) !== 'address' && to !== 'errors');
    assert.deepEqual(outside.map(({ from, to }) => `${from} → ${to}`), []);
  });

  it('other folders reach PB only through its front door, pb/index.ts', () => {
    const past = imports.filter(({ from, to }) => topOf(from) !== 'pb' && topOf(to) === 'pb' && to !== 'pb/index');
    assert.deepEqual(past.map(({ from, to }) => `${from} → ${to}`), []);
  });

  it('worker/process knows nothing of PB, and worker/python stands below process and commands', () => {
    const pbInProcess = imports.filter(({ from, to }) => from.startsWith('worker/process/') && topOf(to) === 'pb');
    assert.deepEqual(pbInProcess.map(({ from, to }) => `${from} → ${to}`), []);
    const pythonUp = imports.filter(({ from, to }) => from.startsWith('worker/python/') && to.startsWith('worker/') && !to.startsWith('worker/python/'));
    assert.deepEqual(pythonUp.map(({ from, to }) => `${from} → ${to}`), []);
  });
});
