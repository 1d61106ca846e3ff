/**
 * Gmail as a destination (X-GM-EXT-1, the scripted server's label model): each message is
 * appended once, its further folders are labels given with UID STORE +X-GM-LABELS; a rerun
 * neither appends nor labels; a refused label falls back to APPEND and the report says why.
 * The source is another scripted Gmail (every label folder copied as a folder) or a real Dovecot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { seedMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type GmailMessage, type ScriptedImapOptions, type ScriptedImapServer, type StoredFolder } from '../helpers/scripted-imap/server.js';
import { gmail } from '../helpers/scripted-imap/personalities.js';

const raw = (n: number) => Buffer.from(`From: g@example.org\r\nSubject: gmail dest ${n}\r\nMessage-ID: <gd-${n}@example.org>\r\n\r\nbody ${n}\r\n`);
const msg = (n: number, labels: string[], flags: string[] = []): GmailMessage => ({ raw: raw(n), flags, internalDate: new Date(Date.UTC(2024, 4, n)), labels });
/** Six messages, ten folder views (Spam outside All Mail). */
const sourceMessages = () => [
  msg(1, ['\\Inbox', 'Work']),
  msg(2, ['\\Inbox', 'Work/Clients'], ['\\Flagged']),
  msg(3, ['\\Sent'], ['\\Seen']),
  msg(4, ['\\Spam']),
  msg(5, ['Work'], ['\\Answered', '\\Seen']),
  msg(6, ['\\Inbox', 'Work', 'Work/Clients'], ['\\Seen']),
];

/** Each distinct message of a Gmail user once (by bytes), with its labels and flags. */
function messagesOf(box: StoredFolder[]): Map<string, { labels: string[]; flags: string[]; copies: number }> {
  const out = new Map<string, { labels: string[]; flags: string[]; copies: number; ids: Set<string> }>();
  for (const f of box) {
    for (const m of f.messages) {
      const k = m.raw.toString('latin1');
      const e = out.get(k) ?? { labels: [...(m.labels ?? [])].sort(), flags: [...m.flags].sort(), copies: 0, ids: new Set<string>() };
      e.ids.add(m.gmMsgId!);
      e.copies = e.ids.size;
      out.set(k, e);
    }
  }
  return out;
}

const env = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };

describe('Gmail as a destination', () => {
  const servers: ScriptedImapServer[] = [];
  let dovecot: PlainDovecotServer;
  const start = async (o: ScriptedImapOptions) => {
    const s = await startScriptedImap(o);
    servers.push(s);
    return s;
  };
  let dir: string;
  before(async () => {
    dovecot = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-gmail-dest-'));
  });
  after(async () => {
    await Promise.all([dovecot?.stop(), ...servers.map((s) => s.stop())]);
    await rm(dir, { recursive: true, force: true });
  });

  test('Gmail -> Gmail: each message appended once with exactly its labels and flags; a rerun appends and labels nothing', async () => {
    const src = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: sourceMessages() } } });
    const dst = await start({ personality: gmail, users: { bob: { password: 'pw', folders: [], gmail: [] } } });
    // With a ledger: a labelled copy is recorded without a destination UID, and the rerun trusts it.
    const args = ['migrate', '--from', `imap://alice@127.0.0.1:${src.port}`, '--to', `imap://bob@127.0.0.1:${dst.port}`, '--state', path.join(dir, 'state.db'), '--json'];
    const run = await runCli(args, env);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 3000));
    const report = JSON.parse(run.stdout) as { totals: { copied: number; labelled?: number } };
    const want = messagesOf(src.mailbox('alice'));
    const got = messagesOf(dst.mailbox('bob'));
    assert.equal(got.size, 6);
    for (const [bytes, w] of want) {
      const g = got.get(bytes);
      assert.ok(g, `arrived: ${bytes.slice(0, 60)}`);
      assert.equal(g.copies, 1, 'one message in the account, not one per folder');
      assert.deepEqual(g.labels, w.labels, `labels of ${bytes.split('\r\n')[1]}`);
      assert.deepEqual(g.flags, w.flags, `flags of ${bytes.split('\r\n')[1]}`);
    }
    const stats = dst.stats('bob');
    assert.equal(stats.appends, 6, 'one APPEND per distinct message, not per folder view (10)');
    assert.equal(stats.appendedBytes, [1, 2, 3, 4, 5, 6].reduce((n, i) => n + raw(i).length, 0));
    // m1 Work, m2 Work/Clients, m6 Work and Work/Clients: one STORE per label and folder the copies are addressed in.
    assert.ok(stats.labelStores >= 2 && stats.labelStores <= 4, String(stats.labelStores));
    assert.equal(report.totals.labelled, 4);
    assert.equal(report.totals.copied, 10);

    const logBefore = dst.log.length;
    const again = await runCli(args, env);
    assert.equal(again.code, 0, again.stderr + again.stdout.slice(0, 3000));
    const after = dst.stats('bob');
    assert.equal(after.appends, 6, 'a rerun appends nothing');
    assert.equal(after.labelStores, stats.labelStores, 'a rerun labels nothing');
    assert.equal(after.flagStores, stats.flagStores, 'a rerun changes no flags');
    assert.equal((JSON.parse(again.stdout) as { totals: { copied: number } }).totals.copied, 0);
    const rerunLog = dst.log.slice(logBefore);
    assert.ok(rerunLog.length > 0);
    // verify finds every copy, the labelled ones by content in their folders' listings.
    const verify = await runCli(['verify', '--from', `imap://alice@127.0.0.1:${src.port}`, '--to', `imap://bob@127.0.0.1:${dst.port}`], env);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    assert.ok(!rerunLog.some((l) => / (APPEND|UID STORE|STORE) /i.test(l)), rerunLog.filter((l) => /APPEND|STORE/i.test(l)).join('\n'));
  });

  test('Dovecot -> Gmail: a message in two folders is appended once and labelled twice', async () => {
    await dovecot.addUser('dv1', 'pw');
    const x = { raw: raw(10), flags: ['\\Seen'], internalDate: new Date(Date.UTC(2024, 5, 1)) };
    const y = { raw: raw(11), flags: [], internalDate: new Date(Date.UTC(2024, 5, 2)) };
    await seedMailbox(dovecot, 'dv1', 'pw', [
      { path: ['INBOX'], subscribed: true, messages: [x, y] },
      { path: ['Archive'], subscribed: true, messages: [x] },
      { path: ['Projects'], subscribed: true, messages: [x] },
    ]);
    const dst = await start({ personality: gmail, users: { carol: { password: 'pw', folders: [], gmail: [] } } });
    const run = await runCli(['migrate', '--from', `imap://dv1@127.0.0.1:${dovecot.port}`, '--to', `imap://carol@127.0.0.1:${dst.port}`, '--no-state', '--json'], env);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 3000));
    const got = messagesOf(dst.mailbox('carol'));
    assert.equal(got.size, 2);
    assert.deepEqual(got.get(x.raw.toString('latin1'))?.labels, ['Archive', 'Projects', '\\Inbox'].sort());
    assert.equal(got.get(x.raw.toString('latin1'))?.copies, 1);
    assert.deepEqual(got.get(x.raw.toString('latin1'))?.flags, ['\\Seen']);
    assert.deepEqual(got.get(y.raw.toString('latin1'))?.labels, ['\\Inbox']);
    assert.equal(dst.stats('carol').appends, 2);
    assert.equal(dst.stats('carol').labelStores, 2, 'Archive and Projects');
  });

  test('a refused STORE +X-GM-LABELS falls back to APPEND, and the report says why in the server\'s words', async () => {
    const src = await start({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: sourceMessages() } } });
    const refusal = 'NO [CANNOT] Too many labels on this message (Failure)';
    const dst = await start({ personality: gmail, users: { dave: { password: 'pw', folders: [], gmail: [] } }, faults: { dave: { labelStoreFailures: [{ times: 1, response: refusal }] } } });
    const run = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${src.port}`, '--to', `imap://dave@127.0.0.1:${dst.port}`, '--no-state', '--json'], env);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 3000));
    const report = JSON.parse(run.stdout) as { totals: { copied: number; labelled?: number; labelFallbacks?: number }; folders: { source: string; labelFallbacks?: { uid: number; code: string; reason: string }[] }[] };
    const fallbacks = report.folders.flatMap((f) => f.labelFallbacks ?? []);
    assert.ok(fallbacks.length >= 1, JSON.stringify(report.folders));
    for (const f of fallbacks) {
      assert.equal(f.code, 'MM-GMAIL-LABEL-REFUSED');
      assert.match(f.reason, /Too many labels on this message/);
    }
    assert.equal(report.totals.labelFallbacks, fallbacks.length);
    assert.equal(report.totals.copied, 10, 'every folder view arrived');
    const stats = dst.stats('dave');
    assert.equal(stats.appends, 6 + fallbacks.length, 'each refused label cost one APPEND');
    assert.ok(stats.labelStores >= 1, 'the other labels were given');
    assert.equal((report.totals.labelled ?? 0) + fallbacks.length, 4);
    // Every view is there: each folder lists each of its messages.
    const box = dst.mailbox('dave');
    const count = (name: string) => box.find((f) => f.name === name)?.messages.length;
    assert.equal(count('INBOX'), 3);
    assert.equal(count('Work'), 3);
    assert.equal(count('Work/Clients'), 2);
    const human = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${src.port}`, '--to', `imap://dave@127.0.0.1:${dst.port}`, '--no-state'], env);
    assert.equal(human.code, 0, human.stderr + human.stdout);
    assert.equal(dst.stats('dave').appends, stats.appends, 'the rerun appends nothing');
  });
});
