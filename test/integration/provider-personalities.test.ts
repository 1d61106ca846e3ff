/**
 * The scripted IMAP server's provider personalities, over real sockets:
 * - Gmail (X-GM-EXT-1 with labels): each message once in [Gmail]/All Mail, label folders as views
 *   of it (same X-GM-MSGID, shared flags), X-GM-LABELS in FETCH, STORE +/-X-GM-LABELS, APPEND
 *   counted, the bandwidth limit answer; checked with imapflow, then migrated into a real Dovecot
 *   (with --gmail-labels off: each label folder is copied as listed, All Mail is left out; the label
 *   modes are in gmail-labels.test.ts);
 * - Exchange Online: throttling with a suggested backoff, "User is authenticated but not
 *   connected." sessions, the 35 MB APPEND limit; checked with imapflow, then migrations through
 *   them with a real Dovecot on the other side.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type GmailMessage, type ScriptedImapOptions, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { exchangeOnline, gmail } from '../helpers/scripted-imap/personalities.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const msg = (n: number, labels: string[], flags: string[] = []): GmailMessage => ({
  raw: Buffer.from(`From: p@example.org\r\nSubject: personality ${n}\r\nMessage-ID: <p-${n}@example.org>\r\n\r\nbody ${n}\r\n`),
  flags,
  internalDate: new Date(Date.UTC(2024, 2, n)),
  labels,
});
/** m1 Inbox+Work, m2 Inbox+Work/Clients+Important (starred), m3 Sent, m4 Spam, m5 Work. */
const gmailMessages = () => [msg(1, ['\\Inbox', 'Work']), msg(2, ['\\Inbox', 'Work/Clients', '\\Important'], ['\\Flagged']), msg(3, ['\\Sent'], ['\\Seen']), msg(4, ['\\Spam']), msg(5, ['Work'])];

async function client(srv: ScriptedImapServer, user = 'alice'): Promise<ImapFlow> {
  const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user, pass: 'pw' }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
async function fetchAll(c: ImapFlow, folder: string) {
  const lock = await c.getMailboxLock(folder, { readOnly: true });
  try {
    const out = [];
    // emailId (X-GM-MSGID) and threadId (X-GM-THRID) are imapflow query keys its types do not list.
    const query = { uid: true, flags: true, source: true, labels: true, emailId: true, threadId: true } as Parameters<ImapFlow['fetch']>[1];
    for await (const m of c.fetch('1:*', query)) out.push(m);
    return out;
  } finally {
    lock.release();
  }
}

/** Sends command lines over a plain socket and resolves with the tagged answer of `tag`. */
function rawAnswers(port: number, lines: string[], tag: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const m = new RegExp(`^${tag} .*$`, 'm').exec(buf);
      if (m) {
        socket.destroy();
        resolve(m[0].replace(/\r$/, ''));
      }
    });
    socket.write(lines.map((l) => `${l}\r\n`).join(''));
  });
}

