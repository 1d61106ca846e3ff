/**
 * The notify settings and the webhook sender: `notify:` checked with line and field, secrets
 * resolved and scrubbed, and the webhook's retry rules against a real HTTP server on loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBatchConfig } from '../../src/batch/config.js';
import { mergeNotify, parseSmtpUrl, resolveNotify, summaryText } from '../../src/notify/notify.js';
import { postWebhook } from '../../src/notify/webhook.js';
import { sendEmail } from '../../src/notify/email.js';
import { SMTPServer } from 'smtp-server';
import { scrub } from '../../src/core/redact.js';
import { isMigrateError } from '../../src/core/errors.js';
import type { BatchReport } from '../../src/batch/run-batch.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-notify-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SERVERS = 'source:\n  url: imap://127.0.0.1:1\ndestination:\n  url: imap://127.0.0.1:2\n';
const load = (notify: string) => {
  const file = path.join(dir, 'servers.yaml');
  writeFileSync(file, SERVERS + notify);
  return loadBatchConfig(file, () => undefined);
};
const codeAndMessage = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(isMigrateError(err));
    return `${err.code} ${err.message}`;
  }
  assert.fail('no error');
};

describe('notify: in the batch configuration', () => {
  test('one e-mail and a list of webhooks are read as written', () => {
    const c = load('notify:\n  email: { to: ops@example.com, smtp: "smtps://me@relay.example.com", password: env:X }\n  webhook:\n    - { url: "https://h.example.com/a", header: { Authorization: env:T } }\n    - { url: "http://127.0.0.1:9/b" }\n');
    assert.deepEqual(c.notify, {
      email: { to: ['ops@example.com'], smtp: 'smtps://me@relay.example.com', password: 'env:X' },
      webhooks: [{ url: 'https://h.example.com/a', header: { Authorization: 'env:T' } }, { url: 'http://127.0.0.1:9/b' }],
    });
  });
  test('bad fields are refused with their line and field', () => {
    assert.match(codeAndMessage(() => load('notify:\n  pager: {}\n')), /^MM-BATCH-CONFIG .*servers\.yaml:6:\d+: unknown field notify\.pager/);
    assert.match(codeAndMessage(() => load('notify:\n  email: { to: [ops@example.com], smtp: "smtp://u:secret@relay" }\n')), /servers\.yaml:6:\d+: notify\.email\.smtp: the SMTP URL must not contain a password/);
    assert.doesNotMatch(codeAndMessage(() => load('notify:\n  email: { to: [ops@example.com], smtp: "smtp://u:secret@relay" }\n')), /secret/);
    assert.match(codeAndMessage(() => load('notify:\n  webhook:\n    - { url: "https://ok.example.com" }\n    - { url: "https://u:p@x.example.com" }\n')), /servers\.yaml:8:\d+: notify\.webhook\.url: the webhook URL must not contain a user or password/);
    assert.match(codeAndMessage(() => load('notify:\n  webhook: { url: "https://x.example.com", header: { "Bad Name": v } }\n')), /notify\.webhook\.header must map header names/);
  });
  test('a literal SMTP password is warned about', () => {
    assert.match(load('notify:\n  email: { to: [a@b.example], password: hunter22 }\n').warnings!.join('\n'), /servers\.yaml:6:\d+: notify\.email\.password is written in the file/);
  });
});

describe('resolving notify settings', () => {
  test('SMTP URLs: default ports, user, no password', () => {
    assert.deepEqual(parseSmtpUrl('smtp://relay.example.com'), { secure: false, host: 'relay.example.com', port: 587 });
    assert.deepEqual(parseSmtpUrl('smtps://me@[::1]:2465'), { secure: true, host: '::1', port: 2465, user: 'me' });
    assert.equal(typeof parseSmtpUrl('http://relay'), 'string');
  });
  test('the command line replaces the e-mail part and adds webhooks; secrets are resolved and scrubbed', () => {
    const merged = mergeNotify({ email: { to: ['a@b.example'], password: 'env:PW' }, webhooks: [{ url: 'https://h.example.com', header: { Authorization: 'env:TOK' } }] }, { email: ['c@d.example'], webhook: ['http://127.0.0.1:1/x'] });
    assert.deepEqual(merged.email, { to: ['c@d.example'], password: 'env:PW' });
    assert.equal(merged.webhooks?.length, 2);
    const r = resolveNotify(merged, { PW: 'smtp-pw-unit-1', TOK: 'Bearer tok-unit-2' });
    assert.equal(r.email?.password, 'smtp-pw-unit-1');
    assert.equal(r.email?.smtp.host, 'localhost');
    assert.equal(r.webhooks[0]!.headers.Authorization, 'Bearer tok-unit-2');
    assert.equal(scrub('x smtp-pw-unit-1 y tok-unit-2'), 'x *** y ***');
    assert.match(codeAndMessage(() => resolveNotify(merged, {})), /^MM-BATCH-SECRET .*SMTP password .*PW is not set/);
  });
  test('the summary lists counts and the mailboxes that did not complete', () => {
    const report: BatchReport = {
      version: 1, kind: 'batch', tool: 'mailmover', name: 'b', status: 'partial', startedAt: 's', finishedAt: 'f', parallel: 2,
      totals: { mailboxes: 2, complete: 1, partial: 0, failed: 1, interrupted: 0, notStarted: 0, alreadyComplete: 0, copied: 7, skippedItems: 0, seconds: 1 },
      warnings: [],
      jobs: [
        { line: 2, source: 'imap://a@s', destination: 'imap://a@d', status: 'complete', copied: 7, skipped: 0 },
        { line: 3, source: 'imap://b@s', destination: 'imap://b@d', status: 'failed', code: 'MM-AUTH-FAILED', message: 'no', copied: 0, skipped: 0 },
      ],
    };
    const text = summaryText(report, true);
    assert.match(text, /ended: partial \(interrupted/);
    assert.match(text, /Messages copied: 7/);
    assert.match(text, /line 3: imap:\/\/b@s -> imap:\/\/b@d: failed MM-AUTH-FAILED: no/);
    assert.doesNotMatch(text, /line 2:/);
  });
});

describe('postWebhook against a real HTTP server', () => {
  let server: Server;
  let url: string;
  const answers: (number | 'drop')[] = [];
  let hits = 0;
  before(async () => {
    server = createServer((req, res) => {
      hits++;
      req.resume();
      const a = answers.shift() ?? 200;
      if (a === 'drop') return req.socket.destroy();
      res.statusCode = a;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('a dropped connection is tried once more and then succeeds', async () => {
    hits = 0;
    answers.push('drop', 204);
    await postWebhook(url, '{}', {});
    assert.equal(hits, 2);
  });
  test('a 4xx is not retried', async () => {
    hits = 0;
    answers.push(403);
    await assert.rejects(postWebhook(url, '{}', {}), /\(1 attempt\): HTTP 403/);
    assert.equal(hits, 1);
  });
  test('no answer within the timeout counts as a network error', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(postWebhook(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, '{}', {}, 200), /\(2 attempts\): no answer in 0\.2 s/);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('sendEmail against a real SMTP server (smtp-server on loopback)', () => {
  const message = (port: number, secure: boolean, requireTls: boolean) => ({
    smtp: { secure, host: '127.0.0.1', port },
    requireTls,
    from: 'mm@example.com',
    to: ['ops@example.com'],
    subject: 's',
    text: 't',
    attachments: [],
  });
  let delivered = 0;
  const listen = async (options: ConstructorParameters<typeof SMTPServer>[0]) => {
    const s = new SMTPServer({ logger: false, authOptional: true, onData: (stream, _session, cb) => stream.on('end', () => (delivered++, cb())).resume(), ...options });
    // The server's side of a refused handshake; the client's error is what is asserted.
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { s, port: (s.server.address() as AddressInfo).port };
  };
  test('smtps:// to a certificate that does not verify (smtp-server\'s own self-signed one) is refused', async () => {
    const { s, port } = await listen({ secure: true });
    try {
      await assert.rejects(sendEmail(message(port, true, false)), /certificate|self.signed/i);
    } finally {
      await new Promise((r) => s.close(() => r(undefined)));
    }
  });
  test('requireTls: a server without STARTTLS is refused; the same server without the requirement is used', async () => {
    const { s, port } = await listen({ disabledCommands: ['STARTTLS'] });
    try {
      delivered = 0;
      await assert.rejects(sendEmail(message(port, false, true)));
      assert.equal(delivered, 0);
      await sendEmail(message(port, false, false));
      assert.equal(delivered, 1);
    } finally {
      await new Promise((r) => s.close(() => r(undefined)));
    }
  });
});
