/**
 * Integrity against a hostile or broken source: a scripted IMAP source (real IMAP over a loopback
 * socket) that lists flags no server may be sent, and messages whose header lines are IMAP
 * commands; a destination already holding a forged message with another message's identity.
 * The destination is a real Dovecot 2.3, read back independently (test/helpers/fixture.ts), and
 * its own log shows whether it ever read a message's bytes as commands.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type ScriptedImapServer, type ScriptedMessage } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
const date = (i: number) => new Date(Date.UTC(2021, 2, 1 + i));

/** A message whose header lines, read as IMAP commands, would create a folder and empty another. */
function hostile(i: number, flags: string[]): ScriptedMessage {
  const raw = Buffer.from(
    [
      `From: mallory@example.org`,
      `Subject: hostile ${i}`,
      `Message-ID: <hostile-${i}@integrity.test>`,
      `X-A: CREATE PWNED${i}`,
      `X-B: SELECT Keep`,
      `X-C: STORE 1:* +FLAGS.SILENT (\\Deleted)`,
      `X-D: EXPUNGE`,
      ``,
      `body ${i}`,
      ``,
    ].join('\r\n'),
  );
  return { raw, flags, internalDate: date(i), uid: i };
}

const plain = (i: number, tag: string): FixtureMessage => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@integrity.test>\r\n\r\n${tag} body ${i} ${'y'.repeat(40 + i)}\r\n`),
  flags: ['\\Seen'],
  internalDate: date(i),
});

interface CliReport {
  status: string;
  totals: { copied: number; skipped: number };
  folders: { source: string; copied: number; skipped: number; sourceDeleted?: number; sourceKept?: number; flagsDropped?: { messages: number; flags: string[] } }[];
  items: { folder: string; uid: number; code: string; reason: string }[];
}

describe('flags a server may refuse never let message bytes be read as commands (real Dovecot destination)', () => {
  let dovecot: PlainDovecotServer;
  let source: ScriptedImapServer | undefined;
  before(async () => {
    // A low keyword limit makes Dovecot refuse a keyword that is valid IMAP: the command line is
    // then refused by the server's own rule, which no client-side check can know in advance.
    dovecot = await startDovecot({ tls: false, extraConfig: 'mail_max_keyword_length = 12\n' });
  });
  after(async () => {
    await source?.stop();
    await dovecot?.stop();
  });

  test('invalid flags are dropped and reported, a keyword the server refuses costs only its message, no folder is created or emptied', async () => {
    const keep = [0, 1, 2].map((i) => plain(i, 'keep'));
    await dovecot.addUser('dst', 'dst-pw');
    await seedMailbox(dovecot, 'dst', 'dst-pw', [{ path: ['Keep'], subscribed: true, messages: keep }]);
    const messages = [
      hostile(1, ['\\NonExistentSystemFlag', '\\Seen']),
      hostile(2, ['foo]bar', '\\Flagged']),
      hostile(3, ['\\*']),
      hostile(4, ['valid-kw']),
      // Valid IMAP, and refused by this Dovecot (longer than mail_max_keyword_length).
      hostile(5, ['averyveryverylongkeyword']),
      hostile(6, ['\\Answered', 'naïve']),
      hostile(7, []),
      hostile(8, ['%wild']),
    ];
    source = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: { src: { password: 'src-pw', folders: [{ name: 'INBOX', subscribed: true, messages }] } },
    });
    const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://dst@127.0.0.1:${dovecot.port}`, '--json', '--no-state', '--retry-delay', '0.02'], env);
    const report = JSON.parse(run.stdout) as CliReport;
    const back = await readMailbox(dovecot, 'dst', 'dst-pw');
    const names = back.map((f) => f.path.join('/'));
    assert.ok(!names.some((n) => /PWNED/i.test(n)), `a folder was created from a message's bytes: ${names.join(', ')}`);
    const keepBack = back.find((f) => f.path.join('/') === 'Keep')!;
    assert.deepEqual(keepBack.messages.map((m) => m.sha256).sort(), keep.map((m) => sha(m.raw)).sort(), 'Keep was changed');
    assert.ok(
      keepBack.messages.every((m) => !m.flags.includes('\\Deleted')),
      'messages in Keep were marked deleted',
    );
    const log = await readFile(dovecot.logFile, 'utf8');
    assert.ok(!/Too many invalid IMAP commands/i.test(log), log.slice(-2000));
    // Every message but the one whose keyword the server refuses arrives, with the flags that can be sent.
    const inbox = back.find((f) => f.path[0] === 'INBOX')!;
    const bySha = new Map(inbox.messages.map((m) => [m.sha256, m]));
    const expectFlags: Record<number, string[]> = { 1: ['\\Seen'], 2: ['\\Flagged'], 3: [], 4: ['valid-kw'], 6: ['\\Answered'], 7: [], 8: [] };
    for (const [i, flags] of Object.entries(expectFlags)) {
      const m = bySha.get(sha(messages[Number(i) - 1]!.raw));
      assert.ok(m, `message ${i} did not arrive: ${run.stderr}`);
      assert.deepEqual(m.flags, flags, `flags of message ${i}`);
    }
    assert.equal(inbox.messages.length, 7, JSON.stringify(report.items));
    assert.equal(report.items.length, 1, JSON.stringify(report.items));
    assert.equal(report.items[0]!.uid, 5);
    assert.equal(report.items[0]!.code, 'MM-APPEND-FAILED');
    assert.equal(run.code, 3, run.stderr);
    const folder = report.folders.find((f) => f.source === 'INBOX')!;
    assert.equal(folder.flagsDropped?.messages, 5);
    assert.deepEqual(new Set(folder.flagsDropped?.flags), new Set(['\\NonExistentSystemFlag', 'foo]bar', '\\*', 'naïve', '%wild']));
  });
});

