/**
 * The Maildir store against Dovecot, the reference: a mailbox Dovecot wrote to its Maildir is read
 * off the disk by mailmover exactly as Dovecot serves it over IMAP (bytes, flags, keywords, dates,
 * folders, subscriptions and UIDs), in both layouts; and a Maildir mailmover writes is served by
 * Dovecot over IMAP, and read by Python's stdlib `mailbox`, exactly as written.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { MaildirStore } from '../../src/stores/maildir/maildir-store.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, expectedFromFixture, readMailbox, seedMailbox, type FixtureFolder, type ReadBackFolder } from '../helpers/fixture.js';

const fixture: FixtureFolder[] = buildFixture({ bigMessageBytes: 300_000 });

/** What the Maildir store shows of a tree, in the fixture reader's form. */
async function readWithStore(store: MaildirStore): Promise<{ folders: ReadBackFolder[]; uids: Map<string, number[]> }> {
  await store.connect();
  const listing = await store.listFolders();
  const folders: ReadBackFolder[] = [];
  const uids = new Map<string, number[]>();
  for (const f of listing.folders) {
    const out: ReadBackFolder = { path: f.path, subscribed: f.subscribed, noSelect: f.noSelect, messages: [] };
    if (!f.noSelect) {
      await store.openFolder(f.path, true);
      const { messages, failures } = await store.listMessages();
      assert.deepEqual(failures, [], `no failures in ${f.name}`);
      const bodies = new Map<number, Buffer>();
      for await (const o of store.fetchBodies(messages.map((m) => m.uid))) {
        assert.ok('body' in o, `body of ${f.name} uid ${o.uid}`);
        bodies.set(o.uid, o.body);
      }
      uids.set(f.path.join('/'), messages.map((m) => m.uid));
      out.messages = messages
        .map((m) => {
          const body = bodies.get(m.uid)!;
          assert.equal(body.length, m.size, `listed size of ${f.name} uid ${m.uid}`);
          return { sha256: createHash('sha256').update(body).digest('hex'), size: body.length, flags: [...new Set(m.flags)].sort(), internalDate: m.internalDate! };
        })
        .sort((a, b) => (a.sha256 !== b.sha256 ? (a.sha256 < b.sha256 ? -1 : 1) : a.internalDate - b.internalDate || (a.flags.join(' ') < b.flags.join(' ') ? -1 : 1)));
    }
    folders.push(out);
  }
  await store.close();
  folders.sort((a, b) => (a.path.join('\u0000') < b.path.join('\u0000') ? -1 : 1));
  return { folders, uids };
}

/** UIDs Dovecot serves, per folder. */
async function imapUids(d: PlainDovecotServer, user: string, password: string): Promise<Map<string, number[]>> {
  const c = new ImapFlow({ host: d.host, port: d.port, secure: false, auth: { user, pass: password }, logger: false });
  await c.connect();
  const out = new Map<string, number[]>();
  try {
    for (const e of await c.list()) {
      if (e.flags.has('\\Noselect') || e.flags.has('\\NonExistent')) continue;
      const lock = await c.getMailboxLock(e.path, { readOnly: true });
      try {
        const uids = c.mailbox && c.mailbox.exists ? ((await c.search({ all: true }, { uid: true })) || []) : [];
        out.set(e.path.split(e.delimiter).join('/'), [...uids].sort((a, b) => a - b));
      } finally {
        lock.release();
      }
    }
  } finally {
    await c.logout();
  }
  return out;
}

