/**
 * No import circles in src/state/: every relative import (type-only and dynamic ones included)
 * of every module under src/ is followed, and no cycle may pass through a state module.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? modules(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
    out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return out;
}

test('src/state/ modules form no import circle', () => {
  const graph = new Map(modules(SRC).map((f) => [f, importsOf(f)]));
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]) => {
    const at = trail.indexOf(f);
    if (at >= 0) {
      const cycle = trail.slice(at).concat(f);
      if (cycle.some((c) => c.includes(`${path.sep}state${path.sep}`))) cycles.push(cycle.map((c) => path.relative(SRC, c)).join(' -> '));
      return;
    }
    if (trail.length > 40) return;
    for (const next of graph.get(f) ?? []) visit(next, [...trail, f]);
  };
  for (const f of graph.keys()) if (f.includes(`${path.sep}state${path.sep}`)) visit(f, []);
  assert.deepEqual([...new Set(cycles)], []);
});
