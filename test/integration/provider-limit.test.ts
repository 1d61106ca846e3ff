/**
 * A provider's own limit parks a mailbox instead of failing it (README "Daily budgets"): the
 * scripted Gmail server answers body FETCHes past its bandwidth limit with
 * `NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)`; `batch run` ends with
 * the mailbox `waiting` (MM-PROVIDER-LIMIT, exit 75) until the configured park time, and what was
 * copied before is at the destination (real Dovecot). A destination `[OVERQUOTA] Quota exceeded`
 * (storage) still fails the mailbox as before (MM-DEST-OVERQUOTA, exit 6).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type GmailMessage, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { cyrus, gmail } from '../helpers/scripted-imap/personalities.js';

const msg = (n: number): GmailMessage => ({
  raw: Buffer.from(`From: p@example.org\r\nSubject: limit ${n}\r\nMessage-ID: <limit-${n}@example.org>\r\n\r\n${'x'.repeat(200)} ${n}\r\n`),
  flags: n % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2024, 2, n)),
  // Two messages per folder: one body FETCH per folder.
  labels: [['\\Inbox', 'Work', 'Later'][Math.floor((n - 1) / 2)]!],
});

describe('provider limits park a mailbox', () => {
  let dest: PlainDovecotServer;
  let dir: string;
  const servers: ScriptedImapServer[] = [];

  before(async () => {
    dest = await startDovecot({ tls: false });
    await dest.addUser('alice', 'dpw');
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-provider-limit-'));
  });
  after(async () => {
    await Promise.all([dest?.stop(), ...servers.map((s) => s.stop())]);
    await rm(dir, { recursive: true, force: true });
  });

  test("Gmail's bandwidth answer parks the mailbox (waiting until the park time), not failed", { timeout: 120_000 }, async () => {
    // The first folder's body FETCH goes through; the next is refused with Gmail's words.
    const src = await startScriptedImap({ personality: gmail, users: { alice: { password: 'spw', folders: [], gmail: Array.from({ length: 6 }, (_, i) => msg(i + 1)) } }, faults: { alice: { bandwidthLimit: { downloadBytes: 1 } } } });
    servers.push(src);
    await writeFile(
      path.join(dir, 'gmail.yaml'),
      [`source: { url: imap://127.0.0.1:${src.port} }`, `destination: { url: imap://127.0.0.1:${dest.port} }`, 'defaults: { connections: 1, retries: 2, retryDelaySeconds: 0.02, providerLimitPark: 10m }', ''].join('\n'),
    );
    await writeFile(path.join(dir, 'gmail.csv'), 'source_user,destination_user,source_password,destination_password\nalice,alice,spw,dpw\n');
    const state = path.join(dir, 'gmail.db');
    const before = Date.now();
    const r = await runCli(['batch', 'run', path.join(dir, 'gmail.csv'), '--config', path.join(dir, 'gmail.yaml'), '--state', state, '--report-dir', path.join(dir, 'gmail-reports'), '--parallel', '1', '--json', '--no-log'], {});
    assert.equal(r.code, 75, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as { status: string; totals: { failed: number; waiting?: number }; jobs: { status: string; code?: string; message?: string; resumeAt?: string; verdict?: string }[] };
    assert.equal(report.status, 'waiting');
    assert.equal(report.totals.failed, 0);
    assert.equal(report.totals.waiting, 1);
    const job = report.jobs[0]!;
    assert.equal(job.status, 'waiting');
    assert.equal(job.code, 'MM-PROVIDER-LIMIT');
    assert.match(job.message ?? '', /Account exceeded command or bandwidth limits/);
    assert.equal(job.verdict, undefined, 'a parked mailbox has no verdict yet');
    const resume = Date.parse(job.resumeAt ?? '');
    assert.ok(resume >= before + 10 * 60_000 && resume <= Date.now() + 10 * 60_000 + 1000, `resumes about 10 min later: ${job.resumeAt}`);
    // The ledger says so (what batch status and the console read).
    const db = new Database(state, { readonly: true });
    try {
      const row = db.prepare('SELECT status, code, resume_at FROM batch_job').get() as { status: string; code: string; resume_at: string };
      assert.deepEqual(row, { status: 'waiting', code: 'MM-PROVIDER-LIMIT', resume_at: job.resumeAt });
    } finally {
      db.close();
    }
    const status = await runCli(['batch', 'status', path.join(dir, 'gmail.csv'), '--state', state], {});
    assert.match(status.stdout, /1 waiting/);
    assert.match(status.stdout, new RegExp(`waiting .*MM-PROVIDER-LIMIT {2}resumes ${job.resumeAt!.replace(/\./g, '\\.')}`));
    // What was downloaded before the limit arrived, exactly.
    const there = (await readMailbox(dest, 'alice', 'dpw')).flatMap((f) => f.messages);
    assert.equal(there.length, 2);
    // A rerun before the resume time leaves it waiting, touching nothing.
    const again = await runCli(['batch', 'run', path.join(dir, 'gmail.csv'), '--config', path.join(dir, 'gmail.yaml'), '--state', state, '--report-dir', path.join(dir, 'gmail-reports'), '--json', '--no-log'], {});
    assert.equal(again.code, 75, again.stderr);
    assert.equal((JSON.parse(again.stdout) as typeof report).jobs[0]!.resumeAt, job.resumeAt);
  });

  test('a destination [OVERQUOTA] about storage still fails the mailbox (MM-DEST-OVERQUOTA)', { timeout: 120_000 }, async () => {
    const source = await startDovecot({ tls: false });
    try {
      await source.addUser('bob', 'spw');
      await seedMailbox(source, 'bob', 'spw', [{ path: ['INBOX'], subscribed: true, messages: [1, 2, 3].map((n) => ({ raw: Buffer.from(`Subject: q${n}\r\nMessage-ID: <q-${n}@example.org>\r\n\r\nq\r\n`), flags: [], internalDate: new Date(Date.UTC(2024, 0, n)) })) }]);
      const full = await startScriptedImap({
        personality: cyrus,
        users: { bob: { password: 'dpw', folders: [{ name: 'INBOX', messages: [] }] } },
        faults: { bob: { appendFailures: [{ match: 'Message-ID', times: 'always', response: 'NO [OVERQUOTA] Quota exceeded' }] } },
      });
      servers.push(full);
      const r = await runCli(['migrate', '--from', `imap://bob@127.0.0.1:${source.port}`, '--to', `imap://bob@127.0.0.1:${full.port}`, '--state', path.join(dir, 'quota.db'), '--json', '--no-progress'], { MAILMOVER_FROM_PASSWORD: 'spw', MAILMOVER_TO_PASSWORD: 'dpw' });
      assert.equal(r.code, 6, r.stderr);
      const report = JSON.parse(r.stdout) as { status: string; error?: { code: string; resumeAt?: string } };
      assert.equal(report.status, 'failed');
      assert.equal(report.error?.code, 'MM-DEST-OVERQUOTA');
      assert.equal(report.error?.resumeAt, undefined);
    } finally {
      await source.stop();
    }
  });
  test('migrate --max-messages-per-day parks with exit 75; a run after the resume time finishes, exactly', { timeout: 120_000 }, async () => {
    const source = await startDovecot({ tls: false });
    try {
      await source.addUser('cat', 'spw');
      await dest.addUser('cat', 'dpw');
      await seedMailbox(source, 'cat', 'spw', [{ path: ['INBOX'], subscribed: true, messages: [1, 2, 3].map((n) => ({ raw: Buffer.from(`Subject: c${n}\r\nMessage-ID: <c-${n}@example.org>\r\n\r\nc\r\n`), flags: n === 2 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2024, 1, n)) })) }]);
      const args = ['migrate', '--from', `imap://cat@127.0.0.1:${source.port}`, '--to', `imap://cat@127.0.0.1:${dest.port}`, '--state', path.join(dir, 'cat.db'), '--json', '--no-progress', '--max-messages-per-day', '2', '--budget-window', '3s'];
      const env = { MAILMOVER_FROM_PASSWORD: 'spw', MAILMOVER_TO_PASSWORD: 'dpw' };
      const first = await runCli(args, env);
      assert.equal(first.code, 75, first.stderr);
      const report = JSON.parse(first.stdout) as { status: string; totals: { copied: number }; error?: { code: string; resumeAt?: string } };
      assert.equal(report.status, 'waiting');
      assert.equal(report.error?.code, 'MM-BUDGET-SPENT');
      assert.equal(report.totals.copied, 2);
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(report.error!.resumeAt!) - Date.now()) + 200));
      const second = await runCli(args, env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal((JSON.parse(second.stdout) as typeof report).totals.copied, 1);
      assert.deepEqual(await readMailbox(dest, 'cat', 'dpw'), await readMailbox(source, 'cat', 'spw'));
      // A budget needs the ledger.
      const stateless = await runCli([...args.filter((a) => !a.endsWith('cat.db') && a !== '--state'), '--no-state'], env);
      assert.equal(stateless.code, 2);
      assert.match(stateless.stderr, /MM-CONFIG-OPTION.*need a state file/);
    } finally {
      await source.stop();
    }
  });
});
