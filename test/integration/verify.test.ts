/**
 * `mailmover verify` against real Dovecot: a faithful copy matches (exit 0); then the destination
 * is changed behind mailmover's back, with a plain IMAP client: a message removed, one added, one
 * replaced by a different version, flags changed, and one body altered without changing its
 * size or headers. verify names each difference (exit 1); only --deep sees the altered body.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';

const msg = (i: number, body = `body ${i}`): FixtureMessage => ({
  raw: Buffer.from(`From: v@example.org\r\nSubject: verify ${i}\r\nMessage-ID: <verify-${i}@x>\r\n\r\n${body}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2021, 4, 1 + i)),
});
const folders: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: Array.from({ length: 8 }, (_, i) => msg(i)) },
  { path: ['Archive'], subscribed: true, messages: Array.from({ length: 5 }, (_, i) => msg(100 + i)) },
];

interface Report {
  status: string;
  totals: { missing: number; extra: number; changed: number; flagsDiffer: number; datesDiffer: number; bodiesDiffer: number };
  folders: { source: string; state: string; differences: { kind: string; sourceUid?: number; destUid?: number; messageId?: string }[] }[];
}

describe('mailmover verify', () => {
  let server: PlainDovecotServer;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const args = (...extra: string[]) => ['verify', '--from', `imap://src@127.0.0.1:${server.port}`, '--to', `imap://dst@127.0.0.1:${server.port}`, ...extra];

  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await server.addUser('dst', 'dst-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
    const r = await migrateChecked({ from: { url: `imap://src@127.0.0.1:${server.port}`, password: 'src-pw' }, to: { url: `imap://dst@127.0.0.1:${server.port}`, password: 'dst-pw' } });
    assert.equal(r.status, 'complete');
  });
  after(async () => server?.stop());

  test('a faithful copy matches, with and without --deep: exit 0', async () => {
    for (const extra of [[], ['--deep']]) {
      const run = await runCli(args('--json', ...extra), env);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const report = JSON.parse(run.stdout) as Report;
      assert.equal(report.status, 'match');
      assert.ok(report.folders.every((f) => f.state === 'match'));
    }
  });

  test('missing, extra, changed, other flags and (with --deep) other bytes are each found: exit 1', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user: 'dst', pass: 'dst-pw' }, logger: false });
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const uidOf = async (id: string) => (await client.search({ header: { 'message-id': `<${id}@x>` } }, { uid: true })) as number[];
        // missing: message 2 removed
        await client.messageDelete({ uid: (await uidOf('verify-2')).join(',') }, { uid: true });
        // changed: message 3 replaced by another version (same identity headers, other size)
        await client.messageDelete({ uid: (await uidOf('verify-3')).join(',') }, { uid: true });
        await client.append('INBOX', msg(3, 'a longer, edited body').raw, msg(3).flags, msg(3).internalDate);
        // flags: message 4 flagged
        await client.messageFlagsAdd({ uid: (await uidOf('verify-4')).join(',') }, ['\\Flagged'], { uid: true });
        // body: message 5 replaced by one with the same headers and size but other bytes
        await client.messageDelete({ uid: (await uidOf('verify-5')).join(',') }, { uid: true });
        await client.append('INBOX', msg(5, 'BODY 5').raw, msg(5).flags, msg(5).internalDate);
        // extra: a message the source never had
        await client.append('INBOX', msg(999).raw, [], msg(999).internalDate);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }

    const shallow = await runCli(args('--json'), env);
    assert.equal(shallow.code, 1, shallow.stderr);
    const r = JSON.parse(shallow.stdout) as Report;
    assert.equal(r.status, 'differ');
    assert.deepEqual(
      { missing: r.totals.missing, extra: r.totals.extra, changed: r.totals.changed, flags: r.totals.flagsDiffer, dates: r.totals.datesDiffer },
      { missing: 1, extra: 1, changed: 1, flags: 1, dates: 0 },
    );
    const inbox = r.folders.find((f) => f.source === 'INBOX')!;
    const kinds = Object.fromEntries(inbox.differences.map((d) => [d.kind, d.messageId]));
    assert.deepEqual(kinds, { missing: 'verify-2@x', extra: 'verify-999@x', changed: 'verify-3@x', flags: 'verify-4@x' });
    assert.equal(r.folders.find((f) => f.source === 'Archive')!.state, 'match');

    const deep = await runCli(args('--json', '--deep'), env);
    assert.equal(deep.code, 1);
    const d = JSON.parse(deep.stdout) as Report;
    const bodies = d.folders.find((f) => f.source === 'INBOX')!.differences.filter((x) => x.kind === 'body').map((x) => x.messageId);
    // The replaced version (3) differs in its bytes too; 5 differs only there.
    assert.deepEqual(bodies.sort(), ['verify-3@x', 'verify-5@x']);

    const text = await runCli(args(), env);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /missing: "INBOX" source UID \d+, <verify-2@x>/);
    assert.match(text.stdout, /differ: 1 missing, 1 extra, 1 changed, 1 with other flags/);
  });

  test('a source that refuses the login quickly: MM-AUTH-FAILED at once, and the process exits (no connection left open)', async () => {
    // The destination answers slowly (its greeting held back 2 s by a proxy), so the source is
    // refused while the destination is still connecting: that attempt must be stopped and closed,
    // or the process would wait for the server's idle timeout (300 s) before exiting.
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port }, [{ connection: 'every', direction: 'down', afterBytes: 0, action: { kind: 'delay', ms: 2000 } }]);
    try {
      const run = await runCli(
        ['verify', '--json', '--from', `imap://src@127.0.0.1:${server.port}`, '--to', `imap://dst@127.0.0.1:${proxy.port}`],
        { ...env, MAILMOVER_FROM_PASSWORD: 'wrong-secret' },
        60_000,
      );
      assert.notEqual(run.code, null, `the process did not exit within 60 s: ${run.stderr}`);
      assert.equal(run.code, 4, run.stdout + run.stderr);
      assert.match(run.stdout + run.stderr, /MM-AUTH-FAILED/);
      assert.ok(run.ms < 15_000, `verify took ${run.ms} ms`);
      assert.doesNotMatch(run.stdout + run.stderr, /wrong-secret/);
    } finally {
      await proxy.close();
    }
  });
});
