/**
 * A message the scanner cannot judge is its own outcome: a real clamd whose StreamMaxLength (1M)
 * is below a clean 3 MB message, between real Dovecot mailboxes, driven through the CLI. By
 * default the message is held out of its folder (a skipped item, the run partial, exit 3), never
 * counted as scanned, and the next run with a clamd that takes it delivers it exactly once;
 * `--scan-unscanned deliver` delivers it and says so. What arrives is read back from the
 * destination independently.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MigrationReport } from '../../src/index.js';
import type { VerifyReport } from '../../src/job/verify.js';
import { startClamd, eicarMessage, type ClamdServer } from '../helpers/clamd.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const message = (id: string, body: string, day: number): FixtureMessage => ({
  raw: Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: ${id}\r\nMessage-ID: <${id}@unscanned.test>\r\n\r\n${body}\r\n`),
  flags: day % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2023, 4, day)),
});
const small = (id: string, day: number) => message(id, `clean text of ${id} `.repeat(30), day);
/** Clean, about 3 MB: over the 1M StreamMaxLength of the small clamd, within the large one's. */
const big = message('big', 'a clean line of a large message\r\n'.repeat(95_000), 9);
const virus: FixtureMessage = { raw: eicarMessage('inline', 'virus'), flags: [], internalDate: new Date(Date.UTC(2024, 0, 2)) };

/** With an infected message: the default and the deliver runs. */
const withVirus: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: [small('a', 1), small('b', 2), small('c', 3), virus] },
  { path: ['Big'], subscribed: true, messages: [small('d', 4), big] },
];
/** Clean only, so that verify can match once the held message has arrived. */
const cleanOnly: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: [small('e', 5), small('f', 6)] },
  { path: ['Big'], subscribed: true, messages: [small('g', 7), big] },
];
/** The messages clamd can judge in `withVirus`, all different: each is scanned once. */
const judged = withVirus.flatMap((f) => f.messages).filter((m) => m !== big);