describe('a move deletes only what is proven byte for byte at the destination (real Dovecot both sides)', () => {
  let src: PlainDovecotServer;
  let dst: PlainDovecotServer;
  before(async () => {
    [src, dst] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  test('a forged message with the same identity at the destination keeps the original at the source', async () => {
    const originals = [0, 1, 2, 3].map((i) => plain(i, 'orig'));
    // Same Message-ID, Date, From, To and Subject as original 1; another body (and size).
    const forged: FixtureMessage = { ...originals[1]!, raw: Buffer.from(originals[1]!.raw.toString().replace(/orig body 1 y+/, 'forged: wire the money to account 0000')) };
    // Same identity and the same size as original 2, other bytes.
    const sameSize: FixtureMessage = { ...originals[2]!, raw: Buffer.from(originals[2]!.raw.toString().replace('orig body 2', 'fake body 2')) };
    assert.equal(sameSize.raw.length, originals[2]!.raw.length);
    await src.addUser('u', 'src-pw');
    await dst.addUser('u', 'dst-pw');
    await seedMailbox(src, 'u', 'src-pw', [{ path: ['INBOX'], subscribed: true, messages: originals }]);
    await seedMailbox(dst, 'u', 'dst-pw', [{ path: ['INBOX'], subscribed: true, messages: [forged, sameSize] }]);
    const state = `${dst.dir}/move-state.db`;
    // The move of originals 1 and 2 is not done (only look-alikes are at the destination): the run
    // says so, partial (exit 3) with sourceKept, rather than exit 0 (migrate and verify agree).
    const run = await runCli(['migrate', '--from', `imap://u@127.0.0.1:${src.port}`, '--to', `imap://u@127.0.0.1:${dst.port}`, '--delete-source', '--json', '--state', state], env);
    assert.equal(run.code, 3, run.stderr);
    const report = JSON.parse(run.stdout) as CliReport;
    const inboxReport = report.folders.find((f) => f.source === 'INBOX')!;
    const left = (await readMailbox(src, 'u', 'src-pw')).find((f) => f.path[0] === 'INBOX')!.messages.map((m) => m.sha256).sort();
    // Originals 0 and 3 were copied and proven; 1 and 2 match forged copies by identity only: kept.
    assert.deepEqual(left, [sha(originals[1]!.raw), sha(originals[2]!.raw)].sort());
    assert.equal(inboxReport.sourceDeleted, 2);
    assert.equal(inboxReport.sourceKept, 2);
    assert.equal(report.status, 'partial');
    const there = (await readMailbox(dst, 'u', 'dst-pw')).find((f) => f.path[0] === 'INBOX')!.messages.map((m) => m.sha256);
    for (const m of [originals[0]!, originals[3]!]) assert.ok(there.includes(sha(m.raw)));
  });
});

describe('secrets a server echoes back never reach reports, output or logs', () => {
  let dovecot: PlainDovecotServer;
  let source: ScriptedImapServer | undefined;
  before(async () => {
    dovecot = await startDovecot({ tls: false });
    await dovecot.addUser('dst', 'dst-pw');
  });
  after(async () => {
    await source?.stop();
    await dovecot?.stop();
  });
  const PASSWORD = 'Sup3r-Secret-PW!';
  const forms = (text: string) => {
    const plainBlob = Buffer.from(`\0src\0${PASSWORD}`).toString('base64');
    return [PASSWORD, plainBlob, plainBlob.slice(4)].filter((f) => text.includes(f));
  };

  test('a login refusal that quotes the password and the SASL blob', async () => {
    source = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: { src: { password: 'the-right-one', folders: [{ name: 'INBOX', subscribed: true, messages: [] }] } },
      faults: { src: { echoSecrets: true } },
    });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-echo-'));
    const log = path.join(dir, 'run.log');
    const reportFile = path.join(dir, 'report.json');
    const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://dst@127.0.0.1:${dovecot.port}`, '--json', '--no-state', '--log', log, '--report', reportFile], {
      MAILMOVER_FROM_PASSWORD: PASSWORD,
      MAILMOVER_TO_PASSWORD: 'dst-pw',
    });
    assert.equal(run.code, 4, run.stderr);
    // The server did echo it (otherwise this test proves nothing).
    assert.ok(source.log.length > 0);
    const echoed = JSON.parse(run.stdout) as { error?: { code: string; message: string } };
    assert.equal(echoed.error?.code, 'MM-AUTH-FAILED');
    for (const [what, text] of [
      ['stdout', run.stdout],
      ['stderr', run.stderr],
      ['log', readFileSync(log, 'utf8')],
      ['report', readFileSync(reportFile, 'utf8')],
    ] as const) {
      assert.deepEqual(forms(text), [], `${what} holds a secret: ${text.slice(0, 800)}`);
    }
    assert.equal(statSync(reportFile).mode & 0o777, 0o600);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a FETCH refusal that quotes the session's password", async () => {
    await source?.stop();
    source = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: { src: { password: PASSWORD, folders: [{ name: 'INBOX', subscribed: true, messages: [hostile(1, ['\\Seen'])] }] } },
      faults: { src: { fetchFailures: { INBOX: { 1: { times: 'always', response: 'NO Cannot open message for {password} ({sasl})' } } } } },
    });
    const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://dst@127.0.0.1:${dovecot.port}`, '--json', '--no-state', '--retry-delay', '0.01'], {
      MAILMOVER_FROM_PASSWORD: PASSWORD,
      MAILMOVER_TO_PASSWORD: 'dst-pw',
    });
    assert.equal(run.code, 3, run.stderr);
    const report = JSON.parse(run.stdout) as CliReport;
    assert.equal(report.items.length, 1);
    assert.match(report.items[0]!.reason, /Cannot open message for \*\*\*/);
    assert.deepEqual(forms(run.stdout + run.stderr), []);
  });
});
