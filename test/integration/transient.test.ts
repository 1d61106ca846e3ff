/**
 * Temporary and permanent item errors, throttling, quota and limits. Faults no real server here
 * produces on demand come from the scripted IMAP server (real IMAP over a loopback socket): a
 * source that answers NO [UNAVAILABLE] "being scanned" for chosen messages the first K times and
 * NO forever for a corrupt one; a destination that throttles, runs out of quota, drops the
 * connection after storing a message, or says BYE in the middle of work. The other side is a
 * real Dovecot, and what arrives is read back from the destination independently.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type ScriptedImapServer, type UserFaults } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const msg = (i: number, size = 300): FixtureMessage => ({
  raw: Buffer.from(`From: t@example.org\r\nSubject: item ${i}\r\nMessage-ID: <item-${i}@transient.test>\r\n\r\n${'x'.repeat(size + i)}\r\n`),
  flags: i % 3 === 0 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2020, 0, 1 + i)),
});
const inbox = Array.from({ length: 20 }, (_, i) => msg(i));
const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };

interface CliReport {
  status: string;
  error?: { code: string; message: string };
  totals: { copied: number; skipped: number };
  items: { folder: string; uid: number; messageId?: string; code: string; reason: string; attempts?: number }[];
}

/** The INBOX of a Dovecot user as sorted SHA-256s. */
async function inboxShas(server: PlainDovecotServer, user: string): Promise<string[]> {
  const folders = await readMailbox(server, user, 'dst-pw');
  return (folders.find((f) => f.path[0] === 'INBOX')?.messages ?? []).map((m) => m.sha256).sort();
}

describe('a scripted source with busy, throttled and corrupt items; a real Dovecot destination', () => {
  let dovecot: PlainDovecotServer;
  let source: ScriptedImapServer;
  let users = 0;
  const start = async (faults: UserFaults) => {
    source = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: { src: { password: 'src-pw', folders: [{ name: 'INBOX', subscribed: true, messages: inbox.map((m, i) => ({ ...m, uid: i + 1 })) }] } },
      faults: { src: faults },
    });
    const user = `d${++users}`;
    await dovecot.addUser(user, 'dst-pw');
    return user;
  };
  before(async () => {
    dovecot = await startDovecot({ tls: false });
  });
  after(async () => dovecot?.stop());

  test('busy items arrive after retries (some only in the deferred pass), a throttling answer is waited out, the corrupt one is reported; exit 3', async () => {
    const user = await start({
      fetchFailures: {
        INBOX: {
          3: { times: 2, response: 'NO [UNAVAILABLE] Message is being scanned by the antivirus, try again later' },
          // Fails every try of the first pass (batch FETCH and single FETCH count alike): arrives in the deferred pass.
          8: { times: 6, response: 'NO [UNAVAILABLE] Attachment is being scanned' },
          12: { times: 'always', response: 'NO Message is corrupt: bad MIME structure' },
          16: { times: 1, response: 'NO [LIMIT] Request is throttled. Suggested Backoff Time: 400 milliseconds' },
        },
      },
    });
    try {
      const began = Date.now();
      const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://${user}@127.0.0.1:${dovecot.port}`, '--json', '--retry-delay', '0.02'], env);
      const took = Date.now() - began;
      assert.equal(run.code, 3, run.stderr);
      const report = JSON.parse(run.stdout) as CliReport;
      assert.equal(report.status, 'partial');
      assert.equal(report.items.length, 1, JSON.stringify(report.items));
      const [item] = report.items;
      assert.equal(item!.uid, 12);
      assert.equal(item!.messageId, 'item-11@transient.test');
      assert.equal(item!.code, 'MM-FETCH-FAILED');
      assert.match(item!.reason, /NO Message is corrupt: bad MIME structure/, 'in the server\'s own words');
      assert.ok((item!.attempts ?? 0) >= 2, 'tried more than once');
      assert.deepEqual(
        await inboxShas(dovecot, user),
        inbox.filter((_, i) => i !== 11).map((m) => sha(m.raw)).sort(),
      );
      assert.ok(took >= 400, `the suggested backoff was honoured (${took} ms)`);
    } finally {
      await source.stop();
    }
  });

  test('--bad-item-limit: more skipped items than allowed fail the mailbox with exit 1', async () => {
    const always = { times: 'always' as const, response: 'NO [CORRUPTION] Message file damaged' };
    const user = await start({ fetchFailures: { INBOX: { 2: always, 5: always, 9: always } } });
    try {
      const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://${user}@127.0.0.1:${dovecot.port}`, '--json', '--retry-delay', '0.02', '--bad-item-limit', '1', '--connections', '1'], env);
      assert.equal(run.code, 1, run.stderr);
      const report = JSON.parse(run.stdout) as CliReport;
      assert.equal(report.status, 'failed');
      assert.equal(report.error?.code, 'MM-BAD-ITEM-LIMIT');
      assert.ok(report.items.length >= 2);
      assert.ok(report.items.every((i) => i.code === 'MM-FETCH-FAILED' && /CORRUPTION/.test(i.reason)));
    } finally {
      await source.stop();
    }
  });
});

