import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInbox, parseServerName, toServerName } from '../../src/core/mailbox-path.js';

test('server names round-trip through segments for common namespace styles', () => {
  const styles = [
    { prefix: '', delimiter: '/' },
    { prefix: '', delimiter: '.' },
    { prefix: 'INBOX.', delimiter: '.' },
  ];
  const paths = [['INBOX'], ['Archive'], ['Projects', '2024', 'Q1'], ['Grüße & Co', '日本語'], ['📁 Projekte']];
  for (const ns of styles) {
    for (const path of paths) {
      const { name, substituted } = toServerName(path, ns);
      assert.equal(substituted, false);
      assert.deepEqual(parseServerName(name, ns.delimiter, ns), path, `${JSON.stringify(ns)} ${name}`);
    }
  }
});

test('INBOX is case-insensitive and never prefixed', () => {
  assert.ok(isInbox(['inbox']));
  assert.equal(toServerName(['Inbox'], { prefix: 'INBOX.', delimiter: '.' }).name, 'INBOX');
  assert.deepEqual(parseServerName('inbox', '.', { prefix: 'INBOX.', delimiter: '.' }), ['INBOX']);
});

test('a separator inside a name is substituted and reported', () => {
  const r = toServerName(['a.b', 'c'], { prefix: 'INBOX.', delimiter: '.' });
  assert.deepEqual(r, { name: 'INBOX.a_b.c', substituted: true, reasons: ['separator'] });
  const flat = toServerName(['a', 'b'], { prefix: '', delimiter: '' }, '-');
  assert.deepEqual(flat, { name: 'a-b', substituted: true, reasons: ['flat-server'] });
});

test('names outside the personal namespace are left out', () => {
  assert.equal(parseServerName('shared.team', '.', { prefix: 'INBOX.', delimiter: '.' }), undefined);
  assert.equal(parseServerName('INBOX.', '.', { prefix: 'INBOX.', delimiter: '.' }), undefined);
});
