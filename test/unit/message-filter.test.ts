import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyFilter, matches, messageFilter } from '../../src/plan/message-filter.js';
import { formatBytes, plural } from '../../src/cli/output.js';
import { EXIT, exitForError } from '../../src/cli/exit-codes.js';

const now = new Date('2025-01-31T00:00:00Z');
const m = (date: string | undefined, size = 100) => ({ size, internalDate: date ? Date.parse(date) : undefined });

test('no flags: no filter (everything is copied)', () => {
  assert.equal(messageFilter({}, now), undefined);
  assert.equal(applyFilter(undefined, [m(undefined)]).length, 1);
});

test('--since is inclusive, --before exclusive; --max-age/--min-age count days back from now; the tighter bound wins', () => {
  const f = messageFilter({ since: new Date('2024-01-01T00:00:00Z'), before: new Date('2024-02-01T00:00:00Z') }, now)!;
  assert.equal(matches(f, m('2024-01-01T00:00:00Z')), true);
  assert.equal(matches(f, m('2023-12-31T23:59:59Z')), false);
  assert.equal(matches(f, m('2024-02-01T00:00:00Z')), false);
  const age = messageFilter({ maxAgeDays: 10, minAgeDays: 2 }, now)!;
  assert.deepEqual([age.since, age.before], [new Date('2025-01-21T00:00:00Z'), new Date('2025-01-29T00:00:00Z')]);
  const both = messageFilter({ since: new Date('2025-01-25T00:00:00Z'), maxAgeDays: 10 }, now)!;
  assert.deepEqual(both.since, new Date('2025-01-25T00:00:00Z'));
  // A message without an INTERNALDATE cannot be shown to be inside a date bound.
  assert.equal(matches(f, m(undefined)), false);
});

test('--min-size and --just-folders', () => {
  const f = messageFilter({ minSize: 1024 }, now)!;
  assert.deepEqual(applyFilter(f, [m(undefined, 1023), m(undefined, 1024)]).map((x) => x.size), [1024]);
  assert.equal(applyFilter(messageFilter({ justFolders: true }, now), [m('2024-01-01T00:00:00Z')]).length, 0);
});

test('output: plurals and rates rounded to whole bytes or one decimal', () => {
  assert.equal(plural(1, 'message'), '1 message');
  assert.equal(plural(0, 'message'), '0 messages');
  assert.equal(formatBytes(428.57142857142856), '429 B');
  assert.equal(formatBytes(1536.4), '1.5 KiB');
});

test('exit codes by class', () => {
  assert.equal(exitForError('MM-AUTH-FAILED'), EXIT.AUTH);
  assert.equal(exitForError('MM-TLS-CERT'), EXIT.CONNECT);
  assert.equal(exitForError('MM-CONNECT-TIMEOUT'), EXIT.CONNECT);
  assert.equal(exitForError('MM-DEST-OVERQUOTA'), EXIT.QUOTA);
  assert.equal(exitForError('MM-ABORTED'), 130);
  assert.equal(exitForError('MM-INTERNAL'), 70);
  assert.equal(exitForError('MM-LIST-FAILED'), EXIT.FAILED);
  assert.equal(exitForError('MM-CONFIG-URL', 'config'), EXIT.USAGE);
});
