/**
 * The bench's independent archive reader (bench/read-archive.py, Python's stdlib `mailbox`): a
 * hand-written mbox tree and Maildir tree read back into message bytes (CRLF, as IMAP serves them),
 * flags, keywords, INTERNALDATE and folder names. The bench's fidelity verdicts for
 * mailmover-to-mbox and mbsync-to-maildir rest on it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readArchive } from '../../bench/archive-read.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-read-archive-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sha = (s: string) => createHash('sha256').update(Buffer.from(s, 'latin1')).digest('hex');

test('mbox tree: store headers become flags, Content-Length bounds the body, >From is unquoted, dates from the From line', async () => {
  const root = join(dir, 'mbox');
  mkdirSync(join(root, 'Archive'), { recursive: true });
  // message 1: flags in the store's headers, a body without a final line end bounded by Content-Length
  // message 2: no Content-Length, an mboxrd-quoted ">From " line in the body
  writeFileSync(
    join(root, 'inbox'),
    'From a@example.org Tue Jan  1 10:20:30 2019\n' +
      'From: a@example.org\nSubject: one\nStatus: RO\nX-Status: AF\nX-Keywords: Work $Forwarded\nContent-Length: 9\n\nline\nlast\n' +
      'From b@example.org Wed Feb 13 00:00:05 2019\n' +
      'From: b@example.org\nSubject: two\nStatus: O\n\n>From the start\nend\n\n',
  );
  writeFileSync(join(root, 'Archive', 'Gr&APwA3w-e'), 'From c@example.org Mon Mar  4 05:06:07 2024\nSubject: three\n\nbody\n\n');
  writeFileSync(join(root, '.subscriptions'), 'INBOX\n');
  const snap = await readArchive('mbox', root);
  const inbox = snap.folders.get('INBOX');
  assert.ok(inbox);
  assert.equal(inbox.messages.length, 2);
  const [one, two] = inbox.messages;
  assert.equal(one!.sha256, sha('From: a@example.org\r\nSubject: one\r\n\r\nline\r\nlast'));
  assert.deepEqual(one!.flags, ['$Forwarded', 'Work', '\\Answered', '\\Flagged', '\\Seen'].sort());
  assert.equal(one!.internalDate, Date.UTC(2019, 0, 1, 10, 20, 30));
  assert.equal(two!.sha256, sha('From: b@example.org\r\nSubject: two\r\n\r\nFrom the start\r\nend\r\n'));
  assert.deepEqual(two!.flags, []);
  assert.equal(two!.internalDate, Date.UTC(2019, 1, 13, 0, 0, 5));
  assert.equal(snap.folders.get('Archive')?.noSelect, true);
  const grusse = snap.folders.get('Archive/Grüße');
  assert.equal(grusse?.messages.length, 1);
  assert.equal(grusse!.messages[0]!.sha256, sha('Subject: three\r\n\r\nbody\r\n'));
  assert.equal(snap.messages, 3);
});

test('Maildir tree: info flags, keyword letters through dovecot-keywords, mtime as date, mUTF-7 names, LF made CRLF', async () => {
  const root = join(dir, 'maildir');
  const inbox = join(root, 'INBOX');
  const jp = join(root, '&ZeVnLIqe-');
  for (const d of [inbox, jp]) for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d, sub), { recursive: true });
  const f1 = join(inbox, 'cur', '1700000000.M1P1.host,S=20:2,FS');
  writeFileSync(f1, 'Subject: x\n\nhello\n');
  utimesSync(f1, new Date(Date.UTC(2020, 5, 1)), new Date(Date.UTC(2020, 5, 1)));
  writeFileSync(join(jp, 'dovecot-keywords'), '0 Work\n1 $Label1\n');
  const f2 = join(jp, 'cur', '1700000001.M2P1.host:2,RSb');
  writeFileSync(f2, 'Subject: y\r\n\r\nbody\r\n');
  utimesSync(f2, new Date(Date.UTC(2021, 2, 3, 4, 5, 6)), new Date(Date.UTC(2021, 2, 3, 4, 5, 6)));
  const snap = await readArchive('maildir', root, { inbox });
  const m1 = snap.folders.get('INBOX')!.messages[0]!;
  assert.equal(m1.sha256, sha('Subject: x\r\n\r\nhello\r\n'));
  assert.deepEqual(m1.flags, ['\\Flagged', '\\Seen']);
  assert.equal(m1.internalDate, Date.UTC(2020, 5, 1));
  const m2 = snap.folders.get('日本語')!.messages[0]!;
  assert.equal(m2.sha256, sha('Subject: y\r\n\r\nbody\r\n'));
  assert.deepEqual(m2.flags, ['$Label1', '\\Answered', '\\Seen']);
  assert.equal(m2.internalDate, Date.UTC(2021, 2, 3, 4, 5, 6));
});
