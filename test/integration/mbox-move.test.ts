/**
 * mbox UIDs, locks and moves against real Dovecot: reruns into and out of an mbox are incremental
 * (the file's X-UID/X-IMAPbase keep UIDs across runs; a grown file lists only its new tail);
 * while mailmover holds a file's write locks, python3's fcntl and a Dovecot serving the file see
 * them; --delete-source from an mbox leaves in the file only what was not proven at the
 * destination, also after a run killed before or after the rewritten file is put in place, or in
 * the middle of an append.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { processAlive } from '../../src/core/process-alive.js';
import { withWriteLocks } from '../../src/stores/mbox/dotlock.js';

const PW = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };
const MBOX_CONF = 'mail_location = mbox:%h/mail:INBOX=%h/mail/inbox\nmail_save_crlf = no\n';

/** A few folders of the fixture: flags, keywords, a nested non-ASCII leaf, an inbox with odd messages. */
function smallFixture(): FixtureFolder[] {
  const keep = new Set(['INBOX', 'Flags', 'Keywords', 'Grüße/Ünïcødé Straße']);
  return buildFixture({ bigMessageBytes: 50_000 }).filter((f) => keep.has(f.path.join('/')));
}

interface Report {
  folders: { source: string; copied: number; incremental?: true; sourceDeleted?: number }[];
}

const json = (stdout: string) => JSON.parse(stdout) as Report;

/** Appends one message to a user's folder over IMAP. */
async function deliver(d: PlainDovecotServer, user: string, subject: string): Promise<void> {
  const c = new ImapFlow({ host: d.host, port: d.port, secure: false, auth: { user, pass: 'pw' }, logger: false });
  await c.connect();
  try {
    await c.append('INBOX', Buffer.from(`From: a@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.com>\r\n\r\nnew\r\nFrom here on\r\n`), ['\\Seen', 'Later'], new Date('2024-05-06T07:08:09Z'));
  } finally {
    await c.logout();
  }
}

/** The X-UID lines of an mbox file, in order. */
const xuids = (file: string) => [...readFileSync(file, 'latin1').matchAll(/^X-UID: (\d+)$/gm)].map((m) => Number(m[1]));

