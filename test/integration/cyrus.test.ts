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
import { describe, test } from 'node:test';
import { cyrusAvailable, CYRUS_AUTO_FOLDERS, CYRUS_MISSING, startCyrus } from '../helpers/cyrus.js';
import { DOVECOT_AUTO_FOLDERS, expectedFromFixture, type FixtureFolder, type NamespaceInfo, type ReadBackFolder, readMailbox, seedMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { account, assertExactMigration, assertSameMailbox, DOVECOT_NS, interopSuite, type Report, runFetchScript } from '../helpers/interop.js';

/**
 * Decides whether this file can run. Locally a missing Cyrus is a skip with a hint; in CI it must not
 * silently skip, so the fetch script runs here (it is idempotent and also runs in
 * scripts/install-system-deps.sh) and a failure to get Cyrus fails the file.
 */
function ensureCyrus(): boolean {
  if (cyrusAvailable()) return true;
  if (!process.env.CI) return false;
  const status = runFetchScript('fetch-cyrus.sh');
  if (status !== 0 || !cyrusAvailable()) throw new Error(`CI: scripts/fetch-cyrus.sh failed (status ${status}); Cyrus IMAP is required`);
  return true;
}

const CYRUS_NS: NamespaceInfo = { prefix: 'INBOX.', delimiter: '.' };

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

const available = ensureCyrus();

describe('migrate between Cyrus IMAP and Dovecot', { skip: available ? false : CYRUS_MISSING }, () => {
  const s = interopSuite(startCyrus, cyrusCompatible);

  test('Cyrus → Dovecot: the destination holds exactly the fixture; a rerun copies nothing', async () => {
    const { other: cyrus, dovecot, fixture } = s;
    // The source itself must hold the fixture, or a difference below would not be mailmover's.
    const stored = withCyrusParents(expectedFromFixture(fixture, { namespace: CYRUS_NS, autoFolders: CYRUS_AUTO_FOLDERS }));
    // INBOX children on Cyrus are INBOX.X like any top-level folder, so they arrive top-level
    // (namespace pair); the source's empty parents arrive as the empty folders they are there.
    // Dovecot's own Drafts/Sent/Trash/Junk exist (subscribed, auto = subscribe); Cyrus's same-named,
    // unsubscribed, empty folders land in them, and mailmover adds subscriptions but never removes one.
    const expected = withCyrusParents(expectedFromFixture(fixture, { namespace: [CYRUS_NS, DOVECOT_NS], autoFolders: DOVECOT_AUTO_FOLDERS }));
    await assertExactMigration(account(cyrus, 'Cyrus', 'alice'), account(dovecot, 'Dovecot', 'alice'), dovecot, fixture, { source: stored, destination: expected });
  });

  test('Dovecot → Cyrus: the destination holds exactly the fixture; a rerun copies nothing', async () => {
    const { other: cyrus, dovecot, fixture } = s;
    // INBOX children become INBOX.X, i.e. top-level folders (namespace pair); the source's \Noselect
    // parents become Cyrus's ordinary empty parents. Drafts/Sent/Trash/Junk: Cyrus created them
    // unsubscribed; the source has them subscribed, and subscriptions follow the source.
    const expected = withCyrusParents(expectedFromFixture(fixture, { namespace: [DOVECOT_NS, CYRUS_NS], autoFolders: DOVECOT_AUTO_FOLDERS }));
    // A fresh Cyrus user: its INBOX and special-use folders are created at mailmover's first login.
    await assertExactMigration(account(dovecot, 'Dovecot', 'bob'), account(cyrus, 'Cyrus', 'bob'), dovecot, fixture, { destination: expected });
  });

  test('Dovecot → Cyrus: what Cyrus refuses is reported with its words, the rest arrives', async () => {
    const { other: cyrus, dovecot, full } = s;
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
