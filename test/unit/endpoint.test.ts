import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost, parseEndpoint, redactUrl } from '../../src/core/endpoint.js';
import { MigrateError } from '../../src/core/errors.js';

test('parses imap and imaps URLs with default ports', () => {
  assert.deepEqual(parseEndpoint('imap://alice@mail.example.com', 'from'), {
    protocol: 'imap', host: 'mail.example.com', port: 143, user: 'alice', display: 'imap://alice@mail.example.com:143',
  });
  const e = parseEndpoint('imaps://alice%40example.com@[::1]:9993', 'to');
  assert.equal(e.protocol, 'imaps');
  assert.equal(e.host, '::1');
  assert.equal(e.port, 9993);
  assert.equal(e.user, 'alice@example.com');
});

test('refuses a password in the URL without echoing it', () => {
  assert.throws(() => parseEndpoint('imaps://alice:s3cret@host', 'from'), (err: unknown) => {
    assert.ok(err instanceof MigrateError);
    assert.equal(err.code, 'MM-CONFIG-PASSWORD-IN-URL');
    assert.equal(err.scope, 'config');
    assert.ok(!err.message.includes('s3cret'));
    return true;
  });
});

test('rejects malformed URLs with MM-CONFIG-URL', () => {
  for (const bad of ['alice@host', 'http://alice@host', 'imap://host', 'imap://alice@host/INBOX', 'imap://alice@host:99999', 'not a url']) {
    assert.throws(() => parseEndpoint(bad, 'to'), (err: unknown) => err instanceof MigrateError && err.code === 'MM-CONFIG-URL', bad);
  }
});

test('loopback detection and URL redaction', () => {
  assert.ok(isLoopbackHost('127.0.0.1'));
  assert.ok(isLoopbackHost('127.1.2.3'));
  assert.ok(isLoopbackHost('::1'));
  assert.ok(isLoopbackHost('LOCALHOST'));
  assert.ok(!isLoopbackHost('128.0.0.1'));
  assert.ok(!isLoopbackHost('mail.example.com'));
  assert.equal(redactUrl('imaps://bob:hunter2@host:993'), 'imaps://bob:***@host:993');
});
