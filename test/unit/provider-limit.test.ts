/**
 * A provider's own limit is told apart from a full mailbox by its words (src/stores/imap/imap-errors.ts):
 * Gmail's bandwidth answer and a temporarily locked account park the mailbox (MM-PROVIDER-LIMIT),
 * a storage [OVERQUOTA] still fails it (MM-DEST-OVERQUOTA).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandError, isProviderLimit } from '../../src/stores/imap/imap-errors.js';
import { ERROR_CODES } from '../../src/core/errors.js';

const refused = (responseText: string, serverResponseCode?: string) => Object.assign(new Error('Command failed'), { responseText, responseStatus: 'NO', ...(serverResponseCode ? { serverResponseCode } : {}) });

test('provider limits by their words; a storage quota is not one', () => {
  assert.ok(isProviderLimit('NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)'));
  assert.ok(isProviderLimit('NO Bandwidth limit exceeded for this account'));
  assert.ok(isProviderLimit('NO Your account is temporarily locked. Try again later'));
  assert.ok(isProviderLimit('NO Daily download limit exceeded'));
  for (const storage of ['NO [OVERQUOTA] Quota exceeded', 'NO [OVERQUOTA] Mailbox is full', 'NO Request is throttled. Suggested Backoff Time: 200 milliseconds', 'NO [LIMIT] message too large']) assert.ok(!isProviderLimit(storage), storage);
  const gmail = commandError(ERROR_CODES.FETCH_FAILED, 'message', 'Fetching UID 3 failed', refused('Account exceeded command or bandwidth limits. (Failure)', 'OVERQUOTA'));
  assert.equal(gmail.code, ERROR_CODES.PROVIDER_LIMIT);
  assert.equal(gmail.scope, 'mailbox');
  assert.equal(gmail.retry, 'later');
  const up = commandError(ERROR_CODES.APPEND_FAILED, 'message', 'The destination refused the message', refused('Account exceeded command or bandwidth limits. (Failure)', 'OVERQUOTA'));
  assert.equal(up.code, ERROR_CODES.PROVIDER_LIMIT);
  const full = commandError(ERROR_CODES.APPEND_FAILED, 'message', 'The destination refused the message', refused('Quota exceeded', 'OVERQUOTA'));
  assert.equal(full.code, ERROR_CODES.DEST_OVERQUOTA);
  assert.equal(full.retry, 'never');
});
