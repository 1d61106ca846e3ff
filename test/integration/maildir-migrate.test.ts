/**
 * `maildir:` endpoints through the whole CLI: IMAP -> Maildir -> IMAP is exact (read back by
 * Dovecot over IMAP and by Python's mailbox module), a rerun copies nothing, verify agrees, a run
 * killed mid-write leaves every message exactly once after the rerun, and bad paths are refused.
 */
import { strict as assert } from 'node:assert';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';

const fixture: FixtureFolder[] = buildFixture({ bigMessageBytes: 300_000 });
const PW = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };

/** Every message file of a Maildir++ tree, read by Python's mailbox module: folder -> sorted SHA-256s. */
function pythonHashes(root: string): Record<string, string[]> {
  const py = String.raw`
import hashlib, json, mailbox, sys
top = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = {}
def read(md, name):
    hs = []
    for key in md.keys():
        with md.get_file(key) as f:
            hs.append(hashlib.sha256(f.read()).hexdigest())
    out[name] = sorted(hs)
read(top, 'INBOX')
for name in top.list_folders():
    read(top.get_folder(name), name)
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', py, root], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Record<string, string[]>;
}

describe('maildir: endpoints', () => {
  let d: PlainDovecotServer;
  let dir: string;
  before(async () => {
    d = await startDovecot({ separator: '/', tls: false });
    for (const u of ['alice', 'bob', 'carol']) await d.addUser(u, 'pw');
    await seedMailbox(d, 'alice', 'pw', fixture);
    dir = mkdtempSync(join(tmpdir(), 'mm-maildir-cli-'));
  });
  after(async () => {
    await d?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies IMAP -> Maildir -> IMAP exactly; reruns copy nothing; verify agrees', async () => {
    const md = `maildir:${join(dir, 'alice')}`;
    const first = await runCli(['migrate', '--from', d.url('alice'), '--to', md, '--state', join(dir, 'a.db'), '--no-progress'], PW);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const again = await runCli(['migrate', '--from', d.url('alice'), '--to', md, '--state', join(dir, 'a.db'), '--no-progress'], PW);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing to copy/);
    const v = await runCli(['verify', '--from', d.url('alice'), '--to', md, '--no-progress'], PW);
    assert.equal(v.code, 0, v.stdout + v.stderr);

    // Python reads the bytes of every message the source holds, folder by folder.
    const served = await readMailbox(d, 'alice', 'pw');
    const py = pythonHashes(join(dir, 'alice'));
    for (const f of served.filter((x) => !x.noSelect)) {
      const key = f.path.join('.') === 'INBOX' ? 'INBOX' : f.path.map((s) => s).join('.');
      const got = Object.entries(py).find(([k]) => decodeMutf7Name(k) === key)?.[1] ?? [];
      assert.deepEqual(got, f.messages.map((m) => m.sha256).sort(), `python reads ${key}`);
    }

    // And back from the Maildir into another account: what arrives is what alice holds.
    const back = await runCli(['migrate', '--from', md, '--to', d.url('bob'), '--no-state', '--no-progress'], PW);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.deepEqual(await readMailbox(d, 'bob', 'pw'), served);
  });

  it('a run killed mid-write leaves every message exactly once after the rerun', async () => {
    const root = join(dir, 'killed');
    const args = ['migrate', '--from', d.url('alice'), '--to', `maildir:${root}`, '--state', join(dir, 'k.db'), '--no-progress', '--connections', '1'];
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...PW }, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // Kill as soon as messages have started to arrive (in any folder).
    for (let i = 0; i < 400 && child.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const n = (() => {
        try {
          return execFileSync('find', [root, '-path', '*/cur/*', '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
        } catch {
          return 0;
        }
      })();
      if (n > 20) break;
    }
    assert.equal(child.exitCode, null, 'the run was still writing when it was killed');
    child.kill('SIGKILL');
    await exited;
    const rerun = await runCli(args, PW);
    assert.equal(rerun.code, 0, rerun.stderr + rerun.stdout);
    const served = await readMailbox(d, 'alice', 'pw');
    const py = pythonHashes(root);
    for (const f of served.filter((x) => !x.noSelect)) {
      const key = f.path.join('.');
      const got = Object.entries(py).find(([k]) => decodeMutf7Name(k) === key)?.[1] ?? [];
      assert.deepEqual(got, f.messages.map((m) => m.sha256).sort(), `exactly once in ${key}`);
    }
  });

  it('refuses paths that are not a Maildir, before anything is written', async () => {
    const rel = await runCli(['migrate', '--from', 'maildir:relative/path', '--to', d.url('carol'), '--no-state'], PW);
    assert.equal(rel.code, 2, rel.stderr);
    assert.match(rel.stderr, /MM-CONFIG-URL/);
    const missing = await runCli(['migrate', '--from', `maildir:${join(dir, 'nope')}`, '--to', d.url('carol'), '--no-state'], PW);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr + missing.stdout, /MM-ARCHIVE-OPEN/);
    const notMaildir = join(dir, 'notmaildir');
    execFileSync('mkdir', ['-p', notMaildir]);
    writeFileSync(join(notMaildir, 'file.txt'), 'hello');
    const wrong = await runCli(['migrate', '--from', `maildir:${notMaildir}`, '--to', d.url('carol'), '--no-state'], PW);
    assert.match(wrong.stderr + wrong.stdout, /MM-ARCHIVE-OPEN/);
    assert.deepEqual((await readMailbox(d, 'carol', 'pw')).flatMap((f) => f.messages), [], 'nothing arrived');
    assert.deepEqual(readdirSync(notMaildir), ['file.txt'], 'the source was not touched');
    void createHash;
  });
});

/** A Maildir++ folder directory name (without the dot) in the fixture's dotted spelling. */
function decodeMutf7Name(name: string): string {
  return name.replace(/&([A-Za-z0-9+,]*)-/g, (_, inner: string) => {
    if (inner === '') return '&';
    const b = Buffer.from(inner.replace(/,/g, '/'), 'base64');
    return b.swap16().toString('utf16le');
  });
}
