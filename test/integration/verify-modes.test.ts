/**
 * `mailmover verify` modes against real Dovecot, each on its own destination account filled by a
 * real `migrate` (whose exit 0 the CLI helper already holds to a plain verify):
 * - a folder made only at the destination is listed with its count: information by default
 *   (verdict good, exit 0), a difference with --strict (investigate, exit 1);
 * - a subscription dropped at the destination is a difference only with --strict;
 * - --finished: new mail and a flag change at the destination are expected (exit 0), a message
 *   deleted there is not (exit 1); --finished with --strict is refused (MM-CONFIG-OPTION).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const msg = (i: number): FixtureMessage => ({
  raw: Buffer.from(`From: m@example.org\r\nSubject: modes ${i}\r\nMessage-ID: <modes-${i}@x>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2022, 2, 1 + i)),
});
const folders: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: [msg(1), msg(2), msg(3)] },
  { path: ['Work'], subscribed: true, messages: [msg(10), msg(11)] },
  { path: ['Old'], subscribed: false, messages: [msg(20)] },
];

interface Report {
  status: string;
  verdict: string;
  mode: string;
  strict: boolean;
  totals: { missing: number; extra: number; flagsDiffer: number; subscriptionsDiffer?: number; destinationOnly: number };
  destinationOnly: { name: string; messages?: number }[];
  folders: { source: string; state: string; subscribed?: { source: boolean; destination: boolean }; differences: { kind: string; messageId?: string }[] }[];
}

describe('mailmover verify: destination-only folders, --strict, --finished, the verdict', () => {
  let server: PlainDovecotServer;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const ends = (dst: string) => ['--from', `imap://src@127.0.0.1:${server.port}`, '--to', `imap://${dst}@127.0.0.1:${server.port}`];
  const verifyJson = async (dst: string, ...extra: string[]) => {
    const run = await runCli(['verify', ...ends(dst), '--json', ...extra], env);
    return { code: run.code, report: JSON.parse(run.stdout) as Report, stderr: run.stderr };
  };
  /** Runs `fn` as the destination user, logged in with a plain IMAP client. */
  const asUser = async (user: string, fn: (c: ImapFlow) => Promise<void>) => {
    const client = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user, pass: 'dst-pw' }, logger: false });
    await client.connect();
    try {
      await fn(client);
    } finally {
      await client.logout();
    }
  };

  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
    for (const dst of ['dst1', 'dst2', 'dst3']) {
      await server.addUser(dst, 'dst-pw');
      const run = await runCli(['migrate', ...ends(dst), '--no-state'], env);
      assert.equal(run.code, 0, run.stdout + run.stderr);
    }
  });
  after(async () => server?.stop());

  test('right after a migration: verdict perfect, also with --strict (subscriptions mirrored), in JSON and as the last text line', async () => {
    for (const extra of [[], ['--strict']]) {
      const { code, report } = await verifyJson('dst1', ...extra);
      assert.equal(code, 0);
      assert.equal(report.verdict, 'perfect');
      assert.equal(report.status, 'match');
      assert.deepEqual(report.destinationOnly, []);
    }
    const strict = await verifyJson('dst1', '--strict');
    assert.equal(strict.report.totals.subscriptionsDiffer, 0);
    assert.deepEqual(strict.report.folders.find((f) => f.source === 'Old')!.subscribed, { source: false, destination: false });
    const text = await runCli(['verify', ...ends('dst1')], env);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /\nverdict: perfect \([^)]*\)\n$/);
  });

  test('a folder only at the destination: listed with its count; information (good, exit 0), with --strict a difference (exit 1)', async () => {
    await asUser('dst1', async (c) => {
      await c.mailboxCreate('Private');
      await c.append('Private', msg(99).raw, [], msg(99).internalDate);
      await c.append('Private', msg(98).raw, [], msg(98).internalDate);
    });
    const plain = await verifyJson('dst1');
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.report.verdict, 'good');
    assert.deepEqual(plain.report.destinationOnly, [{ name: 'Private', messages: 2 }]);
    const text = await runCli(['verify', ...ends('dst1')], env);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /only at the destination \(not compared\): "Private" 2 messages\n/);
    assert.match(text.stdout, /\nverdict: good \([^)]*\)\n$/);

    const strict = await verifyJson('dst1', '--strict');
    assert.equal(strict.code, 1);
    assert.equal(strict.report.verdict, 'investigate');
    assert.equal(strict.report.status, 'differ');
    assert.equal(strict.report.totals.destinationOnly, 1);
    const strictText = await runCli(['verify', ...ends('dst1'), '--strict'], env);
    assert.equal(strictText.code, 1);
    assert.match(strictText.stdout, /destination only: "Private" 2 messages\n/);
    assert.match(strictText.stdout, /1 folder only at the destination/);
    assert.match(strictText.stdout, /\nverdict: investigate \([^)]*\)\n$/);
  });

  test('a subscription dropped at the destination: a difference only with --strict, named per folder', async () => {
    await asUser('dst2', (c) => c.mailboxUnsubscribe('Work').then(() => undefined));
    const plain = await verifyJson('dst2');
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.report.verdict, 'perfect');
    assert.equal(plain.report.totals.subscriptionsDiffer, undefined, 'not compared, so not counted');

    const strict = await verifyJson('dst2', '--strict');
    assert.equal(strict.code, 1);
    assert.equal(strict.report.verdict, 'investigate');
    assert.equal(strict.report.totals.subscriptionsDiffer, 1);
    const work = strict.report.folders.find((f) => f.source === 'Work')!;
    assert.equal(work.state, 'differ');
    assert.deepEqual(work.subscribed, { source: true, destination: false });
    assert.deepEqual(work.differences.map((d) => d.kind), ['subscription']);
    assert.ok(strict.report.folders.filter((f) => f.source !== 'Work').every((f) => f.state === 'match'));
    const text = await runCli(['verify', ...ends('dst2'), '--strict'], env);
    assert.match(text.stdout, /subscription: "Work": subscribed at the source, not subscribed at the destination\n/);
  });

  test('--finished: new mail and a flag change at the destination are fine (exit 0), a message deleted there is not (exit 1)', async () => {
    await asUser('dst3', async (c) => {
      await c.append('INBOX', msg(50).raw, [], msg(50).internalDate);
      const lock = await c.getMailboxLock('Work');
      try {
        await c.messageFlagsAdd({ header: { 'message-id': '<modes-10@x>' } }, ['\\Flagged']);
      } finally {
        lock.release();
      }
    });
    const exact = await verifyJson('dst3');
    assert.equal(exact.code, 1, 'without --finished, the destination in use differs');
    assert.deepEqual({ extra: exact.report.totals.extra, flags: exact.report.totals.flagsDiffer }, { extra: 1, flags: 1 });

    const finished = await verifyJson('dst3', '--finished');
    assert.equal(finished.code, 0, finished.stderr);
    assert.equal(finished.report.mode, 'finished');
    assert.equal(finished.report.verdict, 'good');
    assert.deepEqual({ extra: finished.report.totals.extra, flags: finished.report.totals.flagsDiffer }, { extra: 1, flags: 1 });
    assert.ok(finished.report.folders.every((f) => f.differences.length === 0), 'what the mode allows is counted, not listed');
    const text = await runCli(['verify', ...ends('dst3'), '--finished'], env);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /match \(finished move\): all 6 source messages in \d+ folders at the destination; 1 new at the destination, 1 with flags/);
    assert.match(text.stdout, /\nverdict: good \([^)]*\)\n$/);

    await asUser('dst3', async (c) => {
      const lock = await c.getMailboxLock('INBOX');
      try {
        await c.messageDelete({ header: { 'message-id': '<modes-2@x>' } });
      } finally {
        lock.release();
      }
    });
    const gone = await verifyJson('dst3', '--finished');
    assert.equal(gone.code, 1);
    assert.equal(gone.report.verdict, 'investigate');
    assert.equal(gone.report.totals.missing, 1);
    const inbox = gone.report.folders.find((f) => f.source === 'INBOX')!;
    assert.deepEqual(inbox.differences.map((d) => [d.kind, d.messageId]), [['missing', 'modes-2@x']]);
  });

  test('--strict with --finished is refused before anything is contacted: MM-CONFIG-OPTION, exit 2', async () => {
    const run = await runCli(['verify', ...ends('dst1'), '--strict', '--finished'], {});
    assert.equal(run.code, 2);
    assert.match(run.stderr, /MM-CONFIG-OPTION: --strict and --finished contradict each other/);
  });
});
