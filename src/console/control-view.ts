/**
 * The console's read-only queries of the ledger's schema-5 records (src/state/schema-v5.ts): a
 * batch's actions and how it was started, the workers' heartbeats, and the progress samples of
 * its throughput chart. A ledger of an older schema has none of these tables: the answers are
 * then empty, never an error.
 */
import { actionFromRow, runFromRow, workerFromRow, type BatchAction, type BatchRun, type BatchState, type WorkerRecord } from '../state/batch-control.js';
import type { LedgerDb } from './ledger-db.js';

/** How many heartbeats a worker may miss before it is shown as gone. */
export const GONE_AFTER_BEATS = 3;

/** A worker as the page shows it. */
export type WorkerView = WorkerRecord & { alive: boolean };

async function has(db: LedgerDb, table: string): Promise<boolean> {
  return (await db.columns(table)).size > 0;
}

/** A batch's actions, oldest first. */
export async function batchActions(db: LedgerDb, batch: string): Promise<BatchAction[]> {
  if (!(await has(db, 'batch_action'))) return [];
  return (await db.all(`SELECT * FROM ${db.table('batch_action')} WHERE batch = ? ORDER BY id`, [batch])).map(actionFromRow);
}

/** The batch's state after its actions (the same rule as ControlStore.batchState). */
export function stateAfter(actions: readonly BatchAction[]): BatchState {
  const last = actions.at(-1)?.action;
  return last === 'pause' ? 'paused' : last === 'cancel' ? 'cancelled' : 'active';
}

/** How the batch was last started, when recorded. */
export async function batchRun(db: LedgerDb, batch: string): Promise<BatchRun | undefined> {
  if (!(await has(db, 'batch_run'))) return undefined;
  const [r] = await db.all(`SELECT * FROM ${db.table('batch_run')} WHERE batch = ?`, [batch]);
  return r ? runFromRow(r) : undefined;
}

/** True when some mailbox of the batch has a queue job (it was run with --queue). */
export async function isQueued(db: LedgerDb, batch: string): Promise<boolean> {
  if (!(await db.columns('batch_job')).has('job_id')) return false;
  const [r] = await db.all(`SELECT count(*) AS n FROM ${db.table('batch_job')} WHERE batch = ? AND job_id IS NOT NULL`, [batch]);
  return Number(r?.n ?? 0) > 0;
}

/**
 * Every worker recorded, alive or gone: gone when it stopped, or was not seen for
 * GONE_AFTER_BEATS heartbeats (by the console's clock; machines are expected to keep time).
 */
export async function workers(db: LedgerDb, now = Date.now()): Promise<WorkerView[]> {
  if (!(await has(db, 'worker'))) return [];
  return (await db.all(`SELECT * FROM ${db.table('worker')} ORDER BY last_seen DESC`)).map(workerFromRow).map((w) => ({
    ...w,
    alive: !w.stoppedAt && now - Date.parse(w.lastSeen) <= GONE_AFTER_BEATS * w.heartbeatSeconds * 1000,
  }));
}

/** A batch's progress samples in time order: messages and bytes copied since the previous one. */
export async function progressSamples(db: LedgerDb, batch: string): Promise<{ at: string; copied: number; bytes: number }[]> {
  if (!(await has(db, 'progress_sample'))) return [];
  const rows = await db.all(`SELECT at, copied, bytes FROM ${db.table('progress_sample')} WHERE batch = ? ORDER BY at`, [batch]);
  return rows.map((r) => ({ at: r.at instanceof Date ? r.at.toISOString() : String(r.at), copied: Number(r.copied), bytes: Number(r.bytes) }));
}
