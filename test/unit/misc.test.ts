import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { flagsToCopy } from '../../src/core/flags.js';
import { expandUidSet } from '../../src/stores/imap/multiappend.js';
import { packUids } from '../../src/stores/imap/uid-set.js';
import { VERSION } from '../../src/version.js';
import { statusOf } from '../../src/job/report.js';

test('\\Recent is never copied; system flags are canonical, keywords kept', () => {
  assert.deepEqual(flagsToCopy(['\\Recent', '\\seen', '$Forwarded', 'CustomKw', '\\Seen']), ['$Forwarded', 'CustomKw', '\\Seen']);
});

test('UID sets pack and expand', () => {
  assert.equal(packUids([5, 1, 2, 3, 9, 7, 8, 3]), '1:3,5,7:9');
  assert.deepEqual(expandUidSet('101:103,107'), [101, 102, 103, 107]);
  assert.deepEqual(expandUidSet('5:3'), [5, 4, 3]);
  assert.equal(expandUidSet('1:99999999'), undefined, 'a hostile range is refused, not allocated');
  assert.equal(expandUidSet('1,x'), undefined);
  assert.equal(expandUidSet('0'), undefined);
});

test('status: failed beats partial beats complete', () => {
  const f = { source: 'a', destination: 'a', sourceCount: 1, sourceBytes: 1, copied: 1, copiedBytes: 1, alreadyPresent: 0, skipped: 0, vanished: 0, created: true, renamed: false, noSelect: false };
  assert.equal(statusOf({ folders: [f], items: [] }), 'complete');
  const item = { folder: 'a', uid: 1, size: 1, code: 'MM-FETCH-FAILED' as const, reason: 'x' };
  assert.equal(statusOf({ folders: [f], items: [item] }), 'partial');
  assert.equal(statusOf({ folders: [{ ...f, error: { code: 'MM-FOLDER-CREATE-FAILED', message: 'x' } }], items: [item] }), 'failed');
});

test('VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});
