/**
 * Schema 7 of the ledger (both backends) and the daily budgets kept in it (README "Daily budgets";
 * the arithmetic is budget-window.ts):
 *
 * - `budget_spend`: one row per batch of messages an account let through (bytes downloaded from a
 *   source account, `down`, or uploaded to a destination account, `up`), with its time in ms since
 *   the epoch. Shared by every run and worker that uses the ledger, so a budget holds across them.
 * - `batch_job.resume_at`: when a parked (`waiting`) mailbox may go on.
 *
 * Spending is one transaction that reads the accounts' rows, decides, and writes: in SQLite an
 * IMMEDIATE transaction (one writer at a time), in PostgreSQL under transaction-level advisory
 * locks on the accounts (taken in a fixed order, so two workers never deadlock), with the
 * database's clock (clock skew between workers does not matter).
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { KEEP_MS, decide, type BudgetAccount, type BudgetAnswer, type BudgetRequest, type SpendRow } from './budget-window.js';

export const SQLITE_V7 = `
  CREATE TABLE budget_spend (
    account TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('down', 'up')),
    at INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    messages INTEGER NOT NULL);
  CREATE INDEX budget_spend_account ON budget_spend (account, direction, at);
  ALTER TABLE batch_job ADD COLUMN resume_at TEXT;`;

export function pgV7(schema: string): string {
  return `
  CREATE TABLE IF NOT EXISTS ${schema}.budget_spend (
    account TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('down', 'up')),
    at BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    messages INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS budget_spend_account ON ${schema}.budget_spend (account, direction, at);
  ALTER TABLE ${schema}.batch_job ADD COLUMN IF NOT EXISTS resume_at TIMESTAMPTZ;`;
}

const keep = (windowMs: number) => Math.max(KEEP_MS, windowMs);

/** Spends in a SQLite ledger (see the module comment). */
export function sqliteSpend(db: Database.Database, req: BudgetRequest): BudgetAnswer {
  return db
    .transaction((): BudgetAnswer => {
      const now = req.now ?? Date.now();
      const rows = new Map<BudgetAccount, SpendRow[]>();
      for (const a of req.accounts) {
        db.prepare('DELETE FROM budget_spend WHERE account = ? AND direction = ? AND at < ?').run(a.account, a.direction, now - keep(req.windowMs));
        rows.set(a, db.prepare('SELECT at, bytes, messages FROM budget_spend WHERE account = ? AND direction = ? AND at > ?').all(a.account, a.direction, now - req.windowMs) as SpendRow[]);
      }
      const { row, ...answer } = decide(req, (a) => rows.get(a)!, now);
      if (row) for (const a of req.accounts) db.prepare('INSERT INTO budget_spend (account, direction, at, bytes, messages) VALUES (?, ?, ?, ?, ?)').run(a.account, a.direction, row.at, row.bytes, row.messages);
      return answer;
    })
    .immediate();
}

/** What an account spent in the window ending now (for `batch status` and tests). */
export function sqliteUsage(db: Database.Database, account: string, direction: string, windowMs: number, now = Date.now()): { bytes: number; messages: number } {
  const r = db.prepare('SELECT coalesce(sum(bytes), 0) AS bytes, coalesce(sum(messages), 0) AS messages FROM budget_spend WHERE account = ? AND direction = ? AND at > ?').get(account, direction, now - windowMs) as { bytes: number; messages: number };
  return { bytes: Number(r.bytes), messages: Number(r.messages) };
}

const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::float8`;

/** Spends in a PostgreSQL ledger (see the module comment). */
export async function pgSpend(pool: pg.Pool, schema: string, req: BudgetRequest): Promise<BudgetAnswer> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const keys = [...new Set(req.accounts.map((a) => `${a.direction}\n${a.account}`))].sort();
      for (const k of keys) await client.query("SELECT pg_advisory_xact_lock(hashtextextended('mailmover budget\n' || $1, 0))", [k]);
      const now = req.now ?? Math.floor(Number((await client.query<{ t: number }>(`SELECT ${NOW_MS} AS t`)).rows[0]!.t));
      const rows = new Map<BudgetAccount, SpendRow[]>();
      for (const a of req.accounts) {
        await client.query(`DELETE FROM ${schema}.budget_spend WHERE account = $1 AND direction = $2 AND at < $3`, [a.account, a.direction, now - keep(req.windowMs)]);
        const r = await client.query<{ at: string; bytes: string; messages: number }>(`SELECT at, bytes, messages FROM ${schema}.budget_spend WHERE account = $1 AND direction = $2 AND at > $3`, [a.account, a.direction, now - req.windowMs]);
        rows.set(a, r.rows.map((x) => ({ at: Number(x.at), bytes: Number(x.bytes), messages: Number(x.messages) })));
      }
      const { row, ...answer } = decide(req, (a) => rows.get(a)!, now);
      if (row) for (const a of req.accounts) await client.query(`INSERT INTO ${schema}.budget_spend (account, direction, at, bytes, messages) VALUES ($1, $2, $3, $4, $5)`, [a.account, a.direction, row.at, row.bytes, row.messages]);
      await client.query('COMMIT');
      return answer;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

/** What an account spent in the window ending now (the database's clock unless `now`). */
export async function pgUsage(pool: pg.Pool, schema: string, account: string, direction: string, windowMs: number, now?: number): Promise<{ bytes: number; messages: number }> {
  const { rows } = await pool.query<{ bytes: string; messages: string }>(
    `SELECT coalesce(sum(bytes), 0) AS bytes, coalesce(sum(messages), 0) AS messages FROM ${schema}.budget_spend
     WHERE account = $1 AND direction = $2 AND at > coalesce($4::float8, ${NOW_MS}) - $3::float8`,
    [account, direction, windowMs, now ?? null],
  );
  return { bytes: Number(rows[0]!.bytes), messages: Number(rows[0]!.messages) };
}