describe('mbox: UIDs, locks and moves', () => {
  let imap: PlainDovecotServer;
  let mboxd: PlainDovecotServer;
  let dir: string;
  const fixture = smallFixture();
  before(async () => {
    imap = await startDovecot({ separator: '/', tls: false });
    mboxd = await startDovecot({ separator: '/', tls: false, extraConfig: MBOX_CONF });
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await imap.addUser(u, 'pw');
    await mboxd.addUser('lock', 'pw');
    await seedMailbox(imap, 'alice', 'pw', fixture);
    await seedMailbox(imap, 'carol', 'pw', fixture);
    dir = mkdtempSync(join(tmpdir(), 'mm-mbox-move-'));
    execFileSync('chmod', ['755', dir]);
  });
  after(async () => {
    await imap?.stop();
    await mboxd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reruns into and out of an mbox copy nothing; a grown file lists only its new tail; UIDs stay', async () => {
    const tree = join(dir, 'inc');
    const into = ['migrate', '--from', imap.url('alice'), '--to', `mbox:${tree}`, '--state', join(dir, 'into.db'), '--no-progress', '--json'];
    const out = ['migrate', '--from', `mbox:${tree}`, '--to', imap.url('bob'), '--state', join(dir, 'out.db'), '--no-progress', '--json'];
    assert.equal((await runCli(into, PW)).code, 0);
    assert.equal((await runCli(out, PW)).code, 0);
    const uids = xuids(join(tree, 'inbox'));
    for (const args of [into, out]) {
      const again = await runCli(args, PW);
      assert.equal(again.code, 0, again.stderr);
      const r = json(again.stdout);
      // Grüße is a parent only (\Noselect): it holds no messages, so it has no marks to trust.
      assert.deepEqual(r.folders.map((f) => [f.source, f.copied, f.incremental ?? f.source === 'Grüße']), r.folders.map((f) => [f.source, 0, true]), 'every folder incremental, nothing copied');
    }
    // A new message at the source: into the mbox, then out of it, each run lists only what is new.
    await deliver(imap, 'alice', 'tail-1');
    for (const args of [into, out]) {
      const run = await runCli(args, PW);
      assert.equal(run.code, 0, run.stderr);
      const inbox = json(run.stdout).folders.find((f) => f.source === 'INBOX')!;
      assert.deepEqual([inbox.copied, inbox.incremental], [1, true]);
      assert.ok(json(run.stdout).folders.every((f) => f.incremental || f.source === 'Grüße'), 'the other folders too');
    }
    const now = xuids(join(tree, 'inbox'));
    assert.deepEqual(now.slice(0, uids.length), uids, 'the UIDs of the messages that were there are unchanged');
    assert.equal(now.length, uids.length + 1);
    assert.ok(now[now.length - 1]! > uids[uids.length - 1]!);
    assert.deepEqual(await readMailbox(imap, 'bob', 'pw'), await readMailbox(imap, 'alice', 'pw'));
  });

  it('while mailmover holds the write locks, python3 fcntl and Dovecot wait', async () => {
    const home = mboxd.homeOf('lock');
    mkdirSync(home, { recursive: true });
    const tree = join(home, 'mail');
    assert.equal((await runCli(['migrate', '--from', imap.url('alice'), '--to', `mbox:${tree}`, '--include', 'INBOX', '--no-state', '--no-progress'], PW)).code, 0);
    const owner = statSync(join(mboxd.dir, 'mail'));
    execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, home]);
    const file = join(tree, 'inbox');
    const probe = 'import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\ntry:\n    fcntl.lockf(fd,fcntl.LOCK_SH|fcntl.LOCK_NB)\n    print("free")\nexcept OSError:\n    print("held")\n';
    const c = new ImapFlow({ host: mboxd.host, port: mboxd.port, secure: false, auth: { user: 'lock', pass: 'pw' }, logger: false });
    await c.connect();
    try {
      let selected = false;
      let select: Promise<unknown> | undefined;
      await withWriteLocks(file, async () => {
        assert.equal(execFileSync('python3', ['-c', probe, file], { encoding: 'utf8' }).trim(), 'held');
        assert.ok(existsSync(`${file}.lock`), 'the dotlock is there too');
        select = c.mailboxOpen('INBOX', { readOnly: true }).then((m) => {
          selected = true;
          return m;
        });
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(selected, false, 'Dovecot waits for the fcntl lock before it reads the file');
      });
      // Released: Dovecot's waiting SELECT takes the lock at once and reads the file (probing
      // before it is done raced with it), then the lock is free for anyone.
      const box = (await select) as { exists: number };
      assert.equal(execFileSync('python3', ['-c', probe, file], { encoding: 'utf8' }).trim(), 'free');
      assert.equal(existsSync(`${file}.lock`), false);
      assert.equal(box.exists, xuids(file).length);
      assert.ok(box.exists > 50);
    } finally {
      await c.logout();
    }
  });

  it('--delete-source from an mbox tree into Dovecot: killed before and after the rename, then exactly once', async () => {
    const tree = join(dir, 'move');
    assert.equal((await runCli(['migrate', '--from', imap.url('carol'), '--to', `mbox:${tree}`, '--no-state', '--no-progress'], PW)).code, 0);
    const snapshot = () => new Map(readdirSync(tree, { recursive: true, encoding: 'utf8' }).filter((n) => statSync(join(tree, n)).isFile() && !/\.(lock|mailmover-tmp)$/.test(n)).map((n) => [n, readFileSync(join(tree, n), 'latin1')]));
    const before = snapshot();
    const move = ['migrate', '--from', `mbox:${tree}`, '--to', imap.url('dave'), '--state', join(dir, 'move.db'), '--no-progress', '--delete-source', '--json'];
    const killed = await runCli(move, { ...PW, MAILMOVER_TEST_KILL_AT: 'mboxRename:before:1' });
    assert.equal(killed.code, null, killed.stderr);
    // Killed with a new file written and not yet in place: the source is as it was.
    const tmp = readdirSync(tree, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.mailmover-tmp'));
    assert.ok(tmp.length >= 1, 'the new file was left beside the old one');
    assert.deepEqual(snapshot(), before);
    const killedAfter = await runCli(move, { ...PW, MAILMOVER_TEST_KILL_AT: 'mboxRename:after:2' });
    assert.equal(killedAfter.code, null, killedAfter.stderr);
    const rerun = await runCli(move, PW, 180_000, { skipVerify: 'the source is emptied by the move: verify would find it empty' });
    assert.equal(rerun.code, 0, rerun.stderr + rerun.stdout);
    // Every source message is at the destination exactly once, and the source holds none of them.
    const want = await readMailbox(imap, 'carol', 'pw');
    assert.deepEqual(await readMailbox(imap, 'dave', 'pw'), want);
    const left = readdirSync(tree, { recursive: true, encoding: 'utf8' }).filter((n) => !n.startsWith('.') && statSync(join(tree, n)).isFile());
    assert.deepEqual(left.filter((n) => n.endsWith('.mailmover-tmp')), [], 'no temporary file left');
    // A dotlock the killed run left beside a file nothing wrote since names a dead process: the
    // next writer (mailmover, Dovecot) takes it over at once.
    for (const n of left.filter((x) => x.endsWith('.lock'))) assert.equal(processAlive(Number(readFileSync(join(tree, n), 'latin1').split(':')[0])), false, n);
    for (const n of left) assert.equal(/^From /m.test(readFileSync(join(tree, n), 'latin1')), false, `${n} is emptied`);
    assert.ok(before.size > 3);
  });

  it('an append killed between two messages, locks left behind: the rerun leaves every message once, UIDs unique', async () => {
    const file = join(dir, 'killed.mbox');
    const args = ['migrate', '--from', imap.url('alice'), '--to', `mbox:${file}`, '--include', 'INBOX', '--state', join(dir, 'k.db'), '--no-progress', '--connections', '1'];
    const killed = await runCli(args, { ...PW, MAILMOVER_TEST_KILL_AT: 'mboxAppend:before:5' });
    assert.equal(killed.code, null, killed.stderr);
    assert.ok(existsSync(`${file}.lock`), 'the dead run left its dotlock');
    assert.equal(xuids(file).length, 4);
    const rerun = await runCli(args, PW);
    assert.equal(rerun.code, 0, rerun.stderr + rerun.stdout);
    const inbox = (await readMailbox(imap, 'alice', 'pw')).find((f) => f.path.join('/') === 'INBOX')!;
    const uids = xuids(file);
    assert.equal(uids.length, inbox.messages.length, 'every message exactly once');
    assert.deepEqual([...uids].sort((a, b) => a - b), uids, 'UIDs rising');
    assert.equal(new Set(uids).size, uids.length);
    // Python's mailbox reads the same number of messages.
    const count = execFileSync('python3', ['-c', 'import mailbox,sys; print(len(mailbox.mbox(sys.argv[1], create=False)))', file], { encoding: 'utf8' }).trim();
    assert.equal(Number(count), inbox.messages.length);
  });
});
