import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dateOf, timeOf } from '../../src/core/internal-date.js';

test('a listed INTERNALDATE is kept as milliseconds and turned back into the same instant', () => {
  const d = new Date('2023-11-05T08:09:10Z');
  assert.equal(timeOf(d), d.getTime());
  // imapflow hands INTERNALDATE over as a Date, older servers' answers may come as the IMAP string
  assert.equal(timeOf('05-Nov-2023 09:09:10 +0100'), d.getTime());
  assert.equal(timeOf(d.getTime()), d.getTime());
  assert.equal(dateOf(timeOf(d))!.toISOString(), '2023-11-05T08:09:10.000Z');
  // the epoch itself is a time, not "no date"
  assert.equal(timeOf(new Date(0)), 0);
  assert.equal(dateOf(0)!.getTime(), 0);
});

test('what is not a time is no date at all, never NaN', () => {
  for (const bad of [new Date('not a date'), 'yesterday-ish', NaN, Infinity, undefined, null, {}]) assert.equal(timeOf(bad), undefined, String(bad));
  assert.equal(dateOf(undefined), undefined);
});
