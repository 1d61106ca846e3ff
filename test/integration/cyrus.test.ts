/**
 * Interoperability with a real Cyrus IMAP 3.6 (Debian's configuration: every folder below `INBOX.`,
 * separator `.`, special-use folders created at the first login): the real CLI migrates the fixture
 * mailbox Cyrus → Dovecot and Dovecot → Cyrus, the destination is read back independently and must hold
 * exactly the fixture, and a rerun copies nothing. The fixture is used without the few folder names and
 * the one message Cyrus refuses ({@link cyrusCompatible}); a third test migrates exactly those to Cyrus
 * and checks that they are reported and everything else arrives.
 *
 * Cyrus comes from `scripts/fetch-cyrus.sh` (Debian packages unpacked into .cache/cyrus, not installed:
 * they conflict with dovecot-imapd). Without it this file skips, except in CI (`CI` set), where it runs
 * the script itself and fails if Cyrus still cannot be had.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { cyrusAvailable, CYRUS_AUTO_FOLDERS, CYRUS_MISSING, startCyrus, type CyrusServer } from '../helpers/cyrus.js';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import {
  buildFixture,
  DOVECOT_AUTO_FOLDERS,
  expectedFromFixture,
  type FixtureFolder,
  type NamespaceInfo,
  type ReadBackFolder,
  readMailbox,
  seedMailbox,
} from '../helpers/fixture.js';
import { runCli, type CliResult } from '../helpers/cli.js';

/** The part of the JSON report these tests look at. */
interface Report {
  status: string;
  totals: { messages: number; copied: number; alreadyPresent: number; skipped: number };
  folders: { source: string; destination: string; copied: number; error?: { code: string; message: string; serverResponse?: string } }[];
  items: { folder: string; uid: number; code: string; reason: string }[];
  error?: { code: string; message: string };
}

/**
 * Decides whether this file can run. Locally a missing Cyrus is a skip with a hint; in CI it must not
 * silently skip, so the fetch script runs here (it is idempotent and also runs in
 * scripts/install-system-deps.sh) and a failure to get Cyrus fails the file.
 */
function ensureCyrus(): boolean {
  if (cyrusAvailable()) return true;
  if (!process.env.CI) return false;
  const script = fileURLToPath(new URL('../../scripts/fetch-cyrus.sh', import.meta.url));
  const r = spawnSync('bash', [script], { stdio: 'inherit', timeout: 600_000 });
  if (r.status !== 0 || !cyrusAvailable()) throw new Error(`CI: scripts/fetch-cyrus.sh failed (status ${r.status}); Cyrus IMAP is required`);
  return true;
}

const CYRUS_NS: NamespaceInfo = { prefix: 'INBOX.', delimiter: '.' };
const DOVECOT_NS: NamespaceInfo = { prefix: '', delimiter: '/' };

/** Parses `--json` output; on failure the assertion message shows what the CLI printed. */
function reportOf(run: CliResult): Report {
  assert.equal(run.code, 0, `exit ${run.code}\nstderr: ${run.stderr}\nstdout: ${run.stdout.slice(0, 4000)}`);
  try {
    return JSON.parse(run.stdout) as Report;
  } catch {
    assert.fail(`--json printed no JSON:\n${run.stdout.slice(0, 2000)}\n${run.stderr}`);
  }
}

/** Asserts a complete first run that copied every fixture message, with the report in the message. */
function assertCompleteCopy(r: Report, total: number): void {
  const detail = JSON.stringify({ status: r.status, totals: r.totals, error: r.error, items: r.items.slice(0, 5), failed: r.folders.filter((f) => f.error) }, null, 1);
  assert.equal(r.status, 'complete', detail);
  assert.equal(r.totals.messages, total, detail);
  assert.equal(r.totals.copied, total, detail);
  assert.equal(r.totals.skipped, 0, detail);
  assert.deepEqual(r.items, [], detail);
}