for (const separator of ['.', '/'] as const) {
  const layout = separator === '.' ? 'maildirpp' : 'fs';
  describe(`Maildir store, layout ${layout}`, () => {
    let d: PlainDovecotServer;
    before(async () => {
      d = await startDovecot({ separator, tls: false });
      await d.addUser('alice', 'pw');
      await d.addUser('bob', 'pw');
      await seedMailbox(d, 'alice', 'pw', fixture);
    });
    after(async () => {
      await d?.stop();
    });

    it('reads the Maildir Dovecot wrote exactly as Dovecot serves it, UIDs included', async () => {
      const served = await readMailbox(d, 'alice', 'pw');
      const { folders, uids } = await readWithStore(new MaildirStore({ root: join(d.homeOf('alice'), 'Maildir'), layout, side: 'source' }));
      assert.deepEqual(folders, served);
      assert.deepEqual(uids, await imapUids(d, 'alice', 'pw'));
    });

    it('writes a Maildir that Dovecot serves, and Python reads, exactly as written', async () => {
      const root = join(d.homeOf('bob'), 'Maildir');
      mkdirSync(d.homeOf('bob'), { recursive: true });
      const store = new MaildirStore({ root, layout, side: 'destination' });
      await store.connect();
      const given = new Map<string, number[]>();
      for (const f of [...fixture].sort((a, b) => a.path.length - b.path.length)) {
        if (f.path.join('/') !== 'INBOX') await store.createFolder(f.path);
        if (f.subscribed) await store.subscribe(f.path);
        const outcomes = await store.appendBatch(f.path, f.messages.map((m) => ({ body: m.raw, flags: m.flags, internalDate: m.internalDate })));
        for (const o of outcomes) assert.ok(o.ok, 'every message written');
        given.set(f.path.join('/'), outcomes.map((o) => (o.ok ? o.uid! : 0)));
      }
      await store.close();
      // Dovecot runs the mail processes as the owner of the mail directory.
      const owner = statSync(join(d.dir, 'mail'));
      execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, d.homeOf('bob')]);
      assert.deepEqual(await readMailbox(d, 'bob', 'pw'), expectedFromFixture(fixture));
      // The UIDs mailmover reported are the UIDs Dovecot serves.
      const served = await imapUids(d, 'bob', 'pw');
      for (const [path, uids] of given) assert.deepEqual(served.get(path === 'INBOX' ? 'INBOX' : path), [...uids].sort((a, b) => a - b), `UIDs of ${path}`);
      // Python's mailbox module: every file a message with the written bytes and flags.
      const py = execFileSync('python3', ['-c', PY_READ, root, layout], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      const got = JSON.parse(py) as Record<string, { sha256: string; flags: string }[]>;
      for (const f of fixture) {
        const key = f.path.join('/');
        const want = f.messages.map((m) => ({ sha256: createHash('sha256').update(m.raw).digest('hex'), flags: pyFlags(m.flags) })).sort(byHash);
        assert.deepEqual((got[key] ?? []).sort(byHash), want, `python reads ${key}`);
      }
    });

    it('refuses a source that is not a Maildir, and writes nothing outside the root', async () => {
      const base = mkdtempSync(join(tmpdir(), 'mm-maildir-'));
      try {
        await assert.rejects(new MaildirStore({ root: join(base, 'missing'), layout, side: 'source' }).connect(), /MM-ARCHIVE-OPEN|does not exist/);
        mkdirSync(join(base, 'plain'));
        await assert.rejects(new MaildirStore({ root: join(base, 'plain'), layout, side: 'source' }).connect(), (err: Error & { code?: string }) => err.code === 'MM-ARCHIVE-OPEN');
        const store = new MaildirStore({ root: join(base, 'dest'), layout, side: 'destination' });
        await store.connect();
        // Names that would climb out are spelled safely, as for an IMAP server, and stay inside.
        for (const bad of [['..', 'x'], ['a/../../b'], ['.'], ['x\u0000y'], ['..', '..', 'etc']]) await store.createFolder(bad);
        assert.deepEqual(readdirSync(base).sort(), ['dest', 'plain']);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });

    it('reports a hostile tree file by file and copies the rest', async () => {
      const base = mkdtempSync(join(tmpdir(), 'mm-maildir-'));
      try {
        const root = join(base, 'md');
        for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, sub), { recursive: true });
        writeFileSync(join(root, 'cur', '1000.A.host:2,S'), 'Subject: fine\n\nbody\n');
        writeFileSync(join(root, 'cur', '1001.B.host:2,'), '');
        writeFileSync(join(root, 'cur', '1002.C.host:2,'), Buffer.from([0, 1, 2, 3, 0xff]));
        writeFileSync(join(base, 'outside'), 'Subject: secret\n\nnot yours\n');
        symlinkSync(join(base, 'outside'), join(root, 'cur', '1003.D.host:2,'));
        mkdirSync(join(base, 'elsewhere', 'cur'), { recursive: true });
        symlinkSync(join(base, 'elsewhere'), join(root, layout === 'fs' ? 'Linked' : '.Linked'));
        writeFileSync(join(root, 'new', '1004.E.host'), 'Subject: new\r\n\r\nfresh\r\n');
        // A uidlist that names a file that is gone and gives one UID twice.
        writeFileSync(join(root, 'dovecot-uidlist'), '3 V77 N3 Gabc\n1 :1000.A.host\n1 :1004.E.host\n2 :gone.host\n');
        const store = new MaildirStore({ root, layout, side: 'source' });
        await store.connect();
        const listing = await store.listFolders();
        assert.deepEqual(listing.folders.map((f) => f.path.join('/')), ['INBOX'], 'the linked folder is not followed');
        assert.equal(listing.unreadable.length, 1);
        await store.openFolder(['INBOX'], true);
        const { messages, failures } = await store.listMessages();
        assert.deepEqual(messages.map((m) => m.size).sort(), [23, 23], 'the two real messages, served with CRLF');
        assert.equal(failures.length, 3, 'the empty file, the binary one and the link are reported');
        for (const f of failures) assert.match(f.error.message, /1001\.B|1002\.C|1003\.D.*symbolic link/);
        const fine = messages.find((m) => m.flags.includes('\\Seen'));
        assert.equal(fine?.uid, 1, 'the uidlist UID is kept');
        const bodies: Buffer[] = [];
        for await (const o of store.fetchBodies(messages.map((m) => m.uid))) if ('body' in o) bodies.push(o.body);
        assert.ok(bodies.some((b) => b.toString() === 'Subject: fine\r\n\r\nbody\r\n'));
        assert.ok(!bodies.some((b) => b.toString().includes('not yours')));
        assert.ok(!existsSync(join(root, 'dovecot-uidlist.lock')));
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });
  });
}

