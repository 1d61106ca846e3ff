/**
 * migrate and verify agree about flags changed at the destination: an incremental rerun (the
 * ledger's shortcut) reads the destination's flags and puts the source's back, as a full pass
 * does, and says so (flagsUpdated); verify then matches. Real Dovecot, the built CLI, and a
 * plain imapflow client to change the destination behind mailmover's back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const msg = (i: number): FixtureMessage => ({
  raw: Buffer.from(`From: d@example.org\r\nSubject: drift ${i}\r\nMessage-ID: <drift-${i}@x>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2022, 1, 1 + i)),
});
const folders: FixtureFolder[] = [{ path: ['INBOX'], subscribed: true, messages: Array.from({ length: 6 }, (_, i) => msg(i)) }];

describe('flag drift at the destination', () => {
  let server: PlainDovecotServer;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-drift-'));
  const state = path.join(dir, 'state.db');
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const ends = () => ['--from', `imap://src@127.0.0.1:${server.port}`, '--to', `imap://dst@127.0.0.1:${server.port}`];

  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await server.addUser('dst', 'dst-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('verify reports it (exit 1); an incremental migrate repairs it (flagsUpdated); verify then exits 0', async () => {
    const first = await runCli(['migrate', ...ends(), '--state', state], env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const client = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user: 'dst', pass: 'dst-pw' }, logger: false });
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        // Message 0 gains \Flagged, message 1 loses \Seen.
        await client.messageFlagsAdd({ header: { 'message-id': '<drift-0@x>' } }, ['\\Flagged']);
        await client.messageFlagsRemove({ header: { 'message-id': '<drift-1@x>' } }, ['\\Seen']);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    const before = await runCli(['verify', ...ends(), '--json'], env);
    assert.equal(before.code, 1, before.stdout + before.stderr);

    const again = await runCli(['migrate', ...ends(), '--state', state, '--json'], env);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    const report = JSON.parse(again.stdout) as { totals: { flagsUpdated?: number }; folders: { source: string; incremental?: boolean; flagsUpdated?: number }[] };
    assert.equal(report.totals.flagsUpdated, 2);
    assert.equal((JSON.parse(again.stdout) as { verdict?: string }).verdict, 'perfect');
    const inbox = report.folders.find((f) => f.source === 'INBOX')!;
    assert.equal(inbox.incremental, true, 'the rerun took the ledger shortcut');
    assert.equal(inbox.flagsUpdated, 2);

    const after = await runCli(['verify', ...ends()], env);
    assert.equal(after.code, 0, after.stdout + after.stderr);
    const dest = await readMailbox(server, 'dst', 'dst-pw');
    const src = await readMailbox(server, 'src', 'src-pw');
    const flagsOf = (f: typeof dest) => f.find((x) => x.path.join('/') === 'INBOX')!.messages.map((m) => [...m.flags].sort().join(' ')).sort();
    assert.deepEqual(flagsOf(dest), flagsOf(src));

    // A third, quiet run changes nothing.
    const quiet = await runCli(['migrate', ...ends(), '--state', state, '--json'], env);
    assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
    const q = JSON.parse(quiet.stdout) as { totals: { flagsUpdated?: number }; folders: { source: string; flagsUpdated?: number }[] };
    assert.ok(!q.folders.find((f) => f.source === 'INBOX')!.flagsUpdated);
    assert.equal(q.totals.flagsUpdated, undefined);
    const text = await runCli(['migrate', ...ends(), '--state', state], env);
    assert.match(text.stdout, /Nothing to copy/);
  });

  /** Deletes a message at the destination behind mailmover's back (a user, a filter). */
  const deleteAtDestination = async (messageId: string) => {
    const client = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user: 'dst', pass: 'dst-pw' }, logger: false });
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        await client.messageDelete({ header: { 'message-id': messageId } });
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  };

  test('a message deleted at the destination behind our back is copied again, and the run says "refilled"', async () => {
    await deleteAtDestination('<drift-3@x>');
    const refill = await runCli(['migrate', ...ends(), '--state', state, '--json'], env);
    assert.equal(refill.code, 0, refill.stdout + refill.stderr);
    const report = JSON.parse(refill.stdout) as { totals: { copied: number; refilled?: number }; folders: { source: string; refilled?: number }[] };
    assert.equal(report.totals.copied, 1);
    assert.equal(report.totals.refilled, 1);
    assert.equal(report.folders.find((f) => f.source === 'INBOX')!.refilled, 1);
    const dest = (await readMailbox(server, 'dst', 'dst-pw')).find((x) => x.path.join('/') === 'INBOX')!;
    assert.equal(dest.messages.length, 6);
    // And the text summary says so.
    await deleteAtDestination('<drift-4@x>');
    const text = await runCli(['migrate', ...ends(), '--state', state], env);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /also: 1 copied again \(missing at the destination since an earlier copy\)/);
  });
});
