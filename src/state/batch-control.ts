/**
 * The ledger's schema-5 records (schema-v5.ts) for both backends: actions taken on batches, how
 * each batch was started, the workers' heartbeats, and progress samples. Written by `batch run`,
 * `mailmover worker` and the console's actions; one small interface, the same SQL for SQLite and
 * PostgreSQL (`?` placeholders, tables named through `table()`).
 *
 * It opens its own connection, after {@link openState} has created or migrated the schema.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { BatchActionName } from './schema-v5.js';
import { isPostgresUrl, type JobStatus } from './types.js';
import { openState } from './store.js';

/** One action taken on a batch. */
export interface BatchAction {
  id: number;
  batch: string;
  action: BatchActionName;
  operator: string;
  at: string;
  /** How many mailboxes it touched. */
  mailboxes: number;
  note?: string;
}

/** How a batch was started (the latest `batch run` of it). */
export interface BatchRun {
  batch: string;
  listFile?: string;
  configFile?: string;
  reportDir?: string;
  queued: boolean;
  updatedAt: string;
}

/** A mailbox a worker runs now. */
export interface RunningMailbox {
  batch: string;
  line: number;
  source: string;
}

/** A worker as its last heartbeat recorded it. */
export interface WorkerRecord {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen: string;
  heartbeatSeconds: number;
  running: RunningMailbox[];
  /** Set when the worker stopped cleanly. */
  stoppedAt?: string;
}

/** What a batch's actions leave it as: `active`, or held back by pause, or cancelled. */
export type BatchState = 'active' | 'paused' | 'cancelled';

type Row = Record<string, unknown>;

interface Sql {
  table(name: string): string;
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs a write; resolves with the rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  close(): Promise<void>;
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));

/** The schema-5 records of one ledger. */
export class ControlStore {
  private constructor(private readonly sql: Sql) {}

  /**
   * Opens the ledger at `location` for these records, after migrating it to schema 5 when older
   * (`migrated`: the caller has just opened it with openState, which did that).
   */
  static async open(location: string, migrated = false): Promise<ControlStore> {
    if (!migrated) await Promise.resolve((await openState(location)).close());
    if (isPostgresUrl(location)) {
      const pool = new pg.Pool({ connectionString: location, max: 2 });
      pool.on('error', () => undefined);
      const dollar = (sql: string) => {
        let n = 0;
        return sql.replace(/\?/g, () => `$${++n}`);
      };
      return new ControlStore({
        table: (name) => `mailmover_state.${name}`,
        all: async (sql, params = []) => (await pool.query(dollar(sql), params as unknown[])).rows as Row[],
        run: async (sql, params = []) => (await pool.query(dollar(sql), params as unknown[])).rowCount ?? 0,
        close: () => pool.end(),
      });
    }
    const db = new Database(location);
    db.pragma('busy_timeout = 5000');
    return new ControlStore({
      table: (name) => name,
      all: async (sql, params = []) => db.prepare(sql).all(...params) as Row[],
      run: async (sql, params = []) => db.prepare(sql).run(...params).changes,
      close: async () => void db.close(),
    });
  }

  private t(name: string): string {
    return this.sql.table(name);
  }

  /** Records an action taken on a batch, now. */
  async recordAction(a: { batch: string; action: BatchActionName; operator: string; mailboxes: number; note?: string }): Promise<void> {
    await this.sql.run(`INSERT INTO ${this.t('batch_action')} (batch, action, operator, at, mailboxes, note) VALUES (?, ?, ?, ?, ?, ?)`, [a.batch, a.action, a.operator, new Date().toISOString(), a.mailboxes, a.note ?? null]);
  }

  /** A batch's actions, oldest first. */
  async actions(batch: string): Promise<BatchAction[]> {
    return (await this.sql.all(`SELECT * FROM ${this.t('batch_action')} WHERE batch = ? ORDER BY id`, [batch])).map(actionFromRow);
  }

  /** The batch's state after its actions: the last pause, resume, cancel or retry decides. */
  async batchState(batch: string): Promise<BatchState> {
    const [last] = await this.sql.all(`SELECT action FROM ${this.t('batch_action')} WHERE batch = ? ORDER BY id DESC LIMIT 1`, [batch]);
    return last?.action === 'pause' ? 'paused' : last?.action === 'cancel' ? 'cancelled' : 'active';
  }

