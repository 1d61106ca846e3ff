/**
 * The console's read-only connection to a ledger: a SQLite file opened with `readonly: true`, or
 * a PostgreSQL pool whose sessions are read-only (`default_transaction_read_only`). The console
 * never writes the ledger and never takes a mailbox lock; it runs its own SELECTs (ledger-view.ts)
 * written once with `?` placeholders and table names from {@link LedgerDb.table}.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { isPostgresUrl, maskUrl } from '../state/types.js';

/** One row as the driver returns it. */
export type Row = Record<string, unknown>;

/** A read-only ledger connection, the same for both backends. */
export interface LedgerDb {
  readonly dialect: 'sqlite' | 'pg';
  /** Where the ledger is, with any password masked. */
  readonly location: string;
  /** The qualified name of a ledger table. */
  table(name: string): string;
  /** Runs a SELECT; `?` placeholders in order. */
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** The columns of a ledger table (empty when the table does not exist). */
  columns(table: string): Promise<Set<string>>;
  close(): Promise<void>;
}

/** Thrown by {@link openLedgerDb} when a ledger file does not exist (yet). */
export class LedgerMissing extends Error {}

/**
 * Opens the ledger at `location` for reading. A file that does not exist is a {@link LedgerMissing}
 * (the console waits for it); one that cannot be opened is MM-STATE-OPEN.
 */
export async function openLedgerDb(location: string): Promise<LedgerDb> {
  if (isPostgresUrl(location)) return openPg(location);
  if (!existsSync(location)) throw new LedgerMissing(`There is no state file "${location}" yet.`);
  let db: Database.Database;
  try {
    db = new Database(location, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    // Reads one page: a file that is not a database is refused here rather than at the first query.
    db.pragma('user_version', { simple: true });
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (err) {
    throw new MigrateError(ERROR_CODES.STATE_OPEN, `The state file "${location}" cannot be read: ${(err as Error).message}.`, { scope: 'config', cause: err });
  }
  return {
    dialect: 'sqlite',
    location,
    table: (name) => name,
    all: (sql, params = []) => Promise.resolve(db.prepare(sql).all(...params) as Row[]),
    columns: (table) => Promise.resolve(new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[]).map((r) => r.name))),
    close: async () => void db.close(),
  };
}

const SCHEMA = 'mailmover_state';

async function openPg(url: string): Promise<LedgerDb> {
  const pool = new pg.Pool({ connectionString: url, max: 3, options: '-c default_transaction_read_only=on' });
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new MigrateError(ERROR_CODES.STATE_OPEN, `The state database ${maskUrl(url)} cannot be read: ${maskUrl((err as Error).message)}`, { scope: 'config', cause: err });
  }
  return {
    dialect: 'pg',
    location: maskUrl(url),
    table: (name) => `${SCHEMA}.${name}`,
    all: async (sql, params = []) => {
      let n = 0;
      return (await pool.query(sql.replace(/\?/g, () => `$${++n}`), params as unknown[])).rows as Row[];
    },
    columns: async (table) =>
      new Set(
        (await pool.query('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [SCHEMA, table])).rows.map((r: { name: string }) => r.name),
      ),
    close: () => pool.end(),
  };
}
