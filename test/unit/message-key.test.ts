import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractMessageId, messageKey, normaliseIdentityHeaders } from '../../src/core/message-key.js';

test('identity ignores folding, case of names, order and trailing blank lines', () => {
  const a = 'Message-ID: <a@b>\r\nSubject: Hello\r\n  world\r\nFrom: x@y\r\n\r\n';
  const b = 'from: x@y\r\nsubject:   Hello world\r\nMESSAGE-ID:  <a@b>\r\n';
  assert.equal(normaliseIdentityHeaders(a), normaliseIdentityHeaders(b));
  assert.equal(messageKey(Buffer.from(a)), messageKey(b));
});

test('every identity field separates messages; other fields do not count', () => {
  const h = 'Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n';
  assert.notEqual(messageKey(h), messageKey(h.replace('10:00', '10:01')));
  // Messages without a Message-ID are still told apart by the other fields.
  assert.notEqual(messageKey('Subject: a\r\n'), messageKey('Subject: b\r\n'));
  assert.equal(messageKey(h + 'Received: from x\r\n'), messageKey(h + 'Received: from y\r\n'));
});

test('picked from the whole header, a field with a space before the colon still counts', () => {
  // Courier leaves such a field out of HEADER.FIELDS, Dovecot keeps it: the key must not depend on that.
  const whole = 'From: a@b\r\nSubject : odd spacing\r\nX-Other: 1\r\n\r\n';
  assert.notEqual(messageKey(whole), messageKey('From: a@b\r\n'));
  assert.equal(messageKey(whole), messageKey('subject: odd spacing\r\nfrom: a@b\r\n'));
});

test('8-bit header bytes are hashed byte-faithfully', () => {
  const utf8 = Buffer.from('Subject: Grüße\r\n', 'utf8');
  const latin1 = Buffer.from('Subject: Grüße\r\n', 'latin1');
  assert.notEqual(messageKey(utf8), messageKey(latin1));
});

test('Message-ID extraction', () => {
  assert.equal(extractMessageId('Message-Id: <abc@example.org>\r\n'), 'abc@example.org');
  assert.equal(extractMessageId('Subject: none\r\n'), undefined);
});
