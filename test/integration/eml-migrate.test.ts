/**
 * `eml:` endpoints through the whole CLI: IMAP -> EML tree -> Maildir -> IMAP ends exact (read back
 * by Dovecot over IMAP; the .eml files read by Python's email parser), reruns copy nothing, verify
 * agrees, and an exporter's bare tree (no manifest, LF line ends, a broken file, a link out of the
 * tree) is read with what it has and reported for what it lacks.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';

const fixture: FixtureFolder[] = buildFixture({ bigMessageBytes: 300_000 });
const PW = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };

describe('eml: endpoints', () => {
  let d: PlainDovecotServer;
  let dir: string;
  before(async () => {
    d = await startDovecot({ separator: '/', tls: false });
    for (const u of ['alice', 'bob', 'carol']) await d.addUser(u, 'pw');
    await seedMailbox(d, 'alice', 'pw', fixture);
    dir = mkdtempSync(join(tmpdir(), 'mm-eml-cli-'));
  });
  after(async () => {
    await d?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('IMAP -> EML -> Maildir -> IMAP ends exact; reruns copy nothing; verify agrees', async () => {
    const eml = `eml:${join(dir, 'alice-eml')}`;
    const md = `maildir:${join(dir, 'alice-md')}`;
    const first = await runCli(['migrate', '--from', d.url('alice'), '--to', eml, '--state', join(dir, 'e.db'), '--no-progress'], PW);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const again = await runCli(['migrate', '--from', d.url('alice'), '--to', eml, '--state', join(dir, 'e.db'), '--no-progress'], PW);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing to copy/);
    const v = await runCli(['verify', '--from', d.url('alice'), '--to', eml, '--no-progress'], PW);
    assert.equal(v.code, 0, v.stdout + v.stderr);

    // Python's email parser reads every .eml file as a message with the source's bytes.
    const served = await readMailbox(d, 'alice', 'pw');
    const py = JSON.parse(
      execFileSync('python3', ['-c', PY_EML, join(dir, 'alice-eml')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }),
    ) as Record<string, { sha256: string; flags: string[]; parsed: boolean }[]>;
    for (const f of served.filter((x) => !x.noSelect && x.messages.length > 0)) {
      const got = py[f.path.join('/')] ?? [];
      assert.deepEqual(got.map((m) => m.sha256).sort(), f.messages.map((m) => m.sha256).sort(), `bytes in ${f.path.join('/')}`);
      assert.ok(got.every((m) => m.parsed), `python parses every message of ${f.path.join('/')}`);
      assert.deepEqual(got.map((m) => `${m.sha256} ${[...m.flags].sort().join(',')}`).sort(), f.messages.map((m) => `${m.sha256} ${m.flags.join(',')}`).sort(), `flags in the manifest of ${f.path.join('/')}`);
    }

    // On through a Maildir and back into an account: what arrives is what alice holds.
    const toMd = await runCli(['migrate', '--from', eml, '--to', md, '--no-state', '--no-progress'], PW);
    assert.equal(toMd.code, 0, toMd.stderr + toMd.stdout);
    const back = await runCli(['migrate', '--from', md, '--to', d.url('bob'), '--no-state', '--no-progress'], PW);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.deepEqual(await readMailbox(d, 'bob', 'pw'), served);
  });

  it("reads an exporter's bare tree: LF line ends, file dates, top-level files as INBOX; reports what is broken", async () => {
    const root = join(dir, 'export');
    mkdirSync(join(root, 'Projects', 'Old'), { recursive: true });
    const a = 'From: a@example.com\nSubject: top\nMessage-ID: <top@x>\n\nhello\n';
    writeFileSync(join(root, 'top.eml'), a);
    utimesSync(join(root, 'top.eml'), new Date('2011-03-04T05:06:07Z'), new Date('2011-03-04T05:06:07Z'));
    writeFileSync(join(root, 'Projects', 'Old', 'x.EML'), 'Subject: nested\r\n\r\nbody\r\n');
    writeFileSync(join(root, 'Projects', 'empty.eml'), '');
    writeFileSync(join(dir, 'secret.eml'), 'Subject: secret\n\nnot in the tree\n');
    mkdirSync(join(dir, 'outside'), { recursive: true });
    writeFileSync(join(dir, 'outside', 'o.eml'), 'Subject: outside\n\nno\n');
    symlinkSync(join(dir, 'secret.eml'), join(root, 'Projects', 'link.eml'));
    symlinkSync(join(dir, 'outside'), join(root, 'Linked'));
    const run = await runCli(['migrate', '--from', `eml:${root}`, '--to', d.url('carol'), '--no-state', '--no-progress', '--json'], PW);
    // The linked directory is a folder not read (the run failed for it); every other folder was copied.
    assert.equal(run.code, 1, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as { items: { code: string; reason: string }[]; folders: { error?: { message: string } }[] };
    assert.deepEqual(report.items.map((i) => i.code), ['MM-ARCHIVE-MESSAGE', 'MM-ARCHIVE-MESSAGE']);
    assert.deepEqual(report.items.map((i) => /empty\.eml|link\.eml.*symbolic link/.test(i.reason)), [true, true]);
    assert.deepEqual(report.folders.filter((f) => f.error).map((f) => /Linked.*symbolic link/.test(f.error!.message)), [true]);
    const got = await readMailbox(d, 'carol', 'pw');
    const inbox = got.find((f) => f.path.join('/') === 'INBOX')!;
    assert.deepEqual(inbox.messages.map((m) => [m.sha256, m.internalDate]), [[createHash('sha256').update(a.replace(/\n/g, '\r\n')).digest('hex'), Date.parse('2011-03-04T05:06:07Z')]]);
    assert.equal(got.find((f) => f.path.join('/') === 'Projects/Old')?.messages.length, 1);
    assert.equal(got.find((f) => f.path.join('/') === 'Projects')?.messages.length, 0, 'the link to a file outside is not followed');
    assert.equal(got.find((f) => f.path[0] === 'Linked'), undefined, 'the link to a directory outside is not followed');
    assert.ok(!JSON.stringify(got).includes(createHash('sha256').update('Subject: secret\r\n\r\nnot in the tree\r\n').digest('hex')));
    void readFileSync;
  });
});

const PY_EML = String.raw`
import email, email.policy, hashlib, json, os, sys
root = sys.argv[1]
out = {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    rel = os.path.relpath(dirpath, root)
    manifest = {}
    mpath = os.path.join(dirpath, '.mailmover.json')
    if os.path.exists(mpath):
        with open(mpath) as f:
            manifest = json.load(f).get('messages', {})
    msgs = []
    for name in filenames:
        if not name.lower().endswith('.eml') or name.startswith('.'):
            continue
        with open(os.path.join(dirpath, name), 'rb') as f:
            data = f.read()
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        msgs.append({'sha256': hashlib.sha256(data).hexdigest(), 'flags': manifest.get(name, {}).get('flags', []), 'parsed': len(parsed.keys()) > 0})
    if msgs:
        out[rel] = msgs
print(json.dumps(out))
`;
