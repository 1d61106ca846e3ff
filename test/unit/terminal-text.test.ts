/**
 * Names shown on a terminal: control characters, C1 controls and bidi overrides are written
 * visibly by one helper, in every table and line the CLI prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSummary, formatVerifySummary, terminalText } from '../../src/cli/output.js';
import type { MigrationReport } from '../../src/job/report.js';
import type { VerifyReport } from '../../src/job/verify.js';

// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const HOSTILE = 'a\u001b[2Jb\rc\nd\te\u0000f\u007fg\u0085h\u009bi\u202ej\u2066k\u2069l\u200fm\\n';

test('terminalText writes every unsafe character visibly and leaves the rest alone', () => {
  assert.equal(terminalText(HOSTILE), 'a\\x1b[2Jb\\rc\\nd\\te\\x00f\\x7fg\\x85h\\x9bi\\u202ej\\u2066k\\u2069l\\u200fm\\\\n');
  assert.equal(terminalText('Grüße/日本語 📁 "quoted"'), 'Grüße/日本語 📁 "quoted"');
  // A name cannot pass for an escaped form: the backslash is escaped too.
  assert.notEqual(terminalText('\\x1b'), terminalText('\u001b'));
});

test('the summary, the plan and the verify table show names escaped', () => {
  const folder = { source: HOSTILE, destination: `${HOSTILE}/x`, sourceCount: 1, sourceBytes: 1, copied: 1, copiedBytes: 1, alreadyPresent: 0, skipped: 0, vanished: 0, created: true, renamed: true, renameReasons: ['control-character'], noSelect: false };
  const report: MigrationReport = {
    version: 1, tool: 'mailmover test', status: 'failed', dryRun: false, startedAt: '', finishedAt: '',
    source: { url: 'imap://a@h' }, destination: { url: 'imap://b@h' },
    totals: { folders: 1, messages: 1, bytes: 1, copied: 1, copiedBytes: 1, alreadyPresent: 0, skipped: 0, seconds: 1 },
    folders: [folder], items: [], collisions: [{ destination: HOSTILE, sources: [HOSTILE, 'b'] }], excluded: [{ source: HOSTILE, reason: 'excluded' }],
    error: { code: 'MM-PLAN-COLLISION', message: `Source folders would be merged: "${HOSTILE}"` },
  };
  for (const dryRun of [false, true]) {
    const text = formatSummary({ ...report, dryRun });
    assert.ok(!RAW.test(text), JSON.stringify(text.match(RAW)));
    assert.ok(text.includes(terminalText(HOSTILE)));
    assert.match(text, /\(renamed: control-character\)/);
  }
  const verify = {
    status: 'differ', verdict: 'investigate', mode: 'exact', strict: true, deep: false,
    destinationOnly: [{ name: HOSTILE, messages: 2 }],
    folders: [{ source: HOSTILE, destination: HOSTILE, sourceCount: 1, destCount: 0, missing: 1, extra: 0, changed: 0, flagsDiffer: 0, datesDiffer: 0, state: 'differ', differences: [{ kind: 'missing', sourceUid: 1, messageId: HOSTILE, detail: HOSTILE }], error: { code: 'MM-FOLDER-FAILED', message: HOSTILE } }],
    totals: { folders: 1, sourceMessages: 1, missing: 1, extra: 0, changed: 0, flagsDiffer: 0, datesDiffer: 0, bodiesDiffer: 0, subscriptionsDiffer: 0, destinationOnly: 1 },
  } as unknown as VerifyReport;
  const text = formatVerifySummary(verify);
  assert.ok(!RAW.test(text), JSON.stringify(text.match(RAW)));
  assert.ok(text.includes(terminalText(HOSTILE)));
});
