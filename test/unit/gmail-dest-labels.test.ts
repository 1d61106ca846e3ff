/** Which label a Gmail destination folder is (src/stores/gmail/dest-labels.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasLabel, labelOfFolder } from '../../src/stores/gmail/dest-labels.js';

test('INBOX, system folders by their attribute (not their name), user folders by full name', () => {
  assert.deepEqual(labelOfFolder(undefined, 'INBOX'), { kind: 'label', label: '\\Inbox', system: true });
  assert.deepEqual(labelOfFolder({ name: 'Inbox', specialUse: undefined }, 'Inbox'), { kind: 'label', label: '\\Inbox', system: true });
  assert.deepEqual(labelOfFolder({ name: '[Google Mail]/Gesendet', specialUse: '\\Sent' }, '[Google Mail]/Gesendet'), { kind: 'label', label: '\\Sent', system: true });
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/Drafts', specialUse: '\\Drafts' }, '[Gmail]/Drafts'), { kind: 'label', label: '\\Draft', system: true });
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/Important', specialUse: '\\Important' }, '[Gmail]/Important'), { kind: 'label', label: '\\Important', system: true });
  assert.deepEqual(labelOfFolder({ name: 'Sent Mail', specialUse: undefined }, 'Sent Mail'), { kind: 'label', label: 'Sent Mail', system: false });
  assert.deepEqual(labelOfFolder(undefined, 'Work/Clients'), { kind: 'label', label: 'Work/Clients', system: false });
});

test('Trash, Spam and Starred are appended as usual; All Mail is appended and reusable', () => {
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/Trash', specialUse: '\\Trash' }, '[Gmail]/Trash'), { kind: 'append', indexed: false });
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/Spam', specialUse: '\\Junk' }, '[Gmail]/Spam'), { kind: 'append', indexed: false });
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/Starred', specialUse: '\\Flagged' }, '[Gmail]/Starred'), { kind: 'append', indexed: false });
  assert.deepEqual(labelOfFolder({ name: '[Gmail]/All Mail', specialUse: '\\All' }, '[Gmail]/All Mail'), { kind: 'append', indexed: true });
});

test('labels compare without regard to case', () => {
  assert.ok(hasLabel(['\\Inbox', 'Work'], '\\INBOX'));
  assert.ok(!hasLabel(['Work'], 'Work/Clients'));
});
