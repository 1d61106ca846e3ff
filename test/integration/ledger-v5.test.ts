/**
 * Schema 5 of the ledger, in both backends: a ledger of schema 4 (built step by step with the
 * real migrations, with a batch row in it) is migrated on open, its rows kept; the new records
 * (actions with operator and time and the batch state they leave, batch starts, worker
 * heartbeats, progress samples) are written and read back, and the new statuses (paused,
 * cancelled) are accepted where the old CHECK refused them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Ledger, MIGRATIONS, SCHEMA_VERSION } from '../../src/state/ledger.js';
import { PG_MIGRATIONS, PgLedger } from '../../src/state/pg-ledger.js';
import { ControlStore } from '../../src/state/batch-control.js';
import type { StateStore } from '../../src/state/types.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const OLD_ROW = { line: 3, source: 'imap://ann@old.example.org', destination: 'imap://ann@new.example.org', status: 'failed' as const, code: 'MM-AUTH-FAILED', message: 'refused', copied: 0, skipped: 0, jobId: 'job-1', verdict: 'poor' as const };

async function exercise(store: StateStore, location: string): Promise<void> {
  const jobs = await store.jobs('b');
  assert.deepEqual(
    jobs.map(({ updatedAt: _, ...j }) => j),
    [OLD_ROW],
    'the schema-4 row is kept',
  );
  await store.recordJob('b', { ...OLD_ROW, line: 4, source: 'imap://bob@old.example.org', status: 'paused' });
  const control = await ControlStore.open(location);
  try {
    assert.equal(await control.batchState('b'), 'active');
    await control.recordAction({ batch: 'b', action: 'pause', operator: 'ops-ann', mailboxes: 1 });
    assert.equal(await control.batchState('b'), 'paused');
    await control.recordAction({ batch: 'b', action: 'cancel', operator: 'ops-bob', mailboxes: 1, note: 'done for today' });
    assert.equal(await control.batchState('b'), 'cancelled');
    const actions = await control.actions('b');
    assert.deepEqual(actions.map((a) => [a.action, a.operator, a.mailboxes, a.note]), [['pause', 'ops-ann', 1, undefined], ['cancel', 'ops-bob', 1, 'done for today']]);
    assert.ok(Math.abs(Date.parse(actions[0]!.at) - Date.now()) < 60_000, actions[0]!.at);
    assert.equal(await control.setStatuses('b', ['paused'], 'cancelled'), 1);
    assert.deepEqual((await store.jobs('b')).map((j) => j.status), ['failed', 'cancelled']);
    await control.recordRun({ batch: 'b', listFile: '/srv/users.csv', configFile: '/srv/servers.yaml', reportDir: '/srv/reports', queued: false });
    assert.deepEqual(await control.run('b').then((r) => r && { ...r, updatedAt: '' }), { batch: 'b', listFile: '/srv/users.csv', configFile: '/srv/servers.yaml', reportDir: '/srv/reports', queued: false, updatedAt: '' });
    const w = { id: 'w1', host: 'h', pid: 42, startedAt: new Date().toISOString(), heartbeatSeconds: 5, running: [{ batch: 'b', line: 4, source: 'imap://bob@old.example.org' }] };
    await control.heartbeat(w);
    await control.heartbeat({ ...w, running: [] }, true);
    const [seen] = await control.workers();
    assert.deepEqual([seen!.id, seen!.pid, seen!.running, !!seen!.stoppedAt], ['w1', 42, [], true]);
    await control.sample('b', 10, 2000);
    await control.sample('b', 0, 0);
  } finally {
    await control.close();
  }
}

describe('ledger schema 5', () => {
  let dir: string;
  let db: PostgresServer;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-ledger-v5-'));
    db = await startPostgres();
  });
  after(async () => {
    await db?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('SQLite: a schema-4 file is migrated to the current schema on open; the new records and statuses work', async () => {
    assert.equal(SCHEMA_VERSION, 7, 'schema 5 (these records), 6 (the destination HIGHESTMODSEQ) and 7 (daily budgets) are the steps after 4');
    const file = path.join(dir, 'state.db');
    const old = new Database(file);
    for (const step of MIGRATIONS.slice(0, 4)) old.exec(step);
    old.pragma('user_version = 4');
    old.prepare("INSERT INTO batch_job (batch, line, source, destination, status, code, message, copied, skipped, job_id, verdict, updated_at) VALUES ('b', 3, ?, ?, 'failed', 'MM-AUTH-FAILED', 'refused', 0, 0, 'job-1', 'poor', ?)").run(OLD_ROW.source, OLD_ROW.destination, new Date().toISOString());
    assert.throws(() => old.prepare("UPDATE batch_job SET status = 'paused'").run(), /CHECK/, 'schema 4 refuses the new status');
    old.close();
    const ledger = Ledger.open(file);
    try {
      await exercise(ledger, file);
    } finally {
      ledger.close();
    }
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.ok((check.prepare('PRAGMA table_info(folder)').all() as { name: string }[]).some((c) => c.name === 'dest_modseq'), 'migration 6 adds folder.dest_modseq');
    assert.deepEqual(check.prepare('SELECT copied, bytes FROM progress_sample').all(), [{ copied: 10, bytes: 2000 }]);
    check.close();
  });

  test('PostgreSQL: a schema-4 database is migrated to the current schema on open; the new records and statuses work', async () => {
    const url = await db.createDatabase('v5');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('CREATE SCHEMA mailmover_state; CREATE TABLE mailmover_state.schema_version (version INTEGER NOT NULL)');
      for (const step of PG_MIGRATIONS.slice(0, 4)) await c.query(step);
      await c.query('INSERT INTO mailmover_state.schema_version VALUES (4)');
      await c.query("INSERT INTO mailmover_state.batch_job (batch, line, source, destination, status, code, message, copied, skipped, job_id, verdict, updated_at) VALUES ('b', 3, $1, $2, 'failed', 'MM-AUTH-FAILED', 'refused', 0, 0, 'job-1', 'poor', now())", [OLD_ROW.source, OLD_ROW.destination]);
      await assert.rejects(c.query("UPDATE mailmover_state.batch_job SET status = 'paused'"), /check constraint/, 'schema 4 refuses the new status');
      const ledger = await PgLedger.open(url);
      try {
        await exercise(ledger, url);
      } finally {
        await ledger.close();
      }
      assert.deepEqual((await c.query('SELECT version FROM mailmover_state.schema_version')).rows, [{ version: SCHEMA_VERSION }]);
      assert.deepEqual((await c.query('SELECT copied, bytes::int AS bytes FROM mailmover_state.progress_sample')).rows, [{ copied: 10, bytes: 2000 }]);
    } finally {
      await c.end();
    }
  });
});
