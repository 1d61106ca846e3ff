/**
 * Daily budgets against real Dovecot (README "Daily budgets"): a batch of 4 mailboxes whose source
 * accounts may download 3 messages per 2-minute window each (and whose destination accounts have a
 * byte budget too) holds 6 messages a mailbox, so every mailbox parks once. `batch run --wait`
 * resumes them by itself: all 4 end complete and exact at the destination (bytes, flags, dates),
 * nothing failed, nothing was copied twice, and while they were parked the ledger and `batch
 * status` showed them `waiting` with a resume time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { startBudgetBatch, type BudgetBatch } from '../helpers/budget-batch.js';
import { runCli } from '../helpers/cli.js';

const USERS = ['ann', 'bob', 'cid', 'dee'];
const mailbox = (u: string): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: 5 }, (_, k) => ({
      raw: Buffer.from(`From: x@example.org\r\nSubject: ${u} ${k}\r\nMessage-ID: <${u}-${k}@budget.test>\r\n\r\n${'body line\r\n'.repeat(20 + k)}`),
      flags: k % 2 ? ['\\Seen'] : ['\\Flagged'],
      internalDate: new Date(Date.UTC(2022, 2, 1 + k, 8, k)),
    })),
  },
  { path: ['Work'], subscribed: true, messages: [{ raw: Buffer.from(`Subject: work ${u}\r\nMessage-ID: <${u}-w@budget.test>\r\n\r\nw\r\n`), flags: ['\\Answered'], internalDate: new Date(Date.UTC(2022, 5, 1)) }] },
];

describe('daily budgets park and resume a batch', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let dir: string;
  let setup: BudgetBatch | undefined;

  before(async () => {
    setup = await startBudgetBatch({
      prefix: 'mm-budget-',
      users: USERS,
      mailbox,
      sourceLines: ['maxMessagesPerDay: 3'],
      destinationLines: ['maxBytesPerDay: 1M'],
      defaults: '{ connections: 1, retries: 2, retryDelaySeconds: 0.02, budgetWindow: 2m }',
    });
    ({ source, dest, dir } = setup);
  });
  after(async () => {
    await setup?.stop();
  });

  test('4 mailboxes park at least once, resume by themselves, and end complete and exact', { timeout: 240_000 }, async () => {
    const state = path.join(dir, 'state.db');
    const args = ['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--state', state, '--report-dir', path.join(dir, 'reports'), '--parallel', '2', '--wait', '--json', '--no-log'];
    const started = Date.now();
    const run = runCli(args, { MM_MASTER: 'adminpw' }, 230_000);
    // While it runs: every mailbox is seen waiting, with a resume time, in the ledger; batch status says so too.
    const seenWaiting = new Map<string, string>();
    let statusText = '';
    let done = false;
    void run.finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 500));
      let rows: { source: string; status: string; resume_at: string | null; code: string | null }[] = [];
      try {
        const db = new Database(state, { readonly: true, fileMustExist: true });
        try {
          rows = db.prepare('SELECT source, status, resume_at, code FROM batch_job').all() as typeof rows;
        } finally {
          db.close();
        }
      } catch {
        continue; // not created yet, or busy
      }
      for (const r of rows) {
        if (r.status !== 'waiting') continue;
        assert.equal(r.code, 'MM-BUDGET-SPENT');
        assert.ok(r.resume_at && Date.parse(r.resume_at) > Date.now() - 5000, `a resume time: ${r.resume_at}`);
        seenWaiting.set(r.source, r.resume_at);
      }
      if (!statusText && rows.some((r) => r.status === 'waiting')) {
        statusText = (await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state], {})).stdout;
      }
    }
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { status: string; totals: { complete: number; failed: number; copied: number }; jobs: { status: string; copied: number }[] };
    assert.equal(report.status, 'complete');
    assert.equal(report.totals.complete, 4);
    assert.equal(report.totals.failed, 0);
    assert.equal(seenWaiting.size, 4, `every mailbox parked once: ${[...seenWaiting.keys()].join(', ')}`);
    assert.match(statusText, /waiting .*MM-BUDGET-SPENT {2}resumes \d{4}-\d\d-\d\dT/, statusText);
    // The window had to roll: the run took at least 2 minutes.
    assert.ok(Date.now() - started >= 115_000, `took ${Date.now() - started} ms`);
    for (const u of USERS) {
      const there = await readMailbox(dest, u, `pw-${u}`);
      assert.deepEqual(there, await readMailbox(source, u, `pw-${u}`), u);
      // Nothing twice: 6 messages at the destination, 6 distinct Message-IDs.
      const all = there.flatMap((f) => f.messages);
      assert.equal(all.length, 6, u);
    }
    // The ledger counted 6 messages per source account (3 + 3), and as many bytes up as down.
    const db = new Database(state, { readonly: true });
    try {
      for (const u of USERS) {
        const down = db.prepare("SELECT sum(messages) AS m, sum(bytes) AS b FROM budget_spend WHERE direction = 'down' AND account LIKE ?").get(`imap://${u}%`) as { m: number; b: number };
        const up = db.prepare("SELECT sum(messages) AS m, sum(bytes) AS b FROM budget_spend WHERE direction = 'up' AND account LIKE ?").get(`imap://${u}%`) as { m: number; b: number };
        assert.equal(down.m, 6, u);
        assert.equal(up.m, 6, u);
        assert.equal(up.b, down.b, u);
      }
    } finally {
      db.close();
    }
  });
});
