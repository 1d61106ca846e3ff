/**
 * Daily budgets in queue mode (README "Daily budgets"): real PostgreSQL (queue and ledger) and real
 * Dovecot. Two mailboxes whose source accounts may download 2 messages per 1-minute window hold 3
 * messages each: a `mailmover worker` parks each once, records it `waiting` with its resume time,
 * and queues its job again for that time (pg-boss startAfter); `batch run --queue` follows the new
 * jobs and ends when both are complete and exact at the destination.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import type { PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { startBudgetBatch, type BudgetBatch } from '../helpers/budget-batch.js';
import { CLI, runCli } from '../helpers/cli.js';

const USERS = ['qa', 'qb'];
const mailbox = (u: string): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: 3 }, (_, k) => ({
      raw: Buffer.from(`Subject: ${u} ${k}\r\nMessage-ID: <${u}-${k}@budget-queue.test>\r\n\r\nbody ${k}\r\n`),
      flags: k ? ['\\Seen'] : [],
      internalDate: new Date(Date.UTC(2021, 0, 1 + k)),
    })),
  },
];

describe('daily budgets in queue mode', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let db: PostgresServer;
  let dir: string;
  let worker: ChildProcess | undefined;

  let setup: BudgetBatch | undefined;

  before(async () => {
    [setup, db] = await Promise.all([
      startBudgetBatch({
        prefix: 'mm-budget-queue-',
        users: USERS,
        mailbox,
        sourceLines: ['maxMessagesPerDay: 2'],
        destinationLines: [],
        defaults: '{ connections: 1, retries: 2, retryDelaySeconds: 0.02, budgetWindow: 1m }',
      }),
      startPostgres(),
    ]);
    ({ source, dest, dir } = setup);
  });
  after(async () => {
    if (worker?.pid && worker.exitCode === null) worker.kill('SIGKILL');
    await Promise.all([setup?.stop(), db?.stop()]);
  });

  test('a worker parks each mailbox, queues it again for its resume time, and both end complete', { timeout: 200_000 }, async () => {
    const url = await db.createDatabase('queue');
    const batch = runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--queue', url, '--report-dir', path.join(dir, 'reports'), '--json', '--no-log'], { MM_MASTER: 'adminpw' }, 190_000);
    worker = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '2', '--report-dir', path.join(dir, 'w'), '--no-log'], { env: { ...process.env, MM_MASTER: 'adminpw' }, stdio: 'ignore' });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const parked = new Map<string, { resumeAt: string; jobId: string }>();
    let done = false;
    void batch.finally(() => (done = true));
    try {
      while (!done) {
        await new Promise((r) => setTimeout(r, 500));
        const rows = await client.query<{ source: string; status: string; resume_at: Date | null; job_id: string | null; code: string | null }>('SELECT source, status, resume_at, job_id, code FROM mailmover_state.batch_job').catch(() => ({ rows: [] }));
        for (const r of rows.rows) {
          if (r.status !== 'waiting' || parked.has(r.source)) continue;
          assert.equal(r.code, 'MM-BUDGET-SPENT');
          assert.ok(r.resume_at && r.job_id);
          // The job queued again starts no earlier than the resume time.
          const job = await client.query<{ start_after: Date; state: string }>('SELECT start_after, state FROM mailmover_queue.job WHERE id = $1', [r.job_id]);
          assert.ok(job.rows[0], 'the new job is in the queue');
          assert.ok(Math.abs(job.rows[0].start_after.getTime() - r.resume_at.getTime()) < 1000, `startAfter ${job.rows[0].start_after.toISOString()} = resume ${r.resume_at.toISOString()}`);
          parked.set(r.source, { resumeAt: r.resume_at.toISOString(), jobId: r.job_id });
        }
      }
    } finally {
      await client.end();
    }
    const r = await batch;
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { status: string; totals: { complete: number; failed: number } };
    assert.equal(report.status, 'complete');
    assert.equal(report.totals.complete, 2);
    assert.equal(parked.size, 2, 'each mailbox was parked once');
    for (const u of USERS) assert.deepEqual(await readMailbox(dest, u, `pw-${u}`), await readMailbox(source, u, `pw-${u}`), u);
  });
});
