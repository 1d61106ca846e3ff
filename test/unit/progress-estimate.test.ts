/**
 * What the progress line rests on: the survey's estimates per folder (plan/work-estimate.ts),
 * the tally that replaces them with each folder's exact plan (copy/progress-tally.ts), and how
 * totals and the ETA are shown (exact, ~estimated, N+ lower bound, -- unknown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateWork } from '../../src/plan/work-estimate.js';
import { ProgressTally } from '../../src/copy/progress-tally.js';
import { BatchProgressView, etaText, shownTotal } from '../../src/cli/progress.js';

const marks = { sourceUidValidity: 7n, sourceUidNext: 101, sourceCount: 100, sourceBytes: 100_000, sourceModseq: undefined, destUidValidity: 1n, destUidNext: 101, destCount: 100 };

test('a folder the ledger never saw counts in full; an unchanged one counts nothing; new mail counts what arrived', () => {
  assert.deepEqual(estimateWork({ uidValidity: 7n, uidNext: 101, exists: 100, bytes: 100_000 }, undefined), { messages: 100, bytes: 100_000, toCopy: 100, toCopyBytes: 100_000 });
  assert.deepEqual(estimateWork({ uidValidity: 7n, uidNext: 101, exists: 100, bytes: 100_000 }, marks), { messages: 100, bytes: 100_000, toCopy: 0, toCopyBytes: 0 });
  // Five arrived: their bytes from STATUS=SIZE when the store says, else from the ledger's average size.
  assert.deepEqual(estimateWork({ uidValidity: 7n, uidNext: 106, exists: 105, bytes: 106_000 }, marks), { messages: 105, bytes: 106_000, toCopy: 5, toCopyBytes: 6_000 });
  assert.deepEqual(estimateWork({ uidValidity: 7n, uidNext: 106, exists: 105 }, marks), { messages: 105, bytes: undefined, toCopy: 5, toCopyBytes: 5_000 });
  // Another UIDVALIDITY: the marks say nothing; in full.
  assert.equal(estimateWork({ uidValidity: 8n, uidNext: 106, exists: 105 }, marks)!.toCopy, 105);
  assert.equal(estimateWork(undefined, marks), undefined);
});

test('the tally: estimates first, then each folder exact; unknown folders make lower bounds until listed', () => {
  const tally = new ProgressTally([{ messages: 10, bytes: 1000, toCopy: 10, toCopyBytes: 1000 }, undefined, null]);
  const c = tally.counters;
  assert.deepEqual([c.toCopy, c.toCopyBytes, c.estimated, c.unknown, c.bytesUnknown, c.sourceMessages], [10, 1000, 1, 1, 1, 10]);
  assert.equal(shownTotal(c.toCopy, c.estimated, c.unknown), '10+');
  tally.planned(1, { toCopy: 4, toCopyBytes: 400, present: 2, messages: 6, bytes: 600 });
  assert.deepEqual([c.toCopy, c.toCopyBytes, c.alreadyPresent, c.estimated, c.unknown, c.bytesUnknown, c.sourceMessages], [14, 1400, 2, 1, 0, 0, 16]);
  assert.equal(shownTotal(c.toCopy, c.estimated, c.unknown), '~14');
  // Found at the destination already: the estimate of 10 becomes 3 to copy.
  tally.planned(0, { toCopy: 3, toCopyBytes: 300, present: 7, messages: 10, bytes: 1000 });
  assert.deepEqual([c.toCopy, c.toCopyBytes, c.alreadyPresent, c.estimated], [7, 700, 9, 0]);
  assert.equal(shownTotal(c.toCopy, c.estimated, c.unknown), '7');
  // Planned again after a lost connection: replaced, not added.
  tally.planned(0, { toCopy: 3, toCopyBytes: 300, present: 7, messages: 10, bytes: 1000 });
  assert.equal(c.toCopy, 7);
  tally.ended(0);
  assert.equal(c.toCopy, 7, 'a folder that had a plan keeps it');
});

test('a folder that ends without a plan takes its estimate out', () => {
  const tally = new ProgressTally([{ messages: 10, bytes: 1000, toCopy: 10, toCopyBytes: 1000 }, { messages: 5, bytes: 500, toCopy: 5, toCopyBytes: 500 }]);
  tally.ended(1);
  assert.deepEqual([tally.counters.toCopy, tally.counters.estimated], [10, 1]);
});

test('ETA: by bytes when every size is known, by messages otherwise, -- while totals are lower bounds', () => {
  const base = { foldersTotal: 2, foldersDone: 0, toCopy: 100, toCopyBytes: 10_000, copied: 50, copiedBytes: 5_000, alreadyPresent: 0, skipped: 0, sourceMessages: 100, sourceBytes: 10_000, estimated: 0, unknown: 0, bytesUnknown: 0 };
  assert.equal(etaText(base, { bytes: 100, messages: 1 }), '50s');
  assert.equal(etaText({ ...base, estimated: 1 }, { bytes: 100, messages: 1 }), '~50s');
  assert.equal(etaText({ ...base, bytesUnknown: 1 }, { bytes: 100, messages: 5 }), '10s');
  assert.equal(etaText({ ...base, unknown: 1 }, { bytes: 100, messages: 5 }), '--');
  assert.equal(etaText(base, { bytes: 0, messages: 0 }), '--');
});

test('the batch line: the total counts waiting mailboxes at the average of the started ones', () => {
  const out = { write: () => true, columns: 200 } as unknown as NodeJS.WriteStream;
  const view = new BatchProgressView(out, 4, false);
  assert.equal(view.totals().work, undefined);
  view.finished({ line: 1, source: 'imap://a@h', destination: 'imap://a@d', status: 'complete', copied: 100, skipped: 0 }, true);
  view.progress(2, 'imap://b@h', 10, 40);
  view.finished({ line: 3, source: 'imap://c@h', destination: 'imap://c@d', status: 'complete', copied: 60, skipped: 0 });
  // Started here: 40 + 60 over two mailboxes; one waits (line 4) at their average of 50; line 1 was complete before.
  const t = view.totals();
  assert.deepEqual([t.copied, t.work, t.estimated], [70, 150, true]);
});