const byHash = (a: { sha256: string; flags: string }, b: { sha256: string; flags: string }) => {
  const ka = `${a.sha256} ${a.flags}`;
  const kb = `${b.sha256} ${b.flags}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** The Maildir flag letters Python's mailbox reports for IMAP flags (keywords have none there). */
function pyFlags(flags: string[]): string {
  const map: Record<string, string> = { '\\draft': 'D', '\\flagged': 'F', '$forwarded': 'P', '\\answered': 'R', '\\seen': 'S', '\\deleted': 'T' };
  return [...new Set(flags.map((f) => map[f.toLowerCase()]).filter(Boolean))].sort().join('');
}

const PY_READ = String.raw`
import base64, hashlib, json, mailbox, os, re, sys
root, layout = sys.argv[1], sys.argv[2]
out = {}
def mutf7(name):
    # IMAP's modified UTF-7 (RFC 3501 5.1.3), decoded independently of mailmover's code
    def one(m):
        inner = m.group(1)
        if inner == '':
            return '&'
        b = inner.replace(',', '/')
        return base64.b64decode(b + '=' * (-len(b) % 4)).decode('utf-16-be')
    return re.sub(r'&([A-Za-z0-9+,]*)-', one, name)
def read(md, name):
    msgs = []
    for key in md.keys():
        m = md.get_message(key)
        with md.get_file(key) as f:
            data = f.read()
        msgs.append({'sha256': hashlib.sha256(data).hexdigest(), 'flags': ''.join(sorted(set(c for c in m.get_flags() if c.isupper())))})
    out[name] = msgs
top = mailbox.Maildir(root, factory=None, create=False)
read(top, 'INBOX')
if layout == 'maildirpp':
    for name in top.list_folders():
        read(top.get_folder(name), '/'.join(mutf7(p) for p in name.split('.')))
else:
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath != root and 'cur' in dirnames:
            rel = os.path.relpath(dirpath, root)
            read(mailbox.Maildir(dirpath, factory=None, create=False), '/'.join(mutf7(p) for p in rel.split('/')))
        dirnames[:] = [d for d in dirnames if d not in ('cur', 'new', 'tmp')]
print(json.dumps(out))
`;
