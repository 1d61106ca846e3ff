/**
 * Folder names that would hurt the destination or the terminal, through the real CLI:
 * - levels a Maildir destination keeps for itself ("subscriptions", "dovecot.index", "new",
 *   "Work/tmp") arrive renamed in a real Dovecot with LAYOUT=fs, LIST and LSUB keep working for
 *   the whole account, and no control file on disk became a directory;
 * - names with ESC, CR/LF, C1 controls and bidi overrides are shown escaped on stdout and stderr
 *   (never raw), while --json keeps the real names.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { expectedFromFixture, readMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type Personality, type ScriptedFolder, type ScriptedMessage } from '../helpers/scripted-imap/server.js';
import { exchange, literalNames } from '../helpers/scripted-imap/personalities.js';

let serial = 0;
function msg(tag: string): ScriptedMessage {
  serial++;
  return {
    raw: Buffer.from(`From: names@example.org\r\nTo: alice@example.org\r\nSubject: ${tag} #${serial}\r\nMessage-ID: <n${serial}@example.org>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nbody of ${tag}\r\n`),
    flags: ['\\Seen'],
    internalDate: new Date(Date.UTC(2022, serial % 12, 1 + (serial % 27), 9, 0, 0)),
  };
}
const folder = (name: string, messages: ScriptedMessage[] = []): ScriptedFolder => ({ name, messages, subscribed: true });

/** Every directory below `root`, relative to it. */
function directories(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = path.join(rel, e.name);
    out.push(sub, ...directories(root, sub));
  }
  return out;
}