describe('provider personalities of the scripted IMAP server', () => {
  let dest: PlainDovecotServer;
  let dir: string;
  const servers: ScriptedImapServer[] = [];
  const start = async (o: ScriptedImapOptions) => {
    const s = await startScriptedImap(o);
    servers.push(s);
    return s;
  };
  before(async () => {
    dest = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-personalities-'));
  });
  after(async () => {
    await Promise.all([dest?.stop(), ...servers.map((s) => s.stop())]);
    await rm(dir, { recursive: true, force: true });
  });

  test('gmail: All Mail holds each message once, label folders are views with the same X-GM-MSGID and shared flags', async () => {
    const srv = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: gmailMessages() } } });
    const c = await client(srv);
    try {
      const list = await c.list();
      const names = list.map((e) => e.path).sort();
      assert.deepEqual(names, ['INBOX', 'Work', 'Work/Clients', '[Gmail]', '[Gmail]/All Mail', '[Gmail]/Drafts', '[Gmail]/Important', '[Gmail]/Sent Mail', '[Gmail]/Spam', '[Gmail]/Starred', '[Gmail]/Trash'].sort());
      assert.equal(list.find((e) => e.path === '[Gmail]/All Mail')?.specialUse, '\\All');
      const all = await fetchAll(c, '[Gmail]/All Mail');
      assert.deepEqual(all.map((m) => m.source!.toString()).sort(), [1, 2, 3, 5].map((n) => msg(n, []).raw.toString()).sort(), 'every message but Spam, once');
      assert.equal(new Set(all.map((m) => m.emailId)).size, 4);
      const idOf = new Map(all.map((m) => [sha(m.source!), m.emailId]));
      const inbox = await fetchAll(c, 'INBOX');
      assert.deepEqual(inbox.map((m) => m.emailId), [1, 2].map((n) => idOf.get(sha(msg(n, []).raw))));
      assert.deepEqual([...inbox[0]!.labels!].sort(), ['Work', '\\Inbox']);
      assert.deepEqual([...inbox[1]!.labels!].sort(), ['Work/Clients', '\\Important', '\\Inbox']);
      assert.equal(inbox[1]!.threadId, inbox[1]!.emailId);
      const work = await fetchAll(c, 'Work');
      assert.deepEqual(work.map((m) => m.emailId), [1, 5].map((n) => idOf.get(sha(msg(n, []).raw))));
      assert.deepEqual((await fetchAll(c, '[Gmail]/Starred')).map((m) => m.emailId), [idOf.get(sha(msg(2, []).raw))]);
      assert.equal((await fetchAll(c, '[Gmail]/Spam')).length, 1);

      // STORE: a flag set in one view shows in every view; labels added and removed move the views.
      await c.mailboxOpen('Work');
      await c.messageFlagsAdd('1', ['\\Seen'], { uid: true });
      await c.messageFlagsAdd('1', ['Projects'], { uid: true, useLabels: true });
      await c.messageFlagsRemove('2', ['Work'], { uid: true, useLabels: true });
      await c.mailboxClose();
      const m1 = idOf.get(sha(msg(1, []).raw));
      assert.ok((await fetchAll(c, '[Gmail]/All Mail')).find((m) => m.emailId === m1)!.flags!.has('\\Seen'));
      assert.deepEqual((await fetchAll(c, 'Projects')).map((m) => m.emailId), [m1]);
      assert.deepEqual((await fetchAll(c, 'Work')).map((m) => m.emailId), [m1], 'm5 lost its Work label');
      assert.equal((await fetchAll(c, '[Gmail]/All Mail')).length, 4, 'and is still in All Mail');
      const stored = srv.mailbox('alice').find((f) => f.name === 'INBOX')!.messages[0]!;
      assert.deepEqual(stored.labels!.sort(), ['Projects', 'Work', '\\Inbox']);

      // APPEND: counted; the message is labelled by its folder and shown in All Mail.
      const raw = Buffer.from('From: a@example.org\r\nSubject: appended\r\n\r\nhi\r\n');
      await c.append('Work/Clients', raw, [], new Date('2024-05-01T00:00:00Z'));
      assert.deepEqual(srv.stats('alice').appends, 1);
      assert.equal(srv.stats('alice').appendedBytes, raw.length);
      const appended = (await fetchAll(c, '[Gmail]/All Mail')).find((m) => m.source!.equals(raw))!;
      assert.deepEqual([...appended.labels!], ['Work/Clients']);
    } finally {
      await c.logout();
    }
  });

  test('gmail: the bandwidth limit answers [OVERQUOTA] "Account exceeded command or bandwidth limits"', async () => {
    const srv = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: gmailMessages() } }, faults: { alice: { bandwidthLimit: { downloadBytes: 1, uploadBytes: 10 } } } });
    const c = await client(srv);
    try {
      await c.mailboxOpen('INBOX', { readOnly: true });
      const first = await c.fetchOne('1', { source: true });
      assert.ok(first && first.source);
      const overquota = (e: Error & { responseText?: string }) => {
        assert.equal(e.responseText, 'Account exceeded command or bandwidth limits. (Failure)');
        return true;
      };
      await assert.rejects(c.fetchOne('2', { source: true }), overquota);
      await assert.rejects(c.append('INBOX', Buffer.from('Subject: x\r\n\r\nmore than ten bytes\r\n')), overquota);
      assert.equal(srv.stats('alice').appends, 0);
      // The response code, as it goes on the wire.
      const words = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: gmailMessages() } }, faults: { alice: { bandwidthLimit: { downloadBytes: 1 } } } });
      assert.equal(await rawAnswers(words.port, ['a LOGIN alice pw', 'b SELECT INBOX', 'c FETCH 1 (BODY.PEEK[])', 'd FETCH 1 (BODY.PEEK[])'], 'd'), 'd NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)');
    } finally {
      await c.logout();
    }
  });

  test('exchange-online: throttled answers with a suggested backoff, a half-open session, the APPEND size limit, no MULTIAPPEND', async () => {
    const small = { ...exchangeOnline, maxAppendBytes: 200 };
    const srv = await start({
      personality: small,
      users: { alice: { password: 'pw', folders: [{ name: 'INBOX', messages: gmailMessages().map((m) => ({ raw: m.raw, flags: m.flags, internalDate: m.internalDate })) }] } },
      faults: { alice: { notConnected: { sessions: 1 }, throttle: { every: 2, commands: ['UID FETCH'], backoffMs: 50, times: 1 } } },
    });
    assert.ok(!small.capabilities.includes('MULTIAPPEND') && !(small.capabilitiesAfterLogin ?? []).includes('MULTIAPPEND'));
    // The words on the wire, read with a plain socket.
    const words = await start({ personality: small, users: { alice: { password: 'pw', folders: [{ name: 'INBOX', messages: [{ raw: Buffer.from('Subject: a\r\n\r\nb\r\n'), flags: [], internalDate: new Date() }] }] } }, faults: { alice: { throttle: { every: 1, commands: ['UID FETCH'], backoffMs: 50 } } } });
    assert.equal(await rawAnswers(words.port, ['a LOGIN alice pw', 'b SELECT INBOX', 'c UID FETCH 1 (UID)'], 'c'), 'c NO Request is throttled. Suggested Backoff Time: 50 milliseconds');
    const half = await client(srv);
    await assert.rejects(half.mailboxOpen('INBOX'), (e: Error & { responseText?: string }) => e.responseText === 'User is authenticated but not connected.');
    await half.logout().catch(() => undefined);
    const c = await client(srv);
    try {
      await c.mailboxOpen('INBOX');
      assert.ok(await c.fetchOne('1', { source: true }, { uid: true }));
      // imapflow itself waits the suggested backoff and repeats the command: the wire shows both.
      assert.ok(await c.fetchOne('2', { source: true }, { uid: true }), 'throttled once, then served');
      const at = srv.log.findIndex((l) => /fault: throttled/.test(l));
      assert.ok(at > 0 && /UID FETCH 2/.test(srv.log[at - 1]!) && /UID FETCH 2/.test(srv.log[at + 1]!), srv.log.join('\n'));
      await assert.rejects(c.append('INBOX', Buffer.alloc(201, 'x')), (e: Error & { responseText?: string }) => /exceeds the maximum message size of 35 MB/.test(e.responseText ?? ''));
      assert.ok(await c.append('INBOX', Buffer.from('Subject: fits\r\n\r\nok\r\n')));
      assert.equal(srv.stats('alice').appends, 1);
    } finally {
      await c.logout();
    }
  });

  test('migrate from exchange-online into Dovecot completes despite throttling and a half-open session', async () => {
    const messages = gmailMessages().map((m) => ({ raw: m.raw, flags: m.flags, internalDate: m.internalDate }));
    const srv = await start({
      personality: exchangeOnline,
      users: { alice: { password: 'pw', folders: [{ name: 'INBOX', subscribed: true, messages }, { name: 'Sent Items', attributes: ['\\Sent'], subscribed: true, messages: messages.slice(0, 2) }, { name: 'Calendar' }, { name: 'Sync Issues' }] } },
      faults: { alice: { notConnected: { sessions: 1 }, throttle: { every: 2, commands: ['UID FETCH', 'FETCH'], backoffMs: 30, times: 3 } } },
    });
    await dest.addUser('eo1', 'dst-pw');
    const run = await runCli(['migrate', '--from-preset', 'm365', '--from', `imap://alice@127.0.0.1:${srv.port}`, '--to', `imap://eo1@127.0.0.1:${dest.port}`, '--no-state', '--retry-delay', '0.05', '--json'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 2000));
    assert.ok(srv.log.some((l) => /fault: authenticated but not connected/.test(l)) && srv.log.some((l) => /fault: throttled/.test(l)), 'both faults happened');
    const got = await readMailbox(dest, 'eo1', 'dst-pw');
    const inbox = got.find((f) => f.path.join('/') === 'INBOX')!;
    assert.deepEqual(inbox.messages.map((m) => m.sha256).sort(), messages.map((m) => sha(m.raw)).sort());
    assert.equal(got.find((f) => f.path.join('/') === 'Sent')!.messages.length, 2);
    assert.ok(!got.some((f) => /Calendar|Sync Issues/.test(f.path.join('/'))), 'the preset left Calendar and Sync Issues out');
  });

  test('into exchange-online: an item over 35 MB is reported with the server\'s words; with --to-preset m365 it is not even sent', async () => {
    const big = Buffer.concat([Buffer.from('From: b@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n'), Buffer.alloc(35 * 1024 * 1024 + 100, 'x'), Buffer.from('\r\n')]);
    const smalls = [1, 2].map((n) => msg(n, []));
    await dest.addUser('eo2', 'src-pw');
    await seedMailbox(dest, 'eo2', 'src-pw', [{ path: ['INBOX'], subscribed: true, messages: [...smalls.map((m) => ({ raw: m.raw, flags: [], internalDate: m.internalDate })), { raw: big, flags: [], internalDate: new Date(Date.UTC(2024, 0, 9)) }] }]);
    const target = () => start({ personality: exchangeOnline, users: { bob: { password: 'pw', folders: [{ name: 'INBOX', subscribed: true }] } }, limits: { maxLiteralBytes: 40 * 1024 * 1024, maxCommandBytes: 41 * 1024 * 1024 } });
    const srv = await target();
    const report = path.join(dir, 'eo2.json');
    const args = (port: number) => ['migrate', '--from', `imap://eo2@127.0.0.1:${dest.port}`, '--to', `imap://bob@127.0.0.1:${port}`, '--no-state', '--report', report];
    const run = await runCli(args(srv.port), { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(run.code, 3, run.stderr + run.stdout);
    const r = JSON.parse(await readFile(report, 'utf8')) as { skipped?: { code: string; reason?: string; serverResponse?: string }[]; folders: { skippedItems?: { code: string; reason?: string }[] }[] };
    assert.match(JSON.stringify(r), /exceeds the maximum message size of 35 MB/);
    assert.match(run.stdout + run.stderr, /exceeds the maximum message size of 35 MB/);
    assert.deepEqual(srv.mailbox('bob')[0]!.messages.map((m) => sha(m.raw)).sort(), smalls.map((m) => sha(m.raw)).sort());
    assert.ok(srv.log.some((l) => /over the 36700160-byte APPEND limit/.test(l)));

    const srv2 = await target();
    const run2 = await runCli([...args(srv2.port), '--to-preset', 'm365'], { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(run2.code, 3, run2.stderr + run2.stdout);
    assert.match(await readFile(report, 'utf8'), /MM-MESSAGE-TOO-LARGE/);
    assert.ok(!srv2.log.some((l) => /APPEND limit/.test(l)), 'the preset\'s limit kept it from being sent');
    assert.equal(srv2.mailbox('bob')[0]!.messages.length, 2);
  });

  test('migrate from gmail into Dovecot with --gmail-labels off: each label folder is copied as listed, All Mail is left out', async () => {
    const srv = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: gmailMessages() } } });
    await dest.addUser('gm1', 'dst-pw');
    const run = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${srv.port}`, '--to', `imap://gm1@127.0.0.1:${dest.port}`, '--no-state', '--json', '--gmail-labels', 'off'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 2000));
    const got = await readMailbox(dest, 'gm1', 'dst-pw');
    const shas = (name: string) => got.find((f) => f.path.join('/') === name)?.messages.map((m) => m.sha256).sort();
    const of = (...n: number[]) => n.map((i) => sha(msg(i, []).raw)).sort();
    assert.deepEqual(shas('INBOX'), of(1, 2));
    assert.deepEqual(shas('Work'), of(1, 5));
    assert.deepEqual(shas('Work/Clients'), of(2));
    assert.deepEqual(shas('Sent'), of(3));
    assert.ok(!got.some((f) => /All Mail|Starred|Important/.test(f.path.join('/'))), got.map((f) => f.path.join('/')).join(', '));
    assert.equal(srv.stats('alice').fetchedBodyBytes, [1, 2, 1, 5, 2, 3, 4].reduce((n, i) => n + msg(i, []).raw.length, 0), 'a message with two labels is read twice with --gmail-labels off');
  });
});
