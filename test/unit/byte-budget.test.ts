import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners, setMaxListeners } from 'node:events';
import { ByteBudget } from '../../src/copy/byte-budget.js';

test('holds at most its capacity, serves waiters in order, lets an oversized request go alone', async () => {
  const b = new ByteBudget(10);
  const order: string[] = [];
  assert.equal(await b.acquire(6), 6);
  const big = b.acquire(50).then((n) => order.push(`big:${n}`)); // clamped to 10: waits for all
  const small = b.acquire(1).then(() => order.push('small')); // behind big: no overtaking
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  b.release(6);
  await big;
  assert.deepEqual(order, ['big:10']);
  b.release(10);
  await small;
  assert.deepEqual(order, ['big:10', 'small']);
});

test('waiting leaves no abort listeners behind; an abort rejects and frees the place', async () => {
  const b = new ByteBudget(4);
  const ac = new AbortController();
  setMaxListeners(30, ac.signal); // 20 waiters on purpose: no leak warning for this test
  await b.acquire(4, ac.signal);
  const waits = Array.from({ length: 20 }, () => b.acquire(1, ac.signal));
  assert.equal(getEventListeners(ac.signal, 'abort').length, 20);
  for (let i = 0; i < 5; i++) b.release(4); // 4 waiters of 1 byte served per release
  await Promise.all(waits);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  const aborted = new AbortController();
  const pending = b.acquire(4, aborted.signal);
  aborted.abort(new Error('stop'));
  await assert.rejects(pending, /stop/);
});