describe('a message the scanner cannot judge (real clamd, real Dovecot, CLI)', () => {
  let server: PlainDovecotServer;
  /** StreamMaxLength 1M: answers "INSTREAM size limit exceeded" for the big message. */
  let tight: ClamdServer;
  /** StreamMaxLength 10M: scans it. */
  let roomy: ClamdServer;
  let dir: string;
  let users = 0;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const ends = (src: string, dst: string) => ['--from', `imap://${src}@127.0.0.1:${server.port}`, '--to', `imap://${dst}@127.0.0.1:${server.port}`];
  const newUser = async () => {
    const user = `dst${++users}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  /** Runs migrate with a report file; resolves with the exit code, the printed summary and the report. */
  const migrateCli = async (src: string, dst: string, extra: string[]) => {
    const file = path.join(dir, `${dst}-${Date.now()}.json`);
    // The source "src" holds the EICAR message, which the scan puts in the quarantine folder: verify would rightly find it missing from its own.
    const check = src === 'src' ? { skipVerify: 'the scan quarantines the EICAR message, out of its folder' } : {};
    const run = await runCli(['migrate', ...ends(src, dst), '--report', file, ...extra], env, undefined, check);
    const report = JSON.parse(await readFile(file, 'utf8')) as MigrationReport;
    return { code: run.code, out: run.stdout, err: run.stderr, report };
  };
  /** SHA-256 lists per destination folder that holds messages, sorted. */
  const destShas = async (user: string) => {
    const out: Record<string, string[]> = {};
    for (const f of await readMailbox(server, user, 'dst-pw')) if (!f.noSelect && f.messages.length > 0) out[f.path.join('/')] = f.messages.map((m) => m.sha256).sort();
    return out;
  };
  const shas = (messages: FixtureMessage[]) => messages.map((m) => sha(m.raw)).sort();

  before(async () => {
    [server, tight, roomy, dir] = await Promise.all([
      startDovecot({ tls: false }),
      startClamd({ streamMaxLength: '1M' }),
      startClamd({ streamMaxLength: '10M' }),
      mkdtemp(path.join(os.tmpdir(), 'mm-unscanned-')),
    ]);
    await server.addUser('src', 'src-pw');
    await server.addUser('srcclean', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', withVirus);
    await seedMailbox(server, 'srcclean', 'src-pw', cleanOnly);
  });
  after(async () => {
    await Promise.all([server?.stop(), tight?.stop(), roomy?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('default: held out of its folder as a skipped item (partial, exit 3), counted as unscanned and not as scanned; the infected one quarantined', async () => {
    const user = await newUser();
    const { code, out, err, report } = await migrateCli('src', user, ['--scan', tight.url()]);
    assert.equal(code, 3, err + out);
    assert.equal(report.status, 'partial');

    assert.deepEqual(await destShas(user), {
      INBOX: shas(withVirus[0]!.messages.filter((m) => m !== virus)),
      Big: shas([withVirus[1]!.messages[0]!]),
      Quarantine: shas([virus]),
    });

    const scan = report.scan!;
    assert.equal(scan.onUnscanned, 'hold');
    assert.equal(scan.unscanned, 1);
    assert.equal(report.totals.unscanned, 1);
    assert.equal(scan.scanned, judged.length, 'the unscanned message is not among the scanned');
    assert.equal(
      scan.scannedBytes,
      judged.reduce((n, m) => n + m.raw.length, 0),
    );
    assert.equal(scan.infected, 1);
    const infected = scan.verdicts.filter((v) => v.verdict === 'infected');
    assert.deepEqual(
      infected.map((v) => [v.folder, v.action, v.quarantineFolder]),
      [['INBOX', 'quarantined', 'Quarantine']],
    );
    const unscanned = scan.verdicts.filter((v) => v.verdict === 'unscanned');
    assert.equal(unscanned.length, 1);
    assert.equal(unscanned[0]!.folder, 'Big');
    assert.equal(unscanned[0]!.messageId, 'big@unscanned.test');
    assert.equal(unscanned[0]!.action, 'held');
    assert.equal(unscanned[0]!.code, 'MM-SCAN-TOO-LARGE');
    assert.match(unscanned[0]!.reason!, /INSTREAM size limit exceeded/, "the scanner's own words");

    assert.equal(report.items.length, 1);
    assert.equal(report.items[0]!.code, 'MM-SCAN-UNSCANNED');
    assert.equal(report.items[0]!.folder, 'Big');
    assert.match(report.items[0]!.reason, /INSTREAM size limit exceeded/);
    assert.deepEqual(report.totals.skippedByReason, { 'MM-SCAN-UNSCANNED': 1 });
    assert.equal(report.verdict, 'good');

    // The summary says unscanned apart from scanned.
    assert.match(out, new RegExp(`: ${judged.length} scanned \\([^)]*\\), \\d+ from cache, 1 infected; 1 not scanned \\(unscanned\\); 1 quarantined, 1 held`));
    assert.match(out, /1 unscanned \(not counted as scanned; 1 held out of its folder for a rerun\)/);
    assert.match(out, /^partial: /m);
    // Said as it happens, with the progress lines.
    assert.match(err, /scan: folder "Big" UID \d+ <big@unscanned\.test>: unscanned \(.*INSTREAM size limit exceeded.*\); held out of its folder/);
  });

  test('--scan-unscanned deliver: delivered byte for byte and reported; complete, exit 0, verdict good', async () => {
    const user = await newUser();
    const { code, out, err, report } = await migrateCli('src', user, ['--scan', tight.url(), '--scan-unscanned', 'deliver']);
    assert.equal(code, 0, err + out);
    assert.equal(report.status, 'complete');
    assert.equal(report.verdict, 'good', 'not perfect: a message went unscanned');
    assert.deepEqual(report.items, []);

    const got = await destShas(user);
    assert.deepEqual(got, {
      INBOX: shas(withVirus[0]!.messages.filter((m) => m !== virus)),
      Big: shas(withVirus[1]!.messages),
      Quarantine: shas([virus]),
    });
    const bigThere = (await readMailbox(server, user, 'dst-pw')).find((f) => f.path.join('/') === 'Big')!.messages.find((m) => m.sha256 === sha(big.raw))!;
    assert.equal(bigThere.size, big.raw.length);

    const scan = report.scan!;
    assert.equal(scan.onUnscanned, 'deliver');
    assert.equal(scan.unscanned, 1);
    assert.equal(scan.scanned, judged.length);
    const unscanned = scan.verdicts.filter((v) => v.verdict === 'unscanned');
    assert.deepEqual(
      unscanned.map((v) => [v.folder, v.action, v.code]),
      [['Big', 'delivered', 'MM-SCAN-TOO-LARGE']],
    );
    assert.match(out, /1 unscanned \(not counted as scanned; 1 delivered unscanned\)/);
    assert.match(out, /verdict: good/);
  });

  test('a rerun with a clamd whose limit is raised scans the held message and delivers it exactly once; verify counts it missing until then', async () => {
    const user = await newUser();
    const first = await migrateCli('srcclean', user, ['--scan', tight.url()]);
    assert.equal(first.code, 3, first.err + first.out);
    assert.deepEqual(
      first.report.items.map((i) => i.code),
      ['MM-SCAN-UNSCANNED'],
    );

    const before = await runCli(['verify', ...ends('srcclean', user), '--json'], env);
    assert.equal(before.code, 1, before.stderr);
    const differ = JSON.parse(before.stdout) as VerifyReport;
    assert.equal(differ.status, 'differ');
    assert.deepEqual(
      differ.folders.filter((f) => f.missing > 0).map((f) => [f.source, f.missing]),
      [['Big', 1]],
    );

    const second = await migrateCli('srcclean', user, ['--scan', roomy.url()]);
    assert.equal(second.code, 0, second.err + second.out);
    assert.equal(second.report.status, 'complete');
    assert.equal(second.report.totals.copied, 1);
    assert.equal(second.report.scan!.unscanned, 0);
    assert.equal(second.report.scan!.scanned, 1, 'the held message was scanned this time');
    assert.equal(second.report.verdict, 'perfect');
    assert.deepEqual(await destShas(user), { INBOX: shas(cleanOnly[0]!.messages), Big: shas(cleanOnly[1]!.messages) });

    const third = await migrateCli('srcclean', user, ['--scan', roomy.url()]);
    assert.equal(third.code, 0, third.err + third.out);
    assert.equal(third.report.totals.copied, 0);
    assert.deepEqual(await destShas(user), { INBOX: shas(cleanOnly[0]!.messages), Big: shas(cleanOnly[1]!.messages) }, 'exactly once');

    const verified = await runCli(['verify', ...ends('srcclean', user)], env);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});
