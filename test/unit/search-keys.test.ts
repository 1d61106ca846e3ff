import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSearchKeys, requireSearchableSides, storeDependentKeys, MAX_SEARCH_LENGTH } from '../../src/plan/search-keys.js';
import { applyFilter, messageFilter } from '../../src/plan/message-filter.js';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { isMigrateError } from '../../src/core/errors.js';

/** The MM-CONFIG-OPTION message a bad key string gets. */
function refusal(keys: string): string {
  try {
    checkSearchKeys(keys);
  } catch (err) {
    assert.ok(isMigrateError(err) && err.code === 'MM-CONFIG-OPTION' && err.scope === 'config', String(err));
    return err.message;
  }
  assert.fail(`accepted: ${JSON.stringify(keys)}`);
}

test('search keys as typed are accepted, with their spacing made single', () => {
  assert.equal(checkSearchKeys('FROM alice'), 'FROM alice');
  assert.equal(checkSearchKeys('  SUBJECT   "q3 report"  SINCE 1-Jan-2024 '), 'SUBJECT "q3 report" SINCE 1-Jan-2024');
  assert.equal(checkSearchKeys('OR ( FLAGGED UNSEEN ) NOT DELETED'), 'OR (FLAGGED UNSEEN) NOT DELETED');
  assert.equal(checkSearchKeys('SUBJECT "a \\"quoted\\" {5} (word"'), 'SUBJECT "a \\"quoted\\" {5} (word"');
  assert.equal(checkSearchKeys('UID 1:* KEYWORD $Label1'), 'UID 1:* KEYWORD $Label1');
});

test('keys that could end the command or start another are refused, naming the problem', () => {
  assert.match(refusal('ALL\r\nA1 DELETE INBOX'), /line break/);
  assert.match(refusal('SUBJECT "x\ny"'), /line break/);
  assert.match(refusal('ALL\u0000'), /NUL/);
  assert.match(refusal('FROM\talice'), /control character \(U\+0009\)/);
  assert.match(refusal('SUBJECT {5}'), /literal/);
  assert.match(refusal('SUBJECT {5+}'), /literal/);
  assert.match(refusal('SUBJECT "unclosed'), /double quote at character 9 is not closed/);
  assert.match(refusal('SUBJECT "a\\b"'), /backslash/);
  assert.match(refusal('OR (FLAGGED UNSEEN'), /1 "\(" not closed/);
  assert.match(refusal('FLAGGED)'), /"\)" without its "\("/);
  assert.match(refusal('   '), /no search keys/);
  assert.match(refusal(`TEXT "${'x'.repeat(MAX_SEARCH_LENGTH)}"`), /more than 2000/);
});

test('keys that select by where a message is stored are named (verify refuses them)', () => {
  assert.deepEqual(storeDependentKeys('FROM alice SINCE 1-Jan-2024 LARGER 10000 OR FLAGGED SUBJECT "uid 5"'), []);
  assert.deepEqual(storeDependentKeys('UID 1:100'), ['UID']);
  assert.deepEqual(storeDependentKeys('1:100 FROM x'), ['1:100']);
  assert.deepEqual(storeDependentKeys('NOT (RECENT) OR MODSEQ "/flags/\\\\seen" all 5 SAVEDSINCE 1-Jan-2024'), ['RECENT', 'MODSEQ', 'SAVEDSINCE']);
  // An argument that looks like a key is an argument.
  assert.deepEqual(storeDependentKeys('SUBJECT UID HEADER X-Id 5 LARGER 100'), []);
});

test('--search needs IMAP: a local archive is refused, with what to use instead', () => {
  requireSearchableSides([{ flag: '--from', endpoint: parseEndpoint('imap://a@127.0.0.1:1143', 'from') }]);
  assert.throws(
    () => requireSearchableSides([{ flag: '--from', endpoint: parseEndpoint('maildir:/tmp/x', 'from') }]),
    (err: unknown) => isMigrateError(err) && err.code === 'MM-CONFIG-OPTION' && /local archive \(maildir:\)/.test(err.message) && /--since/.test(err.message),
  );
});

test('a --search filter lets in only the UIDs the search answered, together with the other bounds', () => {
  const f = messageFilter({ search: 'FROM alice', minSize: 100 })!;
  const ms = [1, 2, 3].map((uid) => ({ uid, size: uid * 60, internalDate: undefined }));
  assert.deepEqual(applyFilter(f, ms, new Set([1, 2])).map((m) => m.uid), [2]);
  // Without the search's answer nothing can be shown to match.
  assert.deepEqual(applyFilter(f, ms), []);
});
