/**
 * The console's pure parts: the error-docs parser (on a sample and on the docs/errors.md the
 * package ships) and the batch overview, which shows a total or a finish time only when known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/core/errors.js';
import { errorDocs, parseErrorDocs } from '../../src/console/error-docs.js';
import { overviews, sampledThroughput, throughput } from '../../src/console/batch-summary.js';
import { stateAfter } from '../../src/console/control-view.js';
import type { BatchAction } from '../../src/state/batch-control.js';
import { sameMailbox, type StatusGroup } from '../../src/console/ledger-view.js';

test('the error-docs parser: parts joined per paragraph, scope and exit code from the table, other sections ignored', () => {
  const md = [
    '# codes',
    '',
    '| code | scope | exit code |',
    '| --- | --- | --- |',
    '| [MM-ONE](#mm-one) | mailbox | 4 |',
    '',
    '## MM-ONE',
    '**Symptom:** `MM-ONE: it broke`,',
    'exit 4.',
    '**Cause:** first line',
    'second line.',
    '',
    'A second paragraph.',
    '**Resolution:** fix it.',
    '',
    '## Not a code',
    '**Symptom:** ignored',
    '## MM-TWO',
    'no parts at all',
  ].join('\n');
  assert.deepEqual(parseErrorDocs(md), [
    { code: 'MM-ONE', scope: 'mailbox', exitCode: '4', symptom: '`MM-ONE: it broke`, exit 4.', cause: 'first line second line.\n\nA second paragraph.', resolution: 'fix it.' },
  ]);
});

test('every error code of the shipped docs/errors.md is explained: symptom, cause and resolution', () => {
  const docs = errorDocs();
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of Object.values(ERROR_CODES)) {
    const d = docs.get(code);
    assert.ok(d && d.symptom && d.cause && d.resolution, code);
    // Each part's first words are in the file right after their marker.
    assert.ok(text.includes(`## ${code}\n**Symptom:** ${d.symptom.split('\n')[0]!.slice(0, 30)}`), code);
  }
  assert.match(docs.get('MM-AUTH-FAILED')!.resolution, /check the credentials/);
});

const group = (status: string, mailboxes: number, copied: number, toCopy: number, toCopyKnown: number, lastAt: string): StatusGroup => ({
  batch: 'b',
  status,
  mailboxes,
  copied,
  skipped: 0,
  toCopy,
  toCopyKnown,
  firstAt: '2026-01-01T00:00:00.000Z',
  lastAt,
});

test('an overview: the total to copy only when every unfinished mailbox has counted; finished only when none is left; unknown statuses kept', () => {
  const running = overviews([group('complete', 2, 10, 0, 0, '2026-01-01T01:00:00.000Z'), group('running', 1, 3, 8, 1, '2026-01-01T02:00:00.000Z'), group('waiting', 1, 0, 0, 0, '2026-01-01T00:30:00.000Z')])[0]!;
  assert.equal(running.toCopy, null, 'a waiting mailbox has not counted');
  assert.equal(running.finishedAt, null);
  assert.deepEqual(running.statuses, { complete: 2, running: 1, waiting: 1 });
  const counted = overviews([group('complete', 2, 10, 0, 0, '2026-01-01T01:00:00.000Z'), group('running', 1, 3, 8, 1, '2026-01-01T02:00:00.000Z')])[0]!;
  assert.equal(counted.toCopy, 18);
  const done = overviews([group('complete', 2, 10, 0, 0, '2026-01-01T01:00:00.000Z'), group('failed', 1, 0, 0, 0, '2026-01-01T03:00:00.000Z')])[0]!;
  assert.equal(done.finishedAt, '2026-01-01T03:00:00.000Z');
  assert.equal(done.copied, 10);
});

test('throughput: a finished mailbox spread over the time it ran; running ones left out', () => {
  const t = throughput([
    { status: 'complete', copied: 120, seconds: 120, updatedAt: '2026-01-01T00:02:00.000Z' },
    { status: 'running', copied: 50, seconds: undefined, updatedAt: '2026-01-01T00:02:00.000Z' },
  ])!;
  assert.equal(t.bucketSeconds, 60);
  assert.equal(t.start, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(t.counts, [60, 60, 0]);
  assert.equal(throughput([{ status: 'running', copied: 5, seconds: undefined, updatedAt: '2026-01-01T00:00:00.000Z' }]), null);
});

test("a batch row's mailbox in the ledger: the same URL, a master login after a separator, or a login acting as the user", () => {
  const url = 'imap://alice@mail.example.org:143';
  assert.ok(sameMailbox(url, url));
  assert.ok(sameMailbox(url, 'imap://alice*admin@mail.example.org:143'));
  assert.ok(sameMailbox(url, 'imap://admin@mail.example.org:143 (as alice)'));
  assert.ok(sameMailbox('imap://a%C3%A9@h:1', 'imap://admin@h:1 (as a\u00e9)'));
  for (const other of ['imap://alicex@mail.example.org:143', 'imap://alice.b*admin@mail.example.org:143', 'imap://alice*admin@other.example.org:143', 'imaps://alice@mail.example.org:143', 'imap://admin@mail.example.org:143 (as alicia)']) {
    assert.ok(!sameMailbox(url, other), other);
  }
});

test('sampled throughput: each sample counted once in its bucket, buckets from 5 s, nothing when there is no sample', () => {
  assert.equal(sampledThroughput([]), null);
  const t = sampledThroughput([
    { at: '2026-01-01T00:00:01.000Z', copied: 3, bytes: 300 },
    { at: '2026-01-01T00:00:04.000Z', copied: 2, bytes: 200 },
    { at: '2026-01-01T00:00:16.000Z', copied: 7, bytes: 700 },
  ])!;
  assert.deepEqual(t, { bucketSeconds: 5, start: '2026-01-01T00:00:00.000Z', counts: [5, 0, 0, 7], bytes: [500, 0, 0, 700] });
  const long = sampledThroughput([
    { at: '2026-01-01T00:00:00.000Z', copied: 1, bytes: 1 },
    { at: '2026-01-01T02:00:00.000Z', copied: 1, bytes: 1 },
  ])!;
  assert.ok(long.counts.length <= 60 && long.counts.reduce((a, b) => a + b, 0) === 2, JSON.stringify(long));
});

test("a batch's state after its actions: the last pause, resume, cancel or retry decides", () => {
  const a = (action: BatchAction['action']): BatchAction => ({ id: 1, batch: 'b', action, operator: 'o', at: '', mailboxes: 0 });
  assert.equal(stateAfter([]), 'active');
  assert.equal(stateAfter([a('pause')]), 'paused');
  assert.equal(stateAfter([a('pause'), a('resume')]), 'active');
  assert.equal(stateAfter([a('pause'), a('cancel')]), 'cancelled');
  assert.equal(stateAfter([a('cancel'), a('retry')]), 'active');
});