/**
 * True if Cyrus 3.6 refuses a folder name segment with `NO Invalid mailbox name`: it contains one of
 * ! " % ; < > \ { | } or a backtick (measured one by one over the printable ASCII punctuation), or a
 * control character. Dovecot takes them all.
 */
function cyrusRefusesName(segment: string): boolean {
  return [...segment].some((ch) => ch < ' ' || ch === '\x7f' || '!"%;<>\\`{|}'.includes(ch));
}

/**
 * True if Cyrus refuses the message on APPEND with `NO Message contains invalid header`: a header field
 * name with a character outside printable ASCII, e.g. the fixture's `Subject : space before colon`
 * (legal obsolete syntax, RFC 5322 §4.5). Only field names matter; raw 8-bit field values are taken.
 */
function cyrusRefusesMessage(raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end === -1 ? raw.length : end).toString('latin1');
  return head.split('\r\n').filter((line) => line !== '').some((line) => !/^[ \t]/.test(line) && !/^[\x21-\x39\x3b-\x7e]+:/.test(line));
}

/**
 * The fixture minus what Cyrus cannot store, so that both directions can be compared with
 * expectedFromFixture: the folders whose names Cyrus refuses (`"` in `With "quotes" and spaces` and
 * `Work/Clients/He said "hi"`, `\` in `Back\slash`, `%` in `Wildcards % and *`, `{}` in
 * `[Brackets] {Braces} #Hash ~Tilde`) and the one message it refuses (see {@link cyrusRefusesMessage}).
 * The last test checks that mailmover reports these when they meet Cyrus, and copies the rest.
 */
function cyrusCompatible(folders: FixtureFolder[]): FixtureFolder[] {
  return folders
    .filter((f) => !f.path.some(cyrusRefusesName))
    .map((f) => ({ ...f, messages: f.messages.filter((m) => !cyrusRefusesMessage(m.raw)) }));
}

/**
 * Cyrus has no placeholder folders: creating `INBOX.A.B` also creates `INBOX.A` as a real, empty,
 * selectable mailbox (measured: LIST shows it without `\Noselect`, SELECT works). So where Cyrus holds
 * the tree, or is the source it was copied from, the fixture's implicit ancestors (`Placeholder Parent`
 * and its `Child B`) are ordinary empty, unsubscribed folders.
 */
function withCyrusParents(expected: ReadBackFolder[]): ReadBackFolder[] {
  return expected.map((f) => (f.noSelect ? { ...f, noSelect: false } : f));
}

/**
 * deepEqual, with a short list of the differences as the message: the full diff of two 40-folder trees
 * is thousands of lines, and this says which folder and which message (by size, flags, date) differ.
 */
function assertSameMailbox(actual: ReadBackFolder[], expected: ReadBackFolder[], what: string): void {
  const key = (f: ReadBackFolder) => f.path.join(' / ');
  const msg = (m: ReadBackFolder['messages'][number]) => `${m.size} B [${m.flags.join(' ')}] ${new Date(m.internalDate).toISOString()} ${m.sha256.slice(0, 12)}`;
  const got = new Map(actual.map((f) => [key(f), f]));
  const want = new Map(expected.map((f) => [key(f), f]));
  const lines: string[] = [];
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const a = got.get(k);
    const e = want.get(k);
    if (!a || !e) {
      const f = (a ?? e)!;
      lines.push(`${a ? 'unexpected' : 'missing'} folder "${k}" (subscribed ${f.subscribed}, noSelect ${f.noSelect}, ${f.messages.length} messages)`);
      continue;
    }
    if (a.subscribed !== e.subscribed) lines.push(`"${k}": subscribed ${a.subscribed}, expected ${e.subscribed}`);
    if (a.noSelect !== e.noSelect) lines.push(`"${k}": noSelect ${a.noSelect}, expected ${e.noSelect}`);
    const rest = a.messages.map(msg);
    for (const m of e.messages.map(msg)) {
      const i = rest.indexOf(m);
      if (i === -1) lines.push(`"${k}": missing message ${m}`);
      else rest.splice(i, 1);
    }
    for (const m of rest) lines.push(`"${k}": unexpected message ${m}`);
  }
  assert.deepEqual(actual, expected, `${what}:\n${lines.slice(0, 40).join('\n')}${lines.length > 40 ? `\n... ${lines.length - 40} more` : ''}`);
}