describe('folder names that hurt the destination or the terminal', () => {
  let dest: DovecotServer;
  let users = 0;
  before(async () => {
    dest = await startDovecot({ separator: '/' }); // Maildir with LAYOUT=fs: folders are directories
  });
  after(async () => dest?.stop());

  /** A scripted source holding `folders` (stopped after the test) and a fresh destination user. */
  async function run(t: TestContext, personality: Personality, folders: ScriptedFolder[]) {
    const source = await startScriptedImap({ personality, users: { alice: { password: 'src-pw', folders } } });
    t.after(() => source.stop());
    const user = `n${++users}`;
    await dest.addUser(user, 'dst-pw');
    const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
    const cli = (command: string, extra: string[] = []) => runCli([command, '--from', `imap://alice@127.0.0.1:${source.port}`, '--to', dest.url(user), '--to-tls-insecure', ...extra], env);
    return { user, cli };
  }

  test('reserved names arrive renamed, LIST and LSUB work for the whole account, no control file became a directory', async (t) => {
    const content: Record<string, ScriptedMessage[]> = {
      INBOX: [msg('inbox')],
      subscriptions: [msg('subs'), msg('subs2')],
      'dovecot.index': [msg('index')],
      new: [msg('new')],
      Work: [msg('work')],
      'Work/tmp': [msg('tmp')],
    };
    const { user, cli } = await run(t, exchange, Object.entries(content).map(([n, m]) => folder(n, m)));
    const migrated = await cli('migrate', ['--json']);
    assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout.slice(0, 3000));
    const report = JSON.parse(migrated.stdout) as { folders: { source: string; destination: string; renamed: boolean; renameReasons?: string[] }[] };
    const renamed = Object.fromEntries(report.folders.filter((f) => f.renamed).map((f) => [f.source, [f.destination, f.renameReasons]]));
    assert.deepEqual(renamed, {
      subscriptions: ['_subscriptions', ['reserved-name']],
      'dovecot.index': ['_dovecot.index', ['reserved-name']],
      new: ['_new', ['reserved-name']],
      'Work/tmp': ['Work/_tmp', ['reserved-name']],
    });

    // Read back over IMAP with imapflow (LIST and LSUB): every message under the renamed folders, all subscribed.
    const expected: FixtureFolder[] = [
      { path: ['INBOX'], subscribed: true, messages: content.INBOX! },
      { path: ['_subscriptions'], subscribed: true, messages: content.subscriptions! },
      { path: ['_dovecot.index'], subscribed: true, messages: content['dovecot.index']! },
      { path: ['_new'], subscribed: true, messages: content.new! },
      { path: ['Work'], subscribed: true, messages: content.Work! },
      { path: ['Work', '_tmp'], subscribed: true, messages: content['Work/tmp']! },
    ];
    assert.deepEqual(await readMailbox(dest, user, 'dst-pw'), expectedFromFixture(expected));

    // On disk: the subscriptions file is a file, no dovecot* control name is a directory, and the
    // Maildir directories cur/new/tmp hold no folder.
    const maildir = path.join(dest.homeOf(user), 'Maildir');
    assert.ok(statSync(path.join(maildir, 'subscriptions')).isFile(), 'the subscriptions file is a file');
    const dirs = directories(maildir);
    const control = dirs.filter((d) => /^(dovecot|subscriptions$|maildirfolder$|courierimap)/i.test(path.basename(d)));
    assert.deepEqual(control, [], 'no control file turned into a directory');
    const insideMaildirDirs = dirs.filter((d) => d.split(path.sep).slice(0, -1).some((p) => ['cur', 'new', 'tmp'].includes(p)));
    assert.deepEqual(insideMaildirDirs, [], 'cur/new/tmp hold messages only');

    // A rerun finds everything in place (the renames are deterministic), and plan shows the reason.
    const again = await cli('migrate', ['--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { totals: { copied: number } }).totals.copied, 0);
    const plan = await cli('plan');
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^new +_new \(renamed: reserved-name\)/m);
    assert.match(plan.stdout, /^Work\/tmp +Work\/_tmp \(renamed: reserved-name\)/m);
  });

  test('control characters and bidi overrides in names are escaped on the terminal, kept in JSON', async (t) => {
    const hostile = ['Esc\u001b[31mRed\u001b]0;owned\u0007', 'CR\rLF\nforged line', 'C1\u009bcsi', 'bidi\u202egpj.exe', 'iso\u2066late\u2069', 'back\\slash'];
    const { cli } = await run(t, literalNames, [folder('INBOX', [msg('in')]), ...hostile.map((n) => folder(n, [msg(n)]))]);
    const escaped = ['Esc\\x1b[31mRed\\x1b]0;owned\\x07', 'CR\\rLF\\nforged line', 'C1\\x9bcsi', 'bidi\\u202egpj.exe', 'iso\\u2066late\\u2069', 'back\\\\slash'];
    // eslint-disable-next-line no-control-regex
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
    for (const [command, extra] of [['plan', []], ['migrate', ['--no-progress']]] as const) {
      const out = await cli(command, [...extra]);
      // imapflow cannot send a name holding CR or LF (it has no literal for mailbox names), so that
      // one folder cannot be opened at the source: it is reported, with its name escaped.
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /folder "CR\\rLF\\nforged line" failed: MM-FOLDER-SELECT-FAILED/);
      const both = out.stdout + out.stderr;
      assert.ok(!raw.test(both), `${command}: a raw control or bidi character reached the terminal: ${JSON.stringify(both.match(raw))}`);
      assert.ok(!/^LF/m.test(both) && !/^forged/m.test(both), `${command}: a CR/LF in a name forged a line`);
      for (const e of escaped) assert.ok(out.stdout.includes(e), `${command}: ${e} shown escaped in the summary:\n${out.stdout}`);
      if (command === 'migrate') assert.ok(out.stderr.includes(`folder "${escaped[1]}"`), `migrate: the folder line escapes it too:\n${out.stderr}`);
    }
    const json = await cli('plan', ['--json']);
    const report = JSON.parse(json.stdout) as { folders: { source: string }[] };
    for (const n of hostile) assert.ok(report.folders.some((f) => f.source === n), `JSON keeps ${JSON.stringify(n)}`);
  });

  test('a folder name over 64 KiB is reported (MM-FOLDER-NAME-TOO-LONG) and left out; the other folders arrive', async (t) => {
    const huge = `Huge ${'y'.repeat(70_000)}`;
    const inbox = [msg('in-huge')];
    const { user, cli } = await run(t, literalNames, [folder('INBOX', inbox), folder(huge, [msg('lost')]), folder('Fine', [msg('fine')])]);
    const out = await cli('migrate', ['--json']);
    assert.equal(out.code, 1, out.stderr);
    const report = JSON.parse(out.stdout) as { folders: { source: string; error?: { code: string } }[] };
    const refused = report.folders.filter((f) => f.error);
    assert.deepEqual(refused.map((f) => f.error!.code), ['MM-FOLDER-NAME-TOO-LONG']);
    assert.ok(refused[0]!.source.startsWith('Huge yyy') && refused[0]!.source.length < 200, refused[0]!.source.slice(0, 300));
    assert.ok(out.stdout.length < 20_000, 'the report does not carry the whole name');
    const got = await readMailbox(dest, user, 'dst-pw');
    const counts = new Map(got.map((f) => [f.path.join('/'), f.messages.length]));
    assert.equal(counts.get('INBOX'), 1);
    assert.equal(counts.get('Fine'), 1);
    assert.ok(![...counts.keys()].some((n) => n.startsWith('Huge')), [...counts.keys()].join(', '));
  });
});
