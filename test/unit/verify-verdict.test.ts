/**
 * verify's verdict from its counts: which differences each mode (exact, finished, strict) holds
 * against the destination, and that a folder not compared makes it poor whatever else was seen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkVerifyModes, verifyVerdict, type VerifyFolderReport } from '../../src/job/verify.js';

const folder = (over: Partial<VerifyFolderReport> = {}): VerifyFolderReport => ({
  source: 'INBOX', destination: 'INBOX', sourceCount: 3, destCount: 3, matched: 3,
  missing: 0, extra: 0, changed: 0, flagsDiffer: 0, datesDiffer: 0, state: 'match', differences: [], ...over,
});
const verdict = (folders: VerifyFolderReport[], o: { mode?: 'exact' | 'finished'; strict?: boolean; destinationOnly?: number; error?: boolean } = {}) =>
  verifyVerdict({
    folders,
    mode: o.mode ?? 'exact',
    strict: !!o.strict,
    destinationOnly: Array.from({ length: o.destinationOnly ?? 0 }, (_, i) => ({ name: `Own ${i}`, messages: 1 })),
    ...(o.error ? { error: { code: 'MM-CONNECT-REFUSED', message: 'refused' } } : {}),
  });

test('perfect only when everything compared is equal and nothing else was seen', () => {
  assert.equal(verdict([folder(), folder({ source: 'Work' })]), 'perfect');
  assert.equal(verdict([folder({ subscribed: { source: true, destination: true } })], { strict: true }), 'perfect');
});

test('exact mode: extra, flags, dates and changed are to investigate; destination-only folders are information (good)', () => {
  for (const over of [{ extra: 1 }, { flagsDiffer: 1 }, { datesDiffer: 1 }, { changed: 1 }, { missing: 1 }, { bodiesDiffer: 1 }]) {
    assert.equal(verdict([folder(over)]), 'investigate', JSON.stringify(over));
  }
  assert.equal(verdict([folder()], { destinationOnly: 2 }), 'good');
});

test('strict: destination-only folders and a subscription mismatch are to investigate', () => {
  assert.equal(verdict([folder()], { strict: true, destinationOnly: 1 }), 'investigate');
  assert.equal(verdict([folder({ subscribed: { source: true, destination: false } })], { strict: true }), 'investigate');
  assert.equal(verdict([folder({ subscribed: { source: false, destination: true } })], { strict: true }), 'investigate');
});

test('finished: new messages, flags and dates at the destination are good; missing, changed and other bytes are not', () => {
  assert.equal(verdict([folder({ extra: 4, flagsDiffer: 2, datesDiffer: 1 })], { mode: 'finished' }), 'good');
  assert.equal(verdict([folder()], { mode: 'finished', destinationOnly: 1 }), 'good');
  for (const over of [{ missing: 1 }, { changed: 1 }, { bodiesDiffer: 1 }]) {
    assert.equal(verdict([folder({ extra: 4, ...over })], { mode: 'finished' }), 'investigate', JSON.stringify(over));
  }
});

test('poor when a folder could not be compared or the run failed, whatever else was seen', () => {
  assert.equal(verdict([folder(), folder({ state: 'error', error: { code: 'MM-FOLDER-FAILED', message: 'x' } })]), 'poor');
  assert.equal(verdict([folder({ missing: 3 })], { error: true }), 'poor');
  assert.equal(verdict([], { error: true }), 'poor');
});

test('--strict with --finished is refused as MM-CONFIG-OPTION (scope config)', () => {
  assert.throws(() => checkVerifyModes({ strict: true, finished: true }), (e: Error & { code?: string; scope?: string }) => e.code === 'MM-CONFIG-OPTION' && e.scope === 'config');
  assert.doesNotThrow(() => checkVerifyModes({ strict: true }));
  assert.doesNotThrow(() => checkVerifyModes({ finished: true }));
});
