import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freeBuffer } from '../../src/core/release-memory.js';
import { PieceBuffer } from '../../src/stores/imap/piece-buffer.js';

test('freeBuffer: a Buffer that owns its memory is emptied at once', () => {
  const body = Buffer.alloc(1024 * 1024, 1);
  freeBuffer(body);
  assert.equal(body.length, 0);
  assert.equal(body.buffer.byteLength, 0);
});

test('freeBuffer + collectYoung: the memory of 64 MiB of promoted bodies is back within two seconds (node --expose-gc, as the CLI runs)', () => {
  // In a child started as the CLI is (gc exposed, 2 MiB semi-space), so that the test runner's own
  // heap and load do not decide when a collection happens.
  const script = `
    import { collectYoung, freeBuffer } from ${JSON.stringify(new URL('../../src/core/release-memory.ts', import.meta.url).href)};
    const MiB = 1024 * 1024;
    const bodies = Array.from({ length: 16 }, () => Buffer.alloc(4 * MiB, 1));
    gc({ type: 'minor' }); gc({ type: 'minor' }); // promoted, as a body that lived through a fetch and an append
    const held = process.memoryUsage().arrayBuffers;
    for (const b of bodies) freeBuffer(b);
    const t0 = Date.now();
    let freed = 0;
    while (Date.now() - t0 < 2000 && freed < 60 * MiB) {
      collectYoung();
      await new Promise((r) => setTimeout(r, 20));
      freed = held - process.memoryUsage().arrayBuffers;
    }
    console.log(JSON.stringify({ freed: freed / MiB }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=2', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const { freed } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { freed: number };
  assert.ok(freed >= 60, `expected at least 60 MiB back, got ${freed.toFixed(1)} MiB`);
});

test('freeBuffer: views into shared memory are left alone', () => {
  const small = Buffer.from('a small body, pooled'); // Buffer.from of a short string is a view into the shared pool
  const parent = Buffer.alloc(64 * 1024, 2);
  const head = parent.subarray(0, 1024);
  const tail = parent.subarray(1024);
  for (const b of [small, head, tail]) freeBuffer(b);
  assert.equal(small.toString(), 'a small body, pooled');
  assert.equal(head.length, 1024);
  assert.equal(tail.length, 63 * 1024);
  assert.equal(parent.length, 64 * 1024);
  assert.equal(parent[70_000 - 10_000], 2);
});

test('PieceBuffer: the bytes survive freeing the pieces they were copied from and a growth past the listed size', () => {
  const b = new PieceBuffer(8, 64);
  const pieces = ['abcdef', 'ghijkl', 'mnop'].map((s) => Buffer.concat([Buffer.from(s), Buffer.alloc(0)]));
  for (const p of pieces) {
    assert.equal(b.push(p), true);
    freeBuffer(p);
  }
  assert.equal(b.result().toString(), 'abcdefghijklmnop');
});
