import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractMessageId, messageKey, normaliseIdentityHeaders } from '../../src/core/message-key.js';

test('identity ignores folding, case of names, order and trailing blank lines', () => {
  const a = 'Message-ID: <a@b>\r\nSubject: Hello\r\n  world\r\nFrom: x@y\r\n\r\n';
  const b = 'from: x@y\r\nsubject:   Hello world\r\nMESSAGE-ID:  <a@b>\r\n';
  assert.equal(normaliseIdentityHeaders(a), normaliseIdentityHeaders(b));
  assert.equal(messageKey(Buffer.from(a), 100), messageKey(b, 100));
});

test('size and every identity field separate messages', () => {
  const h = 'Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n';
  assert.notEqual(messageKey(h, 100), messageKey(h, 101));
  assert.notEqual(messageKey(h, 100), messageKey(h.replace('10:00', '10:01'), 100));
  // Messages without a Message-ID are still told apart by the other fields.
  assert.notEqual(messageKey('Subject: a\r\n', 10), messageKey('Subject: b\r\n', 10));
});

test('8-bit header bytes are hashed byte-faithfully', () => {
  const utf8 = Buffer.from('Subject: Grüße\r\n', 'utf8');
  const latin1 = Buffer.from('Subject: Grüße\r\n', 'latin1');
  assert.notEqual(messageKey(utf8, 1), messageKey(latin1, 1));
});

test('Message-ID extraction', () => {
  assert.equal(extractMessageId('Message-Id: <abc@example.org>\r\n'), 'abc@example.org');
  assert.equal(extractMessageId('Subject: none\r\n'), undefined);
});
