/**
 * The local stores' waitForChange (stores/local/folder-statuses.ts pollForChange): true at once
 * when UIDNEXT is already past the caller's mark, true as soon as the folder's UIDVALIDITY, UIDNEXT
 * or count changes, false when nothing changed before the time is up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollForChange } from '../../src/stores/local/folder-statuses.js';
import type { FolderStatus } from '../../src/stores/mail-store.js';

const status = (uidNext: number, exists: number, uidValidity = 1n): FolderStatus => ({ uidValidity, uidNext, exists });

test('already past the mark: true without waiting', async () => {
  const started = Date.now();
  assert.equal(await pollForChange(async () => status(11, 10), 5000, undefined, 10), true);
  assert.ok(Date.now() - started < 500);
});

test('a new message on the second look: true; nothing new in time: false', async () => {
  let reads = 0;
  assert.equal(await pollForChange(async () => (reads++ < 1 ? status(5, 4) : status(6, 5)), 5000, undefined, undefined), true);
  assert.equal(reads, 2);
  const started = Date.now();
  assert.equal(await pollForChange(async () => status(5, 4), 1200, undefined, 5), false);
  assert.ok(Date.now() - started >= 1100);
});

test('a folder recreated (other UIDVALIDITY) or a message removed counts as a change', async () => {
  let a = 0;
  assert.equal(await pollForChange(async () => (a++ < 1 ? status(5, 4, 1n) : status(5, 4, 2n)), 3000, undefined, undefined), true);
  let b = 0;
  assert.equal(await pollForChange(async () => (b++ < 1 ? status(5, 4) : status(5, 3)), 3000, undefined, undefined), true);
});

test('an abort ends the wait', async () => {
  await assert.rejects(pollForChange(async () => status(5, 4), 10_000, AbortSignal.timeout(200), undefined), { name: 'AbortError' });
});
