/**
 * Per-server limits shared by every mailbox: a connection cap (checked on a scripted source that
 * counts its open connections while four mailboxes migrate at once) and message rates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { ServerGate } from '../../src/copy/retry-policy.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox } from '../helpers/fixture.js';
import { startScriptedImap, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const messages = (user: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    raw: Buffer.from(`From: l@example.org\r\nSubject: ${user} ${i}\r\nMessage-ID: <${user}-${i}@limits.test>\r\n\r\n${'x'.repeat(500 + i)}\r\n`),
    flags: i % 2 ? ['\\Seen'] : [],
    internalDate: new Date(Date.UTC(2022, 1, 1 + i)),
    uid: i + 1,
  }));

describe('per-server limits', () => {
  let source: ScriptedImapServer;
  let dest: PlainDovecotServer;
  const users = ['ann', 'ben', 'cat', 'dan'];
  before(async () => {
    source = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: Object.fromEntries(
        users.map((u) => [u, { password: 'pw', folders: [{ name: 'INBOX', subscribed: true, messages: messages(u, 30) }, { name: 'Archive', subscribed: true, messages: messages(`${u}-a`, 20) }] }]),
      ),
    });
    dest = await startDovecot({ tls: false });
    for (const u of users) await dest.addUser(u, 'pw');
  });
  after(async () => Promise.all([source?.stop(), dest?.stop()]));

  test('four mailboxes at once through a cap of 2 source connections: never more than 2 open, all exact', async () => {
    const gates = { source: new ServerGate({ maxConnections: 2 }), destination: new ServerGate() };
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, source.connections())), 2);
    try {
      const reports = await Promise.all(
        users.map((u) =>
          migrateChecked({
            from: { url: `imap://${u}@127.0.0.1:${source.port}`, password: 'pw' },
            to: { url: `imap://${u}@127.0.0.1:${dest.port}`, password: 'pw' },
            connections: 2,
            serverGates: gates,
            batchMessages: 5,
          }, { skipVerify: 'verify connects outside the shared connection gates whose cap this test samples' }),
        ),
      );
      for (const r of reports) assert.equal(r.status, 'complete', JSON.stringify(r.error));
    } finally {
      clearInterval(sampler);
    }
    assert.ok(most >= 1 && most <= 2, `at most 2 source connections were open (saw ${most})`);
    for (const u of users) {
      const got = await readMailbox(dest, u, 'pw');
      assert.equal(got.find((f) => f.path[0] === 'INBOX')!.messages.length, 30);
      assert.equal(got.find((f) => f.path[0] === 'Archive')!.messages.length, 20);
    }
  });

  test('a message rate is kept over the whole run', async () => {
    await dest.addUser('ann2', 'pw');
    const started = Date.now();
    const report = await migrateChecked({
      from: { url: `imap://ann@127.0.0.1:${source.port}`, password: 'pw' },
      to: { url: `imap://ann2@127.0.0.1:${dest.port}`, password: 'pw' },
      limits: { maxMessagesPerSecond: 50 },
      batchMessages: 10,
      connections: 1,
    });
    const took = Date.now() - started;
    assert.equal(report.status, 'complete');
    assert.equal(report.totals.copied, 50);
    // 50 messages at 50 a second, booked 10 at a time: the last batch may start after 0.8 s.
    assert.ok(took >= 800, `50 messages at 50/s took ${took} ms`);
  });
});
