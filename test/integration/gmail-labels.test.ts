/**
 * A Gmail source read by its labels (--gmail-labels, issue 17): the scripted server's Gmail
 * personality (X-GM-EXT-1, All Mail, label folders as views) migrated into a real Dovecot in each
 * mode, the destination read back independently (exact bytes, flags and keywords, dates, folders).
 * Also: All Mail is listed once (no label folder is opened at the source), each body is fetched at
 * most once per copy, a rerun copies nothing, and in `first` mode a message whose labels changed
 * is not copied again, with a SQLite and a PostgreSQL ledger.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, type ReadBackFolder } from '../helpers/fixture.js';
import { runCli, type CliCheck } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { startScriptedImap, type GmailMessage, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { gmail } from '../helpers/scripted-imap/personalities.js';

/** verify pairs folders as the source lists them; it does not read a Gmail source by its labels yet. */
/** The runs whose source commands a test counts: runCli's verify would add its own. The rerun after each is verified. */
const COUNTED = { skipVerify: "this run's commands at the source are counted; the rerun after it is verified" };
/** verify places by today's labels; `first` keeps a relabelled message where an earlier run put it (README, "Gmail labels"). */
const KEPT = { skipVerify: 'a relabelled message stays where the first run placed it; verify places by the current labels' };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const raw = (n: number) => Buffer.from(`From: g@example.org\r\nSubject: label ${n}\r\nMessage-ID: <gl-${n}@example.org>\r\n\r\nbody ${n}\r\n`);
const msg = (n: number, labels: string[], flags: string[] = []): GmailMessage => ({ raw: raw(n), flags, internalDate: new Date(Date.UTC(2024, 4, n, 10, 0, 0)), labels });
/**
 * 1 Inbox+Work (seen), 2 Inbox+Work/Clients+Important (starred), 3 Sent, 4 Draft, 5 Work,
 * 6 archived (no label), 7 Spam, 8 Trash, 9 "Team Notes" (a label with a space).
 */
const messages = () => [
  msg(1, ['\\Inbox', 'Work'], ['\\Seen']),
  msg(2, ['\\Inbox', 'Work/Clients', '\\Important'], ['\\Flagged']),
  msg(3, ['\\Sent'], ['\\Seen']),
  msg(4, ['\\Draft'], ['\\Draft']),
  msg(5, ['Work']),
  msg(6, [], ['\\Seen']),
  msg(7, ['\\Spam']),
  msg(8, ['\\Trash']),
  msg(9, ['Team Notes']),
];

/** Folder -> message numbers, and number -> flags, of a destination read back. */
function placed(got: ReadBackFolder[]): { where: Record<string, number[]>; flags: Map<number, string[]>; dates: Map<number, number> } {
  const bySha = new Map(Array.from({ length: 9 }, (_, i) => [sha(raw(i + 1)), i + 1]));
  const where: Record<string, number[]> = {};
  const flags = new Map<number, string[]>();
  const dates = new Map<number, number>();
  for (const f of got) {
    if (f.noSelect) continue;
    const nums = f.messages.map((m) => {
      const n = bySha.get(m.sha256);
      assert.ok(n, `unknown bytes in ${f.path.join('/')}`);
      flags.set(n, m.flags);
      dates.set(n, m.internalDate);
      return n;
    });
    where[f.path.join('/')] = nums.sort((a, b) => a - b);
  }
  return { where, flags, dates };
}