  /** Records how a batch was started. */
  async recordRun(r: Omit<BatchRun, 'updatedAt'>): Promise<void> {
    await this.sql.run(
      `INSERT INTO ${this.t('batch_run')} (batch, list_file, config_file, report_dir, queued, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (batch) DO UPDATE SET list_file = excluded.list_file, config_file = excluded.config_file, report_dir = excluded.report_dir, queued = excluded.queued, updated_at = excluded.updated_at`,
      [r.batch, r.listFile ?? null, r.configFile ?? null, r.reportDir ?? null, r.queued ? 1 : 0, new Date().toISOString()],
    );
  }

  /** How the batch was last started, when recorded. */
  async run(batch: string): Promise<BatchRun | undefined> {
    const [r] = await this.sql.all(`SELECT * FROM ${this.t('batch_run')} WHERE batch = ?`, [batch]);
    return r ? runFromRow(r) : undefined;
  }

  /** Changes the status of a batch's mailboxes that are in one of `from` (lines: only those); resolves with how many. */
  async setStatuses(batch: string, from: readonly JobStatus[], to: JobStatus, lines?: readonly number[]): Promise<number> {
    if (from.length === 0 || lines?.length === 0) return 0;
    const only = lines ? ` AND line IN (${lines.map(() => '?').join(', ')})` : '';
    return this.sql.run(`UPDATE ${this.t('batch_job')} SET status = ?, updated_at = ? WHERE batch = ? AND status IN (${from.map(() => '?').join(', ')})${only}`, [
      to,
      new Date().toISOString(),
      batch,
      ...from,
      ...(lines ?? []),
    ]);
  }

  /** A worker's heartbeat: who it is and what it runs, now. */
  async heartbeat(w: Omit<WorkerRecord, 'lastSeen' | 'stoppedAt'>, stopped = false): Promise<void> {
    const now = new Date().toISOString();
    await this.sql.run(
      `INSERT INTO ${this.t('worker')} (id, host, pid, started_at, last_seen, heartbeat_seconds, running, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, running = excluded.running, stopped_at = excluded.stopped_at`,
      [w.id, w.host, w.pid, w.startedAt, now, w.heartbeatSeconds, JSON.stringify(w.running), stopped ? now : null],
    );
  }

  /** Every worker recorded, the most recently seen first. */
  async workers(): Promise<WorkerRecord[]> {
    return (await this.sql.all(`SELECT * FROM ${this.t('worker')} ORDER BY last_seen DESC`)).map(workerFromRow);
  }

  /** Messages and bytes a running mailbox copied since its previous sample. */
  async sample(batch: string, copied: number, bytes: number): Promise<void> {
    if (copied <= 0 && bytes <= 0) return;
    await this.sql.run(`INSERT INTO ${this.t('progress_sample')} (batch, at, copied, bytes) VALUES (?, ?, ?, ?)`, [batch, new Date().toISOString(), copied, bytes]);
  }

  async close(): Promise<void> {
    await this.sql.close();
  }
}

export function actionFromRow(r: Row): BatchAction {
  return {
    id: Number(r.id),
    batch: String(r.batch),
    action: r.action as BatchActionName,
    operator: String(r.operator),
    at: iso(r.at),
    mailboxes: Number(r.mailboxes),
    ...(r.note ? { note: String(r.note) } : {}),
  };
}

export function runFromRow(r: Row): BatchRun {
  return {
    batch: String(r.batch),
    ...(r.list_file ? { listFile: String(r.list_file) } : {}),
    ...(r.config_file ? { configFile: String(r.config_file) } : {}),
    ...(r.report_dir ? { reportDir: String(r.report_dir) } : {}),
    queued: Number(r.queued) === 1,
    updatedAt: iso(r.updated_at),
  };
}

export function workerFromRow(r: Row): WorkerRecord {
  let running: RunningMailbox[] = [];
  try {
    running = JSON.parse(String(r.running)) as RunningMailbox[];
  } catch {
    running = [];
  }
  return {
    id: String(r.id),
    host: String(r.host),
    pid: Number(r.pid),
    startedAt: iso(r.started_at),
    lastSeen: iso(r.last_seen),
    heartbeatSeconds: Number(r.heartbeat_seconds),
    running,
    ...(r.stopped_at ? { stoppedAt: iso(r.stopped_at) } : {}),
  };
}
