/**
 * `--search KEYS`: the source's own UID SEARCH picks the messages of migrate, plan and verify.
 * Exactly the selected messages arrive (read back independently with imapflow, by SHA-256), verify
 * with the same keys matches, the ledger never takes a searched pass for a complete one (nor an
 * incremental pass for permission to skip the search), keys a server refuses stop the mailbox
 * before anything is created or copied, and keys that could break the command line, or a local
 * archive source, are refused before anything connects.
 * Real Dovecot; the built binary (run `npm run build` first).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-search-'));
const msg = (id: string, from: string, subject: string, date: string, flags: string[] = []): FixtureMessage => ({
  raw: Buffer.from(`From: ${from}@example.org\r\nTo: dst@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${id}@x>\r\nDate: ${new Date(date).toUTCString()}\r\n\r\nbody of ${id}\r\n`),
  flags,
  internalDate: new Date(date),
});
// Senders, subjects, flags and dates chosen so that each search selects a different subset.
const a1 = msg('a1', 'alice', 'q3 report', '2024-03-01T10:00:00Z', ['\\Seen']);
const a2 = msg('a2', 'alice', 'lunch', '2023-06-01T10:00:00Z');
const b1 = msg('b1', 'bob', 'x marks', '2024-02-01T10:00:00Z', ['\\Flagged']);
const b2 = msg('b2', 'bob', 'other', '2022-01-01T10:00:00Z', ['\\Seen']);
const c1 = msg('c1', 'carol', 'x', '2024-05-01T10:00:00Z');
const a3 = msg('a3', 'alice', 'plan', '2024-04-01T10:00:00Z');
const c2 = msg('c2', 'carol', 'notes', '2021-01-01T10:00:00Z', ['\\Flagged', '\\Seen']);
const fixture: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: [a1, a2, b1, b2, c1] },
  { path: ['Work'], subscribed: true, messages: [a3, c2] },
];
const sha = (m: FixtureMessage) => createHash('sha256').update(m.raw).digest('hex');

describe('--search: the source server selects the messages', () => {
  let server: DovecotServer;
  let n = 0;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const user = async (prefix: string, seed?: FixtureFolder[]) => {
    const name = `${prefix}${++n}`;
    await server.addUser(name, prefix === 's' ? 'src-pw' : 'dst-pw');
    if (seed) await seedMailbox(server, name, prefix === 's' ? 'src-pw' : 'dst-pw', seed);
    return name;
  };
  const ends = (from: string, to: string) => ['--from', server.url(from), '--to', server.url(to), '--from-tls-insecure', '--to-tls-insecure'];
  /** What the destination holds in the fixture's folders: SHA-256 per folder, sorted. */
  const held = async (to: string) => {
    const folders = await readMailbox(server, to, 'dst-pw');
    return Object.fromEntries(folders.filter((f) => !f.noSelect && ['INBOX', 'Work'].includes(f.path.join('/'))).map((f) => [f.path.join('/'), f.messages.map((m) => m.sha256).sort()]));
  };
  const expect = (inbox: FixtureMessage[], work: FixtureMessage[]) => ({ INBOX: inbox.map(sha).sort(), Work: work.map(sha).sort() });
  const copied = (stdout: string) => (JSON.parse(stdout) as { totals: { copied: number } }).totals.copied;

  before(async () => {
    server = await startDovecot();
  });
  after(async () => server?.stop());

  test("'FROM alice' copies exactly alice's messages; verify with it matches, without it differs; a later run copies the rest once", async () => {
    const from = await user('s', fixture);
    const to = await user('d');
    const state = join(dir, 'alice.sqlite');
    const run = await runCli(['migrate', ...ends(from, to), '--state', state, '--search', 'FROM alice', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(copied(run.stdout), 3);
    assert.deepEqual(await held(to), expect([a1, a2], [a3]));
    const same = await runCli(['verify', ...ends(from, to), '--search', 'FROM alice'], env);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    const all = await runCli(['verify', ...ends(from, to)], env);
    assert.equal(all.code, 1, all.stdout + all.stderr);
    assert.match(all.stdout, /4 missing/);
    // The searched pass was not recorded as complete: this run plans every folder in full.
    const rest = await runCli(['migrate', ...ends(from, to), '--state', state, '--json'], env);
    assert.equal(rest.code, 0, rest.stderr);
    const r = JSON.parse(rest.stdout) as { totals: { copied: number }; folders: { incremental?: boolean }[] };
    assert.equal(r.totals.copied, 4);
    assert.ok(r.folders.every((f) => !f.incremental));
    assert.deepEqual(await held(to), expect([a1, a2, b1, b2, c1], [a3, c2]));
  });

  test('after a complete pass, a searched run does not take the ledger\'s incremental shortcut: new mail outside the search stays behind', async () => {
    const from = await user('s', fixture);
    const to = await user('d');
    const state = join(dir, 'incremental.sqlite');
    const full = await runCli(['migrate', ...ends(from, to), '--state', state, '--json'], env);
    assert.equal(copied(full.stdout), 7, full.stderr);
    const a4 = msg('a4', 'alice', 'new from alice', '2024-06-01T10:00:00Z');
    const b3 = msg('b3', 'bob', 'new from bob', '2024-06-02T10:00:00Z');
    await seedMailbox(server, from, 'src-pw', [{ path: ['INBOX'], subscribed: true, messages: [a4, b3] }]);
    const searched = await runCli(['migrate', ...ends(from, to), '--state', state, '--search', 'FROM alice', '--json'], env);
    assert.equal(searched.code, 0, searched.stderr);
    assert.equal(copied(searched.stdout), 1);
    assert.deepEqual(await held(to), expect([a1, a2, b1, b2, c1, a4], [a3, c2]));
    const rest = await runCli(['migrate', ...ends(from, to), '--state', state, '--json'], env);
    assert.equal(copied(rest.stdout), 1, rest.stderr);
    assert.deepEqual(await held(to), expect([a1, a2, b1, b2, c1, a4, b3], [a3, c2]));
  });

  test("'OR FLAGGED SUBJECT x', and a date key combined with --before; plan counts what the search selects", async () => {
    const from = await user('s', fixture);
    const to = await user('d');
    const or = await runCli(['migrate', ...ends(from, to), '--no-state', '--search', 'OR FLAGGED SUBJECT x', '--json'], env);
    assert.equal(or.code, 0, or.stderr);
    assert.deepEqual(await held(to), expect([b1, c1], [c2]));
    const to2 = await user('d');
    const plan = await runCli(['plan', ...ends(from, to2), '--search', 'SINCE 1-Mar-2024', '--before', '2024-04-15', '--json'], env);
    assert.equal(plan.code, 0, plan.stderr);
    const counts = (JSON.parse(plan.stdout) as { folders: { source: string; sourceCount: number }[] }).folders.filter((f) => ['INBOX', 'Work'].includes(f.source));
    assert.deepEqual(Object.fromEntries(counts.map((f) => [f.source, f.sourceCount])), { INBOX: 1, Work: 1 });
    const dated = await runCli(['migrate', ...ends(from, to2), '--no-state', '--search', 'SINCE 1-Mar-2024', '--before', '2024-04-15'], env);
    assert.equal(dated.code, 0, dated.stderr);
    assert.deepEqual(await held(to2), expect([a1], [a3]));
  });

  test('keys the server refuses (BAD) stop the mailbox before any folder is created or message copied: exit 2, the server\'s words', async () => {
    const from = await user('s', fixture);
    const to = await user('d');
    const run = await runCli(['migrate', ...ends(from, to), '--no-state', '--search', 'FOO BAR', '--json'], env);
    assert.equal(run.code, 2, run.stderr);
    const report = JSON.parse(run.stdout) as { status: string; error: { code: string; message: string; serverResponse?: string }; totals: { copied: number } };
    assert.equal(report.error.code, 'MM-SEARCH-REFUSED');
    assert.match(report.error.serverResponse ?? '', /^BAD /);
    assert.ok(report.error.message.includes(report.error.serverResponse!), report.error.message);
    assert.equal(report.totals.copied, 0);
    const folders = await readMailbox(server, to, 'dst-pw');
    assert.ok(!folders.some((f) => f.path.join('/') === 'Work'), 'no folder was created');
    assert.equal(folders.reduce((k, f) => k + f.messages.length, 0), 0);
    const plain = await runCli(['migrate', ...ends(from, to), '--no-state', '--search', 'FOO BAR'], env);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /MM-SEARCH-REFUSED.*BAD/);
    // No folder was looked at: no table of folders with counts nobody took.
    assert.doesNotMatch(plain.stdout + plain.stderr, /SOURCE\s+DESTINATION/);
    const verify = await runCli(['verify', ...ends(from, to), '--search', 'FOO BAR'], env);
    assert.equal(verify.code, 2, verify.stdout + verify.stderr);
    assert.match(verify.stderr, /MM-SEARCH-REFUSED/);
  });

  test('keys that could break the command line, a maildir source, UID keys in verify and --sync-deletions are refused before anything connects', async () => {
    // A closed port: any attempt to connect would end with exit 5, not 2.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const nowhere = ['--from', `imap://s@127.0.0.1:${port}`, '--to', `imap://d@127.0.0.1:${port}`, '--no-state'];
    const cases: [string[], RegExp][] = [
      [['migrate', ...nowhere, '--search', 'ALL\r\nA1 DELETE INBOX'], /line break/],
      [['migrate', ...nowhere, '--search', 'SUBJECT {5}'], /literal/],
      [['plan', ...nowhere, '--search', 'OR (FLAGGED UNSEEN'], /not closed/],
      [['verify', '--from', `imap://s@127.0.0.1:${port}`, '--to', `imap://d@127.0.0.1:${port}`, '--search', 'UID 1:100'], /UID select/],
      [['migrate', '--from', `maildir:${join(dir, 'no-such-maildir')}`, '--to', `imap://d@127.0.0.1:${port}`, '--no-state', '--search', 'FROM alice'], /local archive \(maildir:\).*--since/],
      [['migrate', ...nowhere.slice(0, 4), '--state', join(dir, 'sd.sqlite'), '--sync-deletions', '--search', 'FROM alice'], /--sync-deletions cannot be combined/],
    ];
    for (const [args, why] of cases) {
      const run = await runCli(args, env);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /MM-CONFIG-OPTION/);
      assert.match(run.stderr, why);
    }
  });
});