const available = ensureCyrus();

describe('migrate between Cyrus IMAP and Dovecot', { skip: available ? false : CYRUS_MISSING }, () => {
  let cyrus: CyrusServer;
  let dovecot: DovecotServer;
  let full: FixtureFolder[];
  let fixture: FixtureFolder[];
  let total = 0;

  before(async () => {
    [cyrus, dovecot] = await Promise.all([startCyrus(), startDovecot()]);
    full = buildFixture({ bigMessageBytes: 1024 * 1024 });
    fixture = cyrusCompatible(full);
    total = fixture.reduce((n, f) => n + f.messages.length, 0);
  });
  after(async () => {
    await Promise.all([cyrus?.stop(), dovecot?.stop()]);
  });

  test('Cyrus → Dovecot: the destination holds exactly the fixture; a rerun copies nothing', async () => {
    await cyrus.addUser('alice', 'alice-cyrus-pw');
    await seedMailbox(cyrus, 'alice', 'alice-cyrus-pw', fixture);
    // The source itself must hold the fixture, or a difference below would not be mailmover's.
    assertSameMailbox(
      await readMailbox(cyrus, 'alice', 'alice-cyrus-pw'),
      withCyrusParents(expectedFromFixture(fixture, { namespace: CYRUS_NS, autoFolders: CYRUS_AUTO_FOLDERS })),
      'Cyrus did not store the fixture as given',
    );

    await dovecot.addUser('alice', 'alice-dovecot-pw');
    const args = ['migrate', '--from', cyrus.url('alice'), '--to', dovecot.url('alice'), '--to-tls-insecure', '--json'];
    const env = { MAILMOVER_FROM_PASSWORD: 'alice-cyrus-pw', MAILMOVER_TO_PASSWORD: 'alice-dovecot-pw' };
    assertCompleteCopy(reportOf(await runCli(args, env)), total);

    const copied = await readMailbox(dovecot, 'alice', 'alice-dovecot-pw');
    // INBOX children on Cyrus are INBOX.X like any top-level folder, so they arrive top-level
    // (namespace pair); the source's empty parents arrive as the empty folders they are there.
    // Dovecot's own Drafts/Sent/Trash/Junk exist (subscribed, auto = subscribe); Cyrus's same-named,
    // unsubscribed, empty folders land in them, and mailmover adds subscriptions but never removes one.
    const expected = withCyrusParents(expectedFromFixture(fixture, { namespace: [CYRUS_NS, DOVECOT_NS], autoFolders: DOVECOT_AUTO_FOLDERS }));
    assertSameMailbox(copied, expected, 'Dovecot (destination) does not hold the fixture');

    const again = reportOf(await runCli(args, env));
    assert.equal(again.totals.copied, 0, JSON.stringify(again.totals));
    assert.equal(again.totals.alreadyPresent, total, JSON.stringify(again.totals));
    assertSameMailbox(await readMailbox(dovecot, 'alice', 'alice-dovecot-pw'), copied, 'a rerun changed the destination');
  });

  test('Dovecot → Cyrus: the destination holds exactly the fixture; a rerun copies nothing', async () => {
    await dovecot.addUser('bob', 'bob-dovecot-pw');
    await seedMailbox(dovecot, 'bob', 'bob-dovecot-pw', fixture);
    // A fresh Cyrus user: its INBOX and special-use folders are created at mailmover's first login.
    await cyrus.addUser('bob', 'bob-cyrus-pw');
    const args = ['migrate', '--from', dovecot.url('bob'), '--to', cyrus.url('bob'), '--from-tls-insecure', '--json'];
    const env = { MAILMOVER_FROM_PASSWORD: 'bob-dovecot-pw', MAILMOVER_TO_PASSWORD: 'bob-cyrus-pw' };
    assertCompleteCopy(reportOf(await runCli(args, env)), total);

    const copied = await readMailbox(cyrus, 'bob', 'bob-cyrus-pw');
    // INBOX children become INBOX.X, i.e. top-level folders (namespace pair); the source's \Noselect
    // parents become Cyrus's ordinary empty parents. Drafts/Sent/Trash/Junk: Cyrus created them
    // unsubscribed; the source has them subscribed, and subscriptions follow the source.
    const expected = withCyrusParents(expectedFromFixture(fixture, { namespace: [DOVECOT_NS, CYRUS_NS], autoFolders: DOVECOT_AUTO_FOLDERS }));
    assertSameMailbox(copied, expected, 'Cyrus (destination) does not hold the fixture');

    const again = reportOf(await runCli(args, env));
    assert.equal(again.totals.copied, 0, JSON.stringify(again.totals));
    assert.equal(again.totals.alreadyPresent, total, JSON.stringify(again.totals));
    assertSameMailbox(await readMailbox(cyrus, 'bob', 'bob-cyrus-pw'), copied, 'a rerun changed the destination');
  });

  test('Dovecot → Cyrus: what Cyrus refuses is reported with its words, the rest arrives', async () => {
    // The top-level folders with names Cyrus refuses, and the folder holding the message it refuses.
    const refusedFolders = full.filter((f) => f.path.length === 1 && cyrusRefusesName(f.path[0]!));
    const odd = full.find((f) => f.path.join('/') === 'Headers & Bytes')!;
    const refusedMessages = odd.messages.filter((m) => cyrusRefusesMessage(m.raw));
    assert.equal(refusedFolders.length, 4);
    assert.equal(refusedMessages.length, 1);
    const mini: FixtureFolder[] = [{ path: ['INBOX'], subscribed: true, messages: [] }, ...refusedFolders, odd];

    await dovecot.addUser('carol', 'carol-dovecot-pw');
    await seedMailbox(dovecot, 'carol', 'carol-dovecot-pw', mini);
    await cyrus.addUser('carol', 'carol-cyrus-pw');
    const run = await runCli(['migrate', '--from', dovecot.url('carol'), '--to', cyrus.url('carol'), '--from-tls-insecure', '--json'], {
      MAILMOVER_FROM_PASSWORD: 'carol-dovecot-pw',
      MAILMOVER_TO_PASSWORD: 'carol-cyrus-pw',
    });
    // Exit 1: folders could not be created (docs/errors.md); the report still comes out.
    assert.equal(run.code, 1, run.stderr);
    const r = JSON.parse(run.stdout) as Report;
    assert.equal(r.status, 'failed');
    const failed = r.folders.filter((f) => f.error).map((f) => [f.source, f.error!.code, f.error!.serverResponse]);
    assert.deepEqual(
      failed.sort(),
      refusedFolders.map((f) => [f.path[0], 'MM-FOLDER-CREATE-FAILED', 'NO Invalid mailbox name']).sort(),
    );
    assert.deepEqual(r.items.map((i) => [i.folder, i.code]), [['Headers & Bytes', 'MM-APPEND-FAILED']]);
    assert.match(r.items[0]!.reason, /Message contains invalid header/);
    assert.equal(r.totals.copied, odd.messages.length - 1);

    const expected = withCyrusParents(expectedFromFixture(cyrusCompatible(mini), { namespace: [DOVECOT_NS, CYRUS_NS], autoFolders: DOVECOT_AUTO_FOLDERS }));
    assertSameMailbox(await readMailbox(cyrus, 'carol', 'carol-cyrus-pw'), expected, 'Cyrus (destination) does not hold the rest');
  });
});
