/**
 * `mbox:` endpoints against independent readers: an mbox tree mailmover writes is served by a
 * real Dovecot (mail_location = mbox) and read by Python's `mailbox.mbox` with the source's bytes,
 * flags, keywords and dates; the mbox Dovecot itself wrote is read by mailmover into another
 * account exactly; a Gmail Takeout file is read by its labels in both modes; and hostile files
 * (cut off, unquoted From lines, not an mbox, a link out of the tree) cost what they must only.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { decodeMutf7 } from '../../src/stores/maildir/mutf7.js';
import { takeoutMbox, takeoutMessages } from '../helpers/takeout.js';

const PW = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };
/** Dovecot's mbox layout, as the store writes it. */
const MBOX_CONF = 'mail_location = mbox:%h/mail:INBOX=%h/mail/inbox\nmail_save_crlf = no\n';

/** The fixture less the folders Dovecot's mbox layout cannot have (a folder with children; INBOX may). */
function mboxFixture(): FixtureFolder[] {
  const all = buildFixture({ bigMessageBytes: 200_000 });
  return all.filter((f) => f.path.join('/') === 'INBOX' || !all.some((o) => o.path.length > f.path.length && o.path.slice(0, f.path.length).join('/') === f.path.join('/')));
}

interface RawMessage {
  raw: Buffer;
  flags: string[];
  date: number;
  uid: number;
  uidValidity: number;
  uidNext: number;
}

/** Every message of an account by folder: bytes, flags (no \Recent) and INTERNALDATE. */
async function readRaw(d: PlainDovecotServer, user: string): Promise<Map<string, RawMessage[]>> {
  const c = new ImapFlow({ host: d.host, port: d.port, secure: false, auth: { user, pass: 'pw' }, logger: false });
  await c.connect();
  const out = new Map<string, RawMessage[]>();
  try {
    for (const e of await c.list()) {
      if (e.flags.has('\\Noselect') || e.flags.has('\\NonExistent')) continue;
      const lock = await c.getMailboxLock(e.path, { readOnly: true });
      const msgs: RawMessage[] = [];
      try {
        if (c.mailbox && c.mailbox.exists) {
          for await (const m of c.fetch('1:*', { source: true, flags: true, internalDate: true })) {
            msgs.push({ raw: m.source!, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(), date: new Date(m.internalDate!).getTime(), uid: m.uid, uidValidity: Number(c.mailbox.uidValidity), uidNext: c.mailbox.uidNext });
          }
        }
      } finally {
        lock.release();
      }
      out.set(e.path, msgs.sort((a, b) => Buffer.compare(a.raw, b.raw)));
    }
  } finally {
    await c.logout();
  }
  return out;
}

/** mboxrd quoting, as Dovecot and Python show a quoted line (neither undoes it). */
const quoted = (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(/(^|\n)(>*From )/g, '$1>$2'), 'latin1');
const hasFromLine = (raw: Buffer) => /(^|\n)>*From /.test(raw.toString('latin1'));

const PY_MBOX = String.raw`
import json, mailbox, os, sys, hashlib
root = sys.argv[1]
out = {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    for name in filenames:
        if name.startswith('.') or name.endswith('.lock'):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root)
        msgs = []
        mb = mailbox.mbox(path, create=False)
        for key in mb.keys():
            raw = mb.get_bytes(key)
            m = mb.get_message(key)
            lines = raw.split(b'\n')
            head_end = lines.index(b'') if b'' in lines else len(lines)
            keep = [l for i, l in enumerate(lines) if i >= head_end or not l.split(b':')[0].lower() in (b'status', b'x-status', b'x-keywords', b'content-length', b'x-uid', b'x-imapbase')]
            msgs.append({'hex': b'\n'.join(keep).hex(), 'flags': m.get_flags(), 'keywords': (m.get('X-Keywords') or '').split(), 'from': m.get_from(), 'parsed': m.get('Status') is not None})
        out['INBOX' if rel == 'inbox' else rel] = msgs
print(json.dumps(out))
`;

