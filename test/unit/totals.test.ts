/**
 * The totals count everything a run did (flags updated, deletions at either side, kept at the
 * source, skipped by reason, quarantined, unscanned), and the text summary shows only what is
 * non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSummary } from '../../src/cli/output.js';
import { statusOf, totalsOf, verdictOf, type FolderReport, type MigrationReport, type SkippedItem } from '../../src/job/report.js';

const folder = (over: Partial<FolderReport>): FolderReport => ({
  source: 'INBOX', destination: 'INBOX', sourceCount: 10, sourceBytes: 1000, copied: 0, copiedBytes: 0, alreadyPresent: 10, skipped: 0, vanished: 0, created: false, renamed: false, noSelect: false, ...over,
});
const item = (code: string): SkippedItem => ({ folder: 'INBOX', uid: 1, size: 1, code, reason: 'r' }) as SkippedItem;

function report(folders: FolderReport[], items: SkippedItem[] = [], unscanned = 0): MigrationReport {
  const r = {
    version: 1, tool: 'mailmover', status: 'complete', dryRun: false, startedAt: '', finishedAt: '', source: { url: 's' }, destination: { url: 'd' },
    totals: totalsOf(folders, 1, items, unscanned ? { unscanned } : undefined), folders, items, collisions: [], excluded: [],
  } as MigrationReport;
  r.status = statusOf(r);
  return r;
}

test('totals sum every kind of outcome, and leave out what is zero', () => {
  const r = report([folder({ flagsUpdated: 2, deleted: 1 }), folder({ source: 'A', destination: 'A', sourceDeleted: 3, sourceKept: 1, quarantined: 1, skipped: 2 })], [item('MM-TOO-BIG'), item('MM-TOO-BIG')], 4);
  assert.equal(r.totals.flagsUpdated, 2);
  assert.equal(r.totals.deletedAtDestination, 1);
  assert.equal(r.totals.deletedAtSource, 3);
  assert.equal(r.totals.sourceKept, 1);
  assert.equal(r.totals.quarantined, 1);
  assert.equal(r.totals.unscanned, 4);
  assert.deepEqual(r.totals.skippedByReason, { 'MM-TOO-BIG': 2 });
  assert.equal(r.totals.withheld, undefined);
  const quiet = report([folder({})]);
  assert.deepEqual(Object.keys(quiet.totals).sort(), ['alreadyPresent', 'bytes', 'copied', 'copiedBytes', 'folders', 'messages', 'seconds', 'skipped']);
});

test('the summary names flag repairs instead of "Nothing to copy", and shows only non-zero counts', () => {
  const text = formatSummary(report([folder({ flagsUpdated: 2 })]));
  assert.doesNotMatch(text, /Nothing to copy/);
  assert.match(text, /2 flags updated/);
  assert.doesNotMatch(text, /quarantined|unscanned|deleted/);
  assert.match(formatSummary(report([folder({})])), /Nothing to copy/);
  const moved = formatSummary(report([folder({ sourceDeleted: 3, sourceKept: 1 })]));
  assert.match(moved, /3 deleted at the source/);
  assert.match(moved, /1 kept at the source/);
});

test('the verdict: perfect, good (limits and policy), investigate (errors), poor (folder or mailbox failure)', () => {
  assert.equal(verdictOf(report([folder({})])), 'perfect');
  assert.equal(verdictOf(report([folder({ skipped: 1 })], [item('MM-MESSAGE-TOO-LARGE')])), 'good');
  assert.equal(verdictOf(report([folder({ quarantined: 1 })])), 'good');
  assert.equal(verdictOf(report([folder({ flagsDropped: { messages: 1, flags: ['a]'] } })])), 'good');
  assert.equal(verdictOf(report([folder({ skipped: 2 })], [item('MM-MESSAGE-TOO-LARGE'), item('MM-FETCH-FAILED')])), 'investigate');
  assert.equal(verdictOf(report([folder({ error: { code: 'MM-FOLDER-FAILED', message: 'x' } })])), 'poor');
  // A move that kept a message at the source (no exact copy proven) is not done.
  assert.equal(verdictOf(report([folder({ sourceDeleted: 3, sourceKept: 1 })])), 'investigate');
  assert.equal(statusOf(report([folder({ sourceDeleted: 3, sourceKept: 1 })])), 'partial');
  const r = report([folder({})]);
  r.verdict = verdictOf(r);
  assert.match(formatSummary(r), /verdict: perfect/);
});

test('the verdict with scanning: a held unscanned message is good (partial), one delivered unscanned is good, not perfect', () => {
  const held = report([folder({ skipped: 1 })], [item('MM-SCAN-UNSCANNED')], 1);
  assert.equal(held.status, 'partial');
  assert.equal(verdictOf(held), 'good');
  const delivered = report([folder({})], [], 1);
  delivered.scan = {
    engine: 'clamd', policy: 'quarantine', failOpen: false, onUnscanned: 'deliver', scanned: 9, scannedBytes: 900, cached: 0, infected: 0, unscanned: 1,
    verdicts: [{ folder: 'INBOX', uid: 3, size: 5, sha256: 'x', verdict: 'unscanned', code: 'MM-SCAN-TOO-LARGE', reason: 'r', action: 'delivered' }],
  };
  assert.equal(delivered.status, 'complete');
  assert.equal(verdictOf(delivered), 'good');
  assert.match(formatSummary(delivered), /9 scanned \(.*\), 0 from cache, 0 infected; 1 not scanned \(unscanned\); 1 delivered/);
  assert.match(formatSummary(delivered), /1 unscanned \(not counted as scanned; 1 delivered unscanned\)/);
});