describe('a real Dovecot source; a scripted destination that throttles, drops, says BYE or runs out of quota', () => {
  let dovecot: PlainDovecotServer;
  const folders: FixtureFolder[] = [
    { path: ['INBOX'], subscribed: true, messages: inbox },
    { path: ['Later'], subscribed: true, messages: Array.from({ length: 10 }, (_, i) => msg(100 + i, 2000)) },
  ];
  const startDest = (faults: UserFaults, capabilities?: string[]) =>
    startScriptedImap({
      personality: capabilities ? { ...PERSONALITIES.cyrus, capabilitiesAfterLogin: capabilities } : PERSONALITIES.cyrus,
      users: { dst: { password: 'dst-pw', folders: [{ name: 'INBOX', subscribed: true }] } },
      faults: { dst: faults },
      limits: { maxLiteralBytes: 8 * 1024 * 1024 },
    });
  const run = (dest: ScriptedImapServer, extra: Record<string, unknown> = {}) =>
    migrateChecked({
      from: { url: `imap://src@127.0.0.1:${dovecot.port}`, password: 'src-pw' },
      to: { url: `imap://dst@127.0.0.1:${dest.port}`, password: 'dst-pw' },
      retry: { baseDelayMs: 20, maxDelayMs: 200 },
      batchMessages: 5,
      ...extra,
    });
  /** What the destination holds, per folder: SHA-256s sorted (read from the server's own state). */
  const held = (dest: ScriptedImapServer) =>
    Object.fromEntries(
      dest
        .mailbox('dst')
        .filter((f) => f.messages.length > 0)
        .map((f) => [f.name.replace(/^INBOX\./, ''), f.messages.map((m) => sha(m.raw)).sort()]),
    );
  const want = Object.fromEntries(folders.map((f) => [f.path[0]!, f.messages.map((m) => sha(m.raw)).sort()]));

  before(async () => {
    dovecot = await startDovecot({ tls: false });
    await dovecot.addUser('src', 'src-pw');
    await seedMailbox(dovecot, 'src', 'src-pw', folders);
  });
  after(async () => dovecot?.stop());

  test('throttled APPENDs are retried, a stored-but-unanswered APPEND is not repeated, a BYE mid-work is survived: exact, no duplicates', async () => {
    const dest = await startDest({
      appendFailures: [{ match: 'item-4@', times: 2, response: 'NO [LIMIT] Request is throttled. Suggested Backoff Time: 50 milliseconds' }],
      appendDropConnection: { match: 'item-9@', times: 1 },
      byeAfterCommands: { count: 25, text: 'Server shutting down for maintenance', times: 1 },
    });
    try {
      const report = await run(dest);
      assert.equal(report.status, 'complete', JSON.stringify(report.error ?? report.items));
      assert.deepEqual(held(dest), want);
      assert.ok(dest.log.some((l) => /fault: message stored/.test(l)), 'the dropped APPEND happened');
      assert.ok(dest.log.some((l) => /fault: answered with \* BYE/.test(l)), 'the BYE happened');
    } finally {
      await dest.stop();
    }
  });

  test('an OVERQUOTA destination stops the mailbox at once with MM-DEST-OVERQUOTA instead of failing every message', async () => {
    const dest = await startDest({ appendFailures: [{ match: 'item-6@', times: 'always', response: 'NO [OVERQUOTA] Quota exceeded (mailbox for user is full)' }] });
    try {
      const report = await run(dest, { connections: 1 });
      assert.equal(report.status, 'failed');
      assert.equal(report.error?.code, 'MM-DEST-OVERQUOTA');
      assert.match(report.error!.message, /Quota exceeded/);
      assert.equal(report.items.length, 0, 'no message was reported one by one');
      const appends = dest.log.filter((l) => /^\S+ APPEND /i.test(l)).length;
      assert.ok(appends <= 8, `stopped at once (${appends} APPENDs)`);
      // What arrived is exact (a subset, no duplicates).
      const got = held(dest)['INBOX'] ?? [];
      assert.equal(new Set(got).size, got.length);
      assert.ok(got.every((s) => want['INBOX']!.includes(s)));
    } finally {
      await dest.stop();
    }
  });

  test("--max-message-size and the destination's APPENDLIMIT skip large messages before they are fetched", async () => {
    // Every message of "Later" is over one limit or the other: the largest over --max-message-size, the rest over APPENDLIMIT.
    const sizes = folders[1]!.messages.map((m) => m.raw.length).sort((a, b) => a - b);
    const appendLimit = sizes[0]! - 1;
    const maxSize = sizes[6]!;
    const caps = [...(PERSONALITIES.cyrus.capabilitiesAfterLogin ?? PERSONALITIES.cyrus.capabilities), `APPENDLIMIT=${appendLimit}`];
    const dest = await startDest({}, caps);
    try {
      const report = await run(dest, { maxMessageSize: maxSize });
      assert.equal(report.status, 'partial');
      const codes = report.items.map((i) => i.code);
      assert.equal(codes.length, 10);
      assert.ok(codes.every((c) => c === 'MM-MESSAGE-TOO-LARGE'));
      assert.equal(report.items.filter((i) => /--max-message-size/.test(i.reason)).length, 3);
      assert.equal(report.items.filter((i) => new RegExp(`APPENDLIMIT=${appendLimit}`).test(i.reason)).length, 7);
      assert.deepEqual(held(dest), { INBOX: want['INBOX'] });
      assert.ok(!dest.log.some((l) => /APPEND .*Later/.test(l)), 'nothing too large was sent');
    } finally {
      await dest.stop();
    }
  });
});
