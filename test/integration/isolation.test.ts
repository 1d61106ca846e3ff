/**
 * One bad item never fails the mailbox. The fault comes from a real Dovecot: the destination
 * refuses a message (quota plugin: quota_max_mail_size) with NO. Everything else arrives, the bad
 * item is reported with the server's own words, exit code 3.
 * (A source that cannot read a message is Dovecot's "Disconnected: FETCH failed", a connection
 * loss: see faults.test.ts, which isolates it.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

interface Report {
  status: string;
  totals: { copied: number; skipped: number };
  items: { folder: string; uid: number; messageId?: string; size: number; code: string; reason: string }[];
}

const msg = (i: number, size = 200) => ({
  raw: Buffer.from(`From: iso@example.org\r\nSubject: item ${i}\r\nMessage-ID: <iso-${i}@x>\r\n\r\n${'z'.repeat(size)}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2022, 5, 1 + i)),
});

describe('item isolation against real Dovecot faults', () => {
  let source: DovecotServer;
  let dest: DovecotServer;
  const folders: FixtureFolder[] = [
    // The 70 KB message (index 5) is over the destination's 64 KB message size limit.
    { path: ['INBOX'], subscribed: true, messages: Array.from({ length: 12 }, (_, i) => msg(i, i === 5 ? 70_000 : 200)) },
    { path: ['Other'], subscribed: true, messages: Array.from({ length: 8 }, (_, i) => msg(100 + i)) },
  ];

  before(async () => {
    source = await startDovecot();
    dest = await startDovecot({
      extraConfig: ['mail_plugins = $mail_plugins quota', 'plugin {', '  quota = count:User quota', '  quota_vsizes = yes', '  quota_max_mail_size = 64k', '}'].join('\n'),
    });
    await source.addUser('src', 'src-pw');
    await seedMailbox(source, 'src', 'src-pw', folders);
  });
  after(async () => Promise.all([source?.stop(), dest?.stop()]));

  test('a message the destination refuses is skipped and reported; the rest arrives; exit 3', async () => {
    await dest.addUser('d1', 'd1-pw');
    const run = await runCli(['migrate', '--from', source.url('src'), '--to', dest.url('d1'), '--from-tls-insecure', '--to-tls-insecure', '--json'], {
      MAILMOVER_FROM_PASSWORD: 'src-pw',
      MAILMOVER_TO_PASSWORD: 'd1-pw',
    });
    assert.equal(run.code, 3, run.stderr);
    const r = JSON.parse(run.stdout) as Report;
    assert.equal(r.status, 'partial');
    assert.equal(r.items.length, 1);
    const [item] = r.items;
    assert.equal(item!.code, 'MM-APPEND-FAILED');
    assert.equal(item!.messageId, 'iso-5@x');
    assert.equal(item!.folder, 'INBOX');
    assert.ok(item!.size > 64 * 1024);
    assert.match(item!.reason, /NO/, 'the server response is quoted');
    const got = await readMailbox(dest, 'd1', 'd1-pw');
    assert.equal(got.find((f) => f.path[0] === 'INBOX')!.messages.length, 11);
    assert.equal(got.find((f) => f.path[0] === 'Other')!.messages.length, 8);
  });
});