describe('mbox: endpoints', () => {
  let imap: PlainDovecotServer;
  let mboxd: PlainDovecotServer;
  let dir: string;
  const fixture = mboxFixture();
  before(async () => {
    imap = await startDovecot({ separator: '/', tls: false });
    mboxd = await startDovecot({ separator: '/', tls: false, extraConfig: MBOX_CONF });
    for (const u of ['alice', 'carol', 'erin', 'tk1', 'tk2', 'hostile', 'mixed']) await imap.addUser(u, 'pw');
    for (const u of ['bob', 'dave', 'frank']) await mboxd.addUser(u, 'pw');
    await seedMailbox(imap, 'alice', 'pw', fixture);
    dir = mkdtempSync(join(tmpdir(), 'mm-mbox-'));
    // Dovecot's mail processes run as the owner of the mail directory.
    chmodTree(dir);
  });
  after(async () => {
    await imap?.stop();
    await mboxd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('IMAP -> mbox tree: Dovecot and Python read what the source holds; a rerun copies nothing; verify agrees; back to IMAP exact', async () => {
    const home = mboxd.homeOf('bob');
    mkdirSync(home, { recursive: true });
    const tree = join(home, 'mail');
    const first = await runCli(['migrate', '--from', imap.url('alice'), '--to', `mbox:${tree}`, '--state', join(dir, 'a.db'), '--no-progress'], PW);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const again = await runCli(['migrate', '--from', imap.url('alice'), '--to', `mbox:${tree}`, '--state', join(dir, 'a.db'), '--no-progress'], PW);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing to copy/);
    const v = await runCli(['verify', '--from', imap.url('alice'), '--to', `mbox:${tree}`, '--no-progress'], PW);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const source = await readRaw(imap, 'alice');

    // Python's mailbox.mbox: bytes (LF, quoted, a final line end added), flags, keywords, From-line date.
    const pyRaw = JSON.parse(execFileSync('python3', ['-c', PY_MBOX, tree], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })) as Record<string, { hex: string; flags: string; keywords: string[]; from: string; parsed: boolean }[]>;
    // File names are Dovecot's modified UTF-7.
    const py = Object.fromEntries(Object.entries(pyRaw).map(([k, v]) => [k.split('/').map(decodeMutf7).join('/'), v]));
    for (const [folder, msgs] of source) {
      const got = py[folder] ?? [];
      const want = msgs.map((m) => {
        let lf = quoted(m.raw).toString('latin1').replace(/\r\n/g, '\n');
        if (!lf.endsWith('\n')) lf += '\n';
        const letters = [m.flags.includes('\\Seen') ? 'R' : '', 'O', m.flags.includes('\\Deleted') ? 'D' : '', m.flags.includes('\\Flagged') ? 'F' : '', m.flags.includes('\\Answered') ? 'A' : '', m.flags.includes('\\Draft') ? 'T' : ''].join('');
        return `${Buffer.from(lf, 'latin1').toString('hex')} ${[...letters].sort().join('')} ${m.flags.filter((f) => !f.startsWith('\\')).sort().join(',')} ${new Date(m.date).toUTCString().slice(5, 25)}`;
      });
      // Python's parser stops a header block at a line it cannot parse (the fixture's odd-syntax
      // message), so it does not see the store fields below it: only that message's bytes are compared.
      const unparsed = new Set(got.filter((m) => !m.parsed).map((m) => m.hex));
      assert.ok(unparsed.size <= 1, `python parses the headers of ${folder}`);
      const have = got.map((m) => {
        const date = /(\w{3}) +(\d+) (\d\d:\d\d:\d\d) (\d{4})$/.exec(m.from)!;
        return `${m.hex} ${m.parsed ? [...m.flags].sort().join('') : '-'} ${m.parsed ? [...m.keywords].sort().join(',') : '-'} ${date[2]!.padStart(2, '0')} ${date[1]} ${date[4]} ${date[3]}`;
      });
      const wanted = want.map((w) => (unparsed.has(w.split(' ')[0]!) ? w.replace(/^(\S+) \S* \S* /, '$1 - - ') : w));
      assert.deepEqual(have.sort(), wanted.sort(), `python reads ${folder}`);
    }

    // Back from the mbox tree into another account: exact, every folder (before Dovecot has
    // opened the tree: Dovecot rewrites the files it syncs and drops the keywords no X-IMAPbase names).
    const back = await runCli(['migrate', '--from', `mbox:${tree}`, '--to', imap.url('carol'), '--no-state', '--no-progress'], PW);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.deepEqual(await readMailbox(imap, 'carol', 'pw'), await readMailbox(imap, 'alice', 'pw'));

    // Dovecot pointed at the tree serves the source's messages (quoted lines stay quoted in Dovecot),
    // with their flags and keywords (X-IMAPbase names them), under the UIDs mailmover gave them.
    const uidsBefore = mailmoverUids(tree);
    execFileSync('chown', ['-R', `${statSync(join(mboxd.dir, 'mail')).uid}:${statSync(join(mboxd.dir, 'mail')).gid}`, home]);
    const served = await readRaw(mboxd, 'bob');
    for (const [folder, msgs] of source) {
      const want = msgs.map((m) => `${(hasFromLine(m.raw) ? quoted(m.raw) : m.raw).toString('hex')} ${m.flags.join(',')} ${m.date}`).sort();
      const have = (served.get(folder) ?? []).map((m) => `${m.raw.toString('hex')} ${m.flags.join(',')} ${m.date}`).sort();
      assert.deepEqual(have, want, `Dovecot serves ${folder}`);
      const uids = (served.get(folder) ?? []).map((m) => m.uid).sort((a, b) => a - b);
      assert.deepEqual(uids, uidsBefore.get(folder)?.uids ?? [], `Dovecot shows mailmover's UIDs in ${folder}`);
      if (uids.length > 0) assert.deepEqual([served.get(folder)![0]!.uidValidity, served.get(folder)![0]!.uidNext], [uidsBefore.get(folder)!.uidValidity, uidsBefore.get(folder)!.uidNext], `UIDVALIDITY and UIDNEXT of ${folder}`);
    }

  });

  it('a folder with messages and children: its messages go to a child named like it, that Dovecot serves; rerun, verify; Thunderbird trees too', async () => {
    const msg = (n: number): FixtureMessage => ({ raw: Buffer.from(`From: a@example.org\r\nSubject: mixed ${n}\r\nMessage-ID: <mixed-${n}@example.org>\r\n\r\nbody ${n}\r\n`), flags: n % 2 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2024, 0, n, 10)) });
    await seedMailbox(imap, 'mixed', 'pw', [
      { path: ['INBOX'], subscribed: true, messages: [msg(1)] },
      { path: ['Projects'], subscribed: true, messages: [msg(2), msg(3)] },
      { path: ['Projects', '2024'], subscribed: true, messages: [msg(4)] },
      { path: ['Projects', '2024', 'Q1'], subscribed: true, messages: [msg(5)] },
    ]);
    const home = mboxd.homeOf('frank');
    mkdirSync(home, { recursive: true });
    const tree = join(home, 'mail');
    const args = ['migrate', '--from', imap.url('mixed'), '--to', `mbox:${tree}`, '--state', join(dir, 'mixed.db'), '--no-progress'];
    const first = await runCli(args, PW);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /^Projects +Projects\/Projects \(renamed: mail-or-children\)/m);
    assert.match(first.stdout, /^Projects\/2024 +Projects\/2024\/2024 \(renamed: mail-or-children\)/m);
    const again = await runCli(args, PW);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /Nothing to copy/);
    const v = await runCli(['verify', '--from', imap.url('mixed'), '--to', `mbox:${tree}`, '--no-progress'], PW);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // Dovecot serves every message, in the planned folders; the old names are parents only.
    execFileSync('chown', ['-R', `${statSync(join(mboxd.dir, 'mail')).uid}:${statSync(join(mboxd.dir, 'mail')).gid}`, home]);
    const served = await readRaw(mboxd, 'frank');
    const subjects = (folder: string) => (served.get(folder) ?? []).map((m) => /Subject: (.*)\r?\n/.exec(m.raw.toString())![1]).sort();
    // (The test Dovecot also auto-creates empty special folders.)
    assert.deepEqual([...served].filter(([, m]) => m.length > 0).map(([k]) => k).sort(), ['INBOX', 'Projects/2024/2024', 'Projects/2024/Q1', 'Projects/Projects']);
    assert.ok(!served.has('Projects') && !served.has('Projects/2024'), 'the old names are parents only');
    assert.deepEqual(subjects('Projects/Projects'), ['mixed 2', 'mixed 3']);
    assert.deepEqual(subjects('Projects/2024/2024'), ['mixed 4']);
    assert.deepEqual(subjects('Projects/2024/Q1'), ['mixed 5']);
    assert.deepEqual(subjects('INBOX'), ['mixed 1']);

    // A Thunderbird tree ("A" holds messages, "A.sbd/" its children) is read as a folder with
    // both, and written to an mbox tree the same way.
    const tb = join(dir, 'tb');
    mkdirSync(join(tb, 'A.sbd'), { recursive: true });
    const mbox = (n: number) => `From a@example.org Mon Jan  6 10:00:00 2020\nSubject: tb ${n}\n\nbody ${n}\n\n`;
    writeFileSync(join(tb, 'Inbox'), mbox(1));
    writeFileSync(join(tb, 'A'), mbox(2));
    writeFileSync(join(tb, 'A.sbd', 'B'), mbox(3));
    const out = join(dir, 'tb-out');
    const run = await runCli(['migrate', '--from', `mbox:${tb}`, '--to', `mbox:${out}`, '--no-state', '--no-progress'], PW);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /^A +A\/A \(renamed: mail-or-children\)/m);
    const py = JSON.parse(execFileSync('python3', ['-c', PY_MBOX, out], { encoding: 'utf8' })) as Record<string, { hex: string }[]>;
    const tbSubjects = Object.fromEntries(Object.entries(py).map(([k, v]) => [k, v.map((m) => /Subject: (.*)\n/.exec(Buffer.from(m.hex, 'hex').toString())![1])]));
    assert.deepEqual(tbSubjects, { INBOX: ['tb 1'], 'A/A': ['tb 2'], 'A/B': ['tb 3'] });
  });

  it("reads the mbox tree Dovecot wrote exactly as Dovecot serves it", async () => {
    await seedMailbox(mboxd, 'dave', 'pw', fixture);
    const tree = join(mboxd.homeOf('dave'), 'mail');
    const run = await runCli(['migrate', '--from', `mbox:${tree}`, '--to', imap.url('erin'), '--no-state', '--no-progress'], PW);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const want = await readRaw(mboxd, 'dave');
    const got = await readRaw(imap, 'erin');
    for (const [folder, msgs] of want) assert.deepEqual(got.get(folder)?.map((m) => [m.raw.toString('hex'), m.flags, m.date]), msgs.map((m) => [m.raw.toString('hex'), m.flags, m.date]), folder);
  });

  it('reads a Gmail Takeout file by its labels, as folders and as keywords', async () => {
    const msgs = takeoutMessages();
    const file = join(dir, 'All mail Including Spam and Trash.mbox');
    writeFileSync(file, takeoutMbox(msgs));
    const asFolders = await runCli(['migrate', '--from', `mbox:${file}?labels=folders`, '--to', imap.url('tk1'), '--no-state', '--no-progress'], PW);
    assert.equal(asFolders.code, 0, asFolders.stderr + asFolders.stdout);
    const byFolder = await readRaw(imap, 'tk1');
    const subjects = (folder: string) => (byFolder.get(folder) ?? []).map((m) => /Subject: takeout (\d+)/.exec(m.raw.toString())![1]).sort();
    assert.deepEqual(subjects('INBOX'), ['1', '3', '7']);
    assert.deepEqual(subjects('Sent'), ['2'], 'Sent lands in the destination\'s \\Sent folder');
    assert.deepEqual(subjects('Junk'), ['9'], 'Spam lands in the destination\'s \\Junk folder');
    assert.deepEqual(subjects('Work/Clients'), ['4', '7']);
    assert.deepEqual(subjects('Bücher'), ['5', '7']);
    assert.deepEqual(subjects('Family, Friends'), ['6']);
    assert.deepEqual(subjects('Archive'), ['8']);
    assert.equal(byFolder.has('Starred') || byFolder.has('Important') || byFolder.has('Opened'), false, 'states are not folders');
    const m3 = byFolder.get('INBOX')!.find((m) => m.raw.includes('takeout 3'))!;
    assert.deepEqual(m3.flags, ['\\Flagged'], 'Starred is \\Flagged; Unread is not \\Seen');
    const m4 = byFolder.get('Work/Clients')!.find((m) => m.raw.includes('takeout 4'))!;
    assert.deepEqual(m4.flags, ['$Important', 'Category_Updates', '\\Seen']);
    // The bytes are the Takeout's own, labels header included.
    assert.deepEqual(byFolder.get('INBOX')!.map((m) => m.raw.toString('hex')).sort(), [msgs[0]!, msgs[2]!, msgs[6]!].map((m) => m.raw.toString('hex')).sort());

    const asKeywords = await runCli(['migrate', '--from', `mbox:${file}?labels=keywords`, '--to', imap.url('tk2'), '--no-state', '--no-progress'], PW);
    assert.equal(asKeywords.code, 0, asKeywords.stderr + asKeywords.stdout);
    const kw = await readRaw(imap, 'tk2');
    assert.equal([...kw.values()].reduce((n, l) => n + l.length, 0), msgs.length, 'each message once');
    assert.equal(kw.get('INBOX')!.length, 3);
    const m7 = kw.get('INBOX')!.find((m) => m.raw.includes('takeout 7'))!;
    assert.deepEqual(m7.flags, ['$Important', 'B&APw-cher', 'Work/Clients', '\\Flagged', '\\Seen']);
    const m6 = kw.get('Archive')!.find((m) => m.raw.includes('takeout 6'))!;
    assert.deepEqual(m6.flags, ['Family,_Friends', '\\Seen']);
  });

  it('hostile files: a cut-off message, an unquoted From line, not an mbox, a link out of the tree, --delete-source', async () => {
    const tree = join(dir, 'hostile');
    mkdirSync(tree);
    const one = 'From a@example.com Mon Jan  6 10:00:00 2020\nSubject: one\nMessage-ID: <h1@x>\n\nfirst\nFrom the middle of a body\nsecond half\n\n';
    const cut = 'From b@example.com Mon Jan  6 11:00:00 2020\nSubject: cut\nMessage-ID: <h2@x>\n\nthis message was cu';
    writeFileSync(join(tree, 'inbox'), one + cut);
    writeFileSync(join(dir, 'secret.mbox'), 'From x@example.com Mon Jan  6 10:00:00 2020\nSubject: secret\n\nnot in the tree\n\n');
    symlinkSync(join(dir, 'secret.mbox'), join(tree, 'Linked'));
    const run = await runCli(['migrate', '--from', `mbox:${tree}`, '--to', imap.url('hostile'), '--no-state', '--no-progress', '--json'], PW);
    // The link is a folder not read (the run failed for it); the rest was copied.
    assert.equal(run.code, 1, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as { items: { code: string; reason: string }[]; folders: { error?: { message: string } }[] };
    assert.deepEqual(report.folders.filter((f) => f.error).map((f) => /Linked \(a symbolic link: not followed\)/.test(f.error!.message)), [true]);
    // The unquoted From line is a message boundary (mboxo): what follows it is no message.
    assert.deepEqual(report.items.map((i) => i.code), ['MM-ARCHIVE-MESSAGE', 'MM-ARCHIVE-MESSAGE']);
    const at = (s: string) => Buffer.byteLength(s);
    assert.deepEqual(report.items.map((i) => i.reason.replace(/^.*\//, '')).sort(), [
      `inbox, message at byte ${at(one.slice(0, one.indexOf('From the')))}: it does not start with a header field; it was left out.`,
      `inbox, message at byte ${at(one)}: the file ends inside this message (at byte ${at(one + cut)}): it was cut off; it was left out.`,
    ].sort());
    const got = await readRaw(imap, 'hostile');
    assert.deepEqual(got.get('INBOX')!.map((m) => m.raw.toString()).sort(), ['Subject: one\r\nMessage-ID: <h1@x>\r\n\r\nfirst\r\n'].sort());
    assert.equal([...got.keys()].some((k) => k.includes('Linked')), false, 'the link is not followed');
    assert.ok(![...got.values()].flat().some((m) => m.raw.includes('secret')));

    const notMbox = join(dir, 'notes.txt');
    writeFileSync(notMbox, 'Dear diary\n');
    const wrong = await runCli(['migrate', '--from', `mbox:${notMbox}`, '--to', imap.url('hostile'), '--no-state', '--no-progress'], PW);
    assert.match(wrong.stderr + wrong.stdout, /MM-ARCHIVE-OPEN.*not an mbox file/);
    assert.equal(readFileSync(notMbox, 'utf8'), 'Dear diary\n');
    // --delete-source removes the copied message; what could not be copied stays, byte for byte.
    const del = await runCli(['migrate', '--from', `mbox:${tree}`, '--to', imap.url('hostile'), '--no-state', '--no-progress', '--delete-source'], PW);
    assert.equal(del.code, 1, del.stderr + del.stdout);
    assert.match(del.stdout, /1 deleted at the source/);
    assert.equal(readFileSync(join(tree, 'inbox'), 'latin1'), 'From the middle of a body\nsecond half\n\n' + cut);
    assert.equal(readFileSync(join(dir, 'secret.mbox'), 'latin1'), 'From x@example.com Mon Jan  6 10:00:00 2020\nSubject: secret\n\nnot in the tree\n\n');
  });

  it('a destination cut off mid-message is cut back, and the rerun leaves every message exactly once', async () => {
    mkdirSync(join(dir, 'single'));
    const file = join(dir, 'single', 'single.mbox');
    await imap.addUser('solo', 'pw');
    await seedMailbox(imap, 'solo', 'pw', fixture.filter((f) => f.path.join('/') === 'INBOX'));
    const args = ['migrate', '--from', imap.url('solo'), '--to', `mbox:${file}`, '--include', 'INBOX', '--state', join(dir, 's.db'), '--no-progress', '--connections', '1'];
    // Killed after messages were appended and before the ledger knew.
    const killed = await runCli(args, { ...PW, MAILMOVER_TEST_KILL_AT: 'settle:before:1' });
    assert.equal(killed.code, null, killed.stderr);
    // And a write cut off in the middle of a message.
    appendFileSync(file, 'From MAILER-DAEMON Mon Jan  6 10:00:00 2020\nSubject: half\n\npart of a mess');
    const rerun = await runCli(args, PW);
    assert.equal(rerun.code, 0, rerun.stderr + rerun.stdout);
    const py = JSON.parse(execFileSync('python3', ['-c', PY_MBOX, join(dir, 'single')], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })) as Record<string, { hex: string }[]>;
    const inbox = (await readRaw(imap, 'solo')).get('INBOX')!;
    assert.equal(py['single.mbox']!.length, inbox.length, 'every message exactly once');
    assert.equal(new Set(py['single.mbox']!.map((m) => m.hex)).size, inbox.length);
  });
});

/** The X-UIDs and X-IMAPbase (UIDVALIDITY, last UID + 1) of each file of a tree, by folder, as written. */
function mailmoverUids(tree: string): Map<string, { uids: number[]; uidValidity: number; uidNext: number }> {
  const out = new Map<string, { uids: number[]; uidValidity: number; uidNext: number }>();
  const files = execFileSync('find', [tree, '-type', 'f', '!', '-name', '.*'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const f of files) {
    const text = readFileSync(f, 'latin1');
    const base = /^X-IMAPbase: (\d+) (\d+)/m.exec(text);
    const rel = f.slice(tree.length + 1);
    const folder = rel === 'inbox' ? 'INBOX' : rel.split('/').map(decodeMutf7).join('/');
    out.set(folder, { uids: [...text.matchAll(/^X-UID: (\d+)$/gm)].map((m) => Number(m[1])), uidValidity: Number(base?.[1] ?? 0), uidNext: Number(base?.[2] ?? 0) + 1 });
  }
  return out;
}

/** Lets Dovecot's mail user traverse the test directory (the suite runs as root). */
function chmodTree(path: string): void {
  execFileSync('chmod', ['755', path]);
}
