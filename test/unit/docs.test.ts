/**
 * The documentation keeps up with the code: every error code has its entry in docs/errors.md,
 * and every command-line option is in the README's option table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/core/errors.js';

const read = (rel: string) => readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');

test('every error code is documented with symptom, cause and resolution', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.values(ERROR_CODES)) {
    const at = doc.indexOf(`## ${code}\n`);
    assert.ok(at >= 0, `${code} has a section in docs/errors.md`);
    const section = doc.slice(at, doc.indexOf('\n## ', at + 1) >>> 0 || undefined);
    for (const part of ['**Symptom:**', '**Cause:**', '**Resolution:**']) assert.ok(section.includes(part), `${code}: ${part}`);
    assert.ok(doc.includes(`[${code}](#${code.toLowerCase()})`), `${code} is in the table`);
  }
});

test('every command-line option is in the README', () => {
  // Options are declared in main.ts (batch, worker, console) and options.ts (the shared groups).
  const cli = readdirSync(new URL('../../src/cli/', import.meta.url)).filter((f) => f.endsWith('.ts')).map((f) => read(`src/cli/${f}`)).join('\n');
  const readme = read('README.md');
  const options = [...cli.matchAll(/(?:option|requiredOption|new Option)\('(--[a-z-]+)/g)].map((m) => m[1]!);
  assert.ok(options.length > 20, `found ${options.length} options`);
  for (const option of options) assert.ok(readme.includes(`\`${option}`) || readme.includes(`, ${option}`), `${option} is in the README`);
});
