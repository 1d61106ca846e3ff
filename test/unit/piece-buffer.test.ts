import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PieceBuffer } from '../../src/stores/imap/piece-buffer.js';
import { itemPrefix } from '../../src/stores/imap/multiappend.js';

test('PieceBuffer: pieces land in order in one buffer of the listed size', () => {
  const b = new PieceBuffer(10, 100);
  assert.equal(b.push(Buffer.from('abcd')), true);
  assert.equal(b.push(Buffer.from('efghij')), true);
  assert.equal(b.length, 10);
  assert.equal(b.result().toString(), 'abcdefghij');
});

test('PieceBuffer: a body shorter than listed is the bytes pushed, no more', () => {
  const b = new PieceBuffer(10, 100);
  b.push(Buffer.from('abc'));
  assert.equal(b.result().length, 3);
  assert.equal(b.result().toString(), 'abc');
  assert.equal(new PieceBuffer(10, 100).result().length, 0);
});

test('PieceBuffer: a body larger than listed grows up to the limit, and a piece past the limit is refused whole', () => {
  const b = new PieceBuffer(4, 12);
  assert.equal(b.push(Buffer.from('0123')), true);
  assert.equal(b.push(Buffer.from('4567')), true);
  assert.equal(b.push(Buffer.from('89')), true);
  assert.equal(b.result().toString(), '0123456789');
  assert.equal(b.push(Buffer.from('abc')), false);
  assert.equal(b.length, 10);
  assert.equal(b.push(Buffer.from('ab')), true);
  assert.equal(b.result().toString(), '0123456789ab');
});

test('itemPrefix: flags, INTERNALDATE and the literal size of the bytes sent, synchronizing or not', () => {
  const item = { body: Buffer.from('Subject: x\r\n\r\nhé\r\n'), flags: ['\\Seen', '$Forwarded'], internalDate: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) };
  assert.equal(itemPrefix(item, true).toString(), ` (\\Seen $Forwarded) " 2-Jan-2024 03:04:05 +0000" {${item.body.length}+}\r\n`);
  assert.equal(itemPrefix({ ...item, flags: [], internalDate: undefined }, false).toString(), ` () {${item.body.length}}\r\n`);
});