describe('Gmail labels as a source (--gmail-labels)', () => {
  let dest: PlainDovecotServer;
  let dir: string;
  const servers: ScriptedImapServer[] = [];
  before(async () => {
    dest = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-gmail-labels-'));
  });
  after(async () => {
    await Promise.all([dest?.stop(), ...servers.map((s) => s.stop())]);
    await rm(dir, { recursive: true, force: true });
  });
  const source = async () => {
    const s = await startScriptedImap({ personality: gmail, users: { alice: { password: 'pw', folders: [], gmail: messages() } } });
    servers.push(s);
    return s;
  };
  const states = new Map<string, string>();
  const migrate = (srv: ScriptedImapServer, user: string, extra: string[], check: CliCheck = {}) =>
    runCli(['migrate', '--from', `imap://alice@127.0.0.1:${srv.port}`, '--to', `imap://${user}@127.0.0.1:${dest.port}`, '--state', states.get(user) ?? path.join(dir, `${user}.db`), '--json', ...extra], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'dst-pw' }, 180_000, check);
  const bodyBytes = (...n: number[]) => n.reduce((t, i) => t + raw(i).length, 0);
  /** Every folder the migration selected at the source. */
  const selected = (srv: ScriptedImapServer) => srv.log.filter((l) => /^\S+ (SELECT|EXAMINE) /i.test(l)).map((l) => l.replace(/^\S+ (SELECT|EXAMINE) /i, '').replace(/ \(.*\)$/, '').replace(/^"|"$/g, ''));

  test('folders (the default): one copy per label, All Mail read once, Starred a flag, Important a keyword, Trash and Spam as folders', async () => {
    const srv = await source();
    await dest.addUser('gf', 'dst-pw');
    const plan = await runCli(['plan', '--from', `imap://alice@127.0.0.1:${srv.port}`, '--to', `imap://gf@127.0.0.1:${dest.port}`, '--no-state', '--json'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assert.equal(plan.code, 0, plan.stderr + plan.stdout.slice(0, 2000));
    const planned = JSON.parse(plan.stdout);
    assert.deepEqual({ ...planned.gmailLabels }, { mode: 'folders', allMail: '[Gmail]/All Mail', messages: 7, copies: 9, extraCopies: 2, archived: 1 });
    const mark = srv.log.length;
    const run = await migrate(srv, 'gf', [], COUNTED);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 2000));
    const { where, flags, dates } = placed(await readMailbox(dest, 'gf', 'dst-pw'));
    assert.deepEqual(where, { INBOX: [1, 2], Work: [1, 5], 'Work/Clients': [2], Sent: [3], Drafts: [4], Archive: [6], Junk: [7], Trash: [8], 'Team Notes': [9] });
    assert.deepEqual(flags.get(2), ['$Important', '\\Flagged']);
    assert.deepEqual(flags.get(1), ['\\Seen']);
    assert.deepEqual(flags.get(4), ['\\Draft']);
    for (let n = 1; n <= 9; n++) assert.equal(dates.get(n), Date.UTC(2024, 4, n, 10, 0, 0));
    // All Mail once for the listing, Trash and Spam as folders; no label folder opened at the source.
    const opened = selected(srv);
    assert.ok(!opened.some((n) => /^(INBOX|Work|Team Notes|\[Gmail\]\/(Sent Mail|Drafts|Starred|Important))/.test(n)), opened.join(', '));
    assert.ok(opened.includes('[Gmail]/All Mail'));
    assert.equal(srv.log.slice(mark).filter((l) => /X-GM-LABELS/.test(l)).length, 1, 'the labels were read once');
    assert.ok(srv.stats('alice').fetchedBodyBytes <= bodyBytes(1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), 'each body at most once per copy');
    const again = await migrate(srv, 'gf', []);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).totals.copied, 0, 'a rerun copies nothing');
  });

  const firstMode = async (user: string) => {
    const srv = await source();
    await dest.addUser(user, 'dst-pw');
    const run = await migrate(srv, user, ['--gmail-labels', 'first', '--label-priority', 'Inbox']);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 2000));
    const report = JSON.parse(run.stdout);
    assert.equal(report.gmailLabels.copies, 7);
    assert.deepEqual(report.gmailLabels.otherLabels.map((o: { folder: string; labels: string[] }) => [o.folder, o.labels]), [['INBOX', ['Work']], ['INBOX', ['Work/Clients']]]);
    const { where, flags } = placed(await readMailbox(dest, user, 'dst-pw'));
    assert.deepEqual(where, { INBOX: [1, 2], Work: [5], 'Work/Clients': [], Sent: [3], Drafts: [4], Archive: [6], Junk: [7], Trash: [8], 'Team Notes': [9] });
    assert.deepEqual(flags.get(2), ['$Important', '\\Flagged']);
    // Message 1 leaves the Inbox at the source: its first label is Work now.
    const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', pass: 'pw' }, logger: false, disableAutoIdle: true });
    c.on('error', () => undefined);
    await c.connect();
    const lock = await c.getMailboxLock('[Gmail]/All Mail');
    try {
      let uid = 0;
      for await (const m of c.fetch('1:*', { uid: true, source: true })) if (m.source!.equals(raw(1))) uid = m.uid;
      assert.ok(await c.messageFlagsRemove(String(uid), ['\\Inbox'], { uid: true, useLabels: true }));
    } finally {
      lock.release();
      await c.logout();
    }
    const again = await migrate(srv, user, ['--gmail-labels', 'first', '--label-priority', 'Inbox'], KEPT);
    assert.equal(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout);
    assert.equal(second.totals.copied, 0, 'not copied again');
    assert.equal(second.gmailLabels.keptInEarlierFolder, 1);
    assert.deepEqual(placed(await readMailbox(dest, user, 'dst-pw')).where, where);
  };
  test('first: one copy in the first label by --label-priority; a message whose labels changed is not copied again (SQLite ledger)', () => firstMode('gfirst'));
  test('first: the same with a PostgreSQL ledger', async () => {
    const db = await startPostgres();
    try {
      states.set('gfirstpg', await db.createDatabase('gmail_labels'));
      await firstMode('gfirstpg');
    } finally {
      await db.stop();
    }
  });

  test('keywords: one copy in INBOX, Sent, Drafts or Archive, every label a keyword-safe keyword', async () => {
    const srv = await source();
    await dest.addUser('gkw', 'dst-pw');
    const run = await migrate(srv, 'gkw', ['--gmail-labels', 'keywords']);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 2000));
    const report = JSON.parse(run.stdout);
    assert.deepEqual(report.gmailLabels.keywords, { 'Team Notes': 'Team_Notes', Work: 'Work', 'Work/Clients': 'Work/Clients' });
    const { where, flags } = placed(await readMailbox(dest, 'gkw', 'dst-pw'));
    assert.deepEqual(where, { INBOX: [1, 2], Sent: [3], Drafts: [4], Archive: [5, 6, 9], Junk: [7], Trash: [8] });
    assert.deepEqual(flags.get(1), ['Work', '\\Seen'].sort());
    assert.deepEqual(flags.get(2), ['$Important', 'Work/Clients', '\\Flagged'].sort());
    assert.deepEqual(flags.get(9), ['Team_Notes']);
    const again = await migrate(srv, 'gkw', ['--gmail-labels', 'keywords']);
    assert.equal(JSON.parse(again.stdout).totals.copied, 0, 'a rerun copies nothing');
  });

  test('a bad mode or a priority without first is refused before anything connects (MM-CONFIG-OPTION)', async () => {
    const bad = await runCli(['migrate', '--from', 'imap://alice@127.0.0.1:1', '--to', 'imap://b@127.0.0.1:1', '--no-state', '--gmail-labels', 'tags'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /MM-CONFIG-OPTION.*folders, first, keywords or off/);
    const prio = await runCli(['migrate', '--from', 'imap://alice@127.0.0.1:1', '--to', 'imap://b@127.0.0.1:1', '--no-state', '--label-priority', 'Work'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(prio.code, 2, prio.stderr);
    assert.match(prio.stderr, /MM-CONFIG-OPTION.*--label-priority/);
  });
});
