/**
 * End-to-end: the real CLI migrates the fixture mailbox between real Dovecot servers, and the
 * destination is read back independently (bytes as SHA-256, flags, dates, folders, subscriptions).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { buildFixture, expectedFromFixture, readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

interface Report {
  status: string;
  totals: { messages: number; copied: number; alreadyPresent: number; skipped: number; folders: number; bytes: number; copiedBytes: number };
  folders: { source: string; destination: string; sourceCount: number; copied: number; alreadyPresent: number; skipped: number; error?: { code: string } }[];
  items: { folder: string; uid: number; code: string; reason: string }[];
  error?: { code: string; message: string };
}

const work = mkdtempSync(join(tmpdir(), 'mm-it-'));
const pw = (name: string, value: string) => {
  const f = join(work, name);
  writeFileSync(f, value + '\n');
  return f;
};

describe('migrate between real Dovecot servers', () => {
  let source: DovecotServer; // Courier/Cyrus style: "INBOX." prefix, "." separator
  let dest: DovecotServer; // Dovecot default: no prefix, "/" separator
  let fixture: FixtureFolder[];
  let total = 0;

  before(async () => {
    [source, dest] = await Promise.all([startDovecot({ separator: '.', prefix: 'INBOX.' }), startDovecot({ separator: '/', prefix: '' })]);
    fixture = buildFixture();
    total = fixture.reduce((n, f) => n + f.messages.length, 0);
    await source.addUser('alice', 'alice-src-pw');
    await seedMailbox(source, 'alice', 'alice-src-pw', fixture);
  });
  after(async () => {
    await Promise.all([source?.stop(), dest?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  test('full copy arrives byte for byte with flags, dates, folders and subscriptions; a rerun copies nothing', async () => {
    await dest.addUser('alice', 'alice-dst-pw');
    const report = join(work, 'full.json');
    const args = ['migrate', '--from', source.url('alice'), '--to', dest.url('alice'), '--from-password-file', pw('src', 'alice-src-pw'), '--to-password-file', pw('dst', 'alice-dst-pw'), '--report', report];
    const env = { NODE_EXTRA_CA_CERTS: undefined } as Record<string, string | undefined>;
    // Both test servers offer STARTTLS with a certificate from their own test CA; trust it the
    // way an administrator would (the CA is per server, so the destination uses --to-tls-insecure).
    env.NODE_EXTRA_CA_CERTS = source.caFile;
    const run = await runCli([...args, '--to-tls-insecure'], env);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.ok(!run.stdout.includes('alice-src-pw') && !run.stderr.includes('alice-src-pw'));

    const actual = await readMailbox(dest, 'alice', 'alice-dst-pw');
    assert.deepEqual(actual, expectedFromFixture(fixture, { namespace: [{ prefix: 'INBOX.', delimiter: '.' }, { prefix: '', delimiter: '/' }] }));

    const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
    assert.equal(r.status, 'complete');
    assert.equal(r.totals.messages, total);
    assert.equal(r.totals.copied, total);
    assert.equal(r.totals.skipped, 0);
    assert.deepEqual(r.items, []);

    const again = await runCli([...args, '--to-tls-insecure', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    const r2 = JSON.parse(again.stdout) as Report;
    assert.equal(r2.totals.copied, 0);
    assert.equal(r2.totals.alreadyPresent, total);
    assert.deepEqual(await readMailbox(dest, 'alice', 'alice-dst-pw'), actual, 'a rerun changes nothing');
  });

  test('a rerun after partial loss copies exactly the missing messages, duplicates included', async () => {
    await dest.addUser('bob', 'bob-pw');
    const env = { MAILMOVER_FROM_PASSWORD: 'alice-src-pw', MAILMOVER_TO_PASSWORD: 'bob-pw' };
    const args = ['migrate', '--from', source.url('alice'), '--to', dest.url('bob'), '--from-tls-insecure', '--to-tls-insecure', '--json'];
    const first = await runCli(args, env);
    assert.equal(first.code, 0, first.stderr);
    const complete = await readMailbox(dest, 'bob', 'bob-pw');

    // Delete, at the destination, one copy of a byte-identical duplicate and one ordinary message.
    const dupFolder = complete.find((f) => f.messages.some((m, i) => f.messages.findIndex((x) => x.sha256 === m.sha256) !== i));
    assert.ok(dupFolder, 'the fixture has byte-identical duplicates');
    const client = new ImapFlow({ host: dest.host, port: dest.port, auth: { user: 'bob', pass: 'bob-pw' }, logger: false, doSTARTTLS: false });
    await client.connect();
    const name = dupFolder.path.join(dest.separator);
    const lock = await client.getMailboxLock(name);
    const doomed: number[] = [];
    try {
      const seen = new Map<string, number>();
      const { createHash } = await import('node:crypto');
      for await (const m of client.fetch('1:*', { uid: true, source: true })) {
        const h = createHash('sha256').update(m.source!).digest('hex');
        seen.set(h, (seen.get(h) ?? 0) + 1);
        if (seen.get(h) === 2 || (doomed.length === 0 && m.uid === 1)) doomed.push(m.uid);
      }
      // Not inside the FETCH loop: imapflow runs one command at a time on a connection.
      await client.messageDelete(doomed.join(','), { uid: true });
    } finally {
      lock.release();
      await client.logout();
    }
    const removed = doomed.length;
    assert.ok(removed >= 2);

    const second = await runCli(args, env);
    assert.equal(second.code, 0, second.stderr);
    const r = JSON.parse(second.stdout) as Report;
    assert.equal(r.totals.copied, removed);
    assert.deepEqual(await readMailbox(dest, 'bob', 'bob-pw'), complete);
  });

  test('plan shows the mapping and counts and changes nothing', async () => {
    await dest.addUser('carol', 'carol-pw');
    const before = await readMailbox(dest, 'carol', 'carol-pw');
    const run = await runCli(['plan', '--from', source.url('alice'), '--to', dest.url('carol'), '--from-tls-insecure', '--to-tls-insecure'], {
      MAILMOVER_FROM_PASSWORD: 'alice-src-pw',
      MAILMOVER_TO_PASSWORD: 'carol-pw',
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`${total} to copy`));
    assert.match(run.stdout, /Nothing was changed/);
    assert.deepEqual(await readMailbox(dest, 'carol', 'carol-pw'), before);
  });

  test('the reverse direction ("/" to "INBOX." + ".") keeps the tree', async () => {
    await dest.addUser('dave', 'dave-pw');
    await source.addUser('dave', 'dave-pw2');
    const small = fixture.filter((f) => f.path[0] !== 'Big');
    await seedMailbox(dest, 'dave', 'dave-pw', small);
    const run = await runCli(['migrate', '--from', dest.url('dave'), '--to', source.url('dave'), '--from-tls-insecure', '--to-tls-insecure', '--json'], {
      MAILMOVER_FROM_PASSWORD: 'dave-pw',
      MAILMOVER_TO_PASSWORD: 'dave-pw2',
    });
    assert.equal(run.code, 0, run.stderr);
    const slash = { prefix: '', delimiter: '/' };
    const inboxDot = { prefix: 'INBOX.', delimiter: '.' };
    assert.deepEqual(await readMailbox(dest, 'dave', 'dave-pw'), expectedFromFixture(small, { namespace: slash }));
    // INBOX's children become top-level folders where every folder lives below "INBOX.".
    assert.deepEqual(await readMailbox(source, 'dave', 'dave-pw2'), expectedFromFixture(small, { namespace: [slash, inboxDot] }));
  });
});
