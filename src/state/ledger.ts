/**
 * The state ledger: an embedded SQLite database (better-sqlite3) that remembers, per mailbox and
 * folder, what a migration did, so that a rerun does only what changed and a crash never
 * duplicates or loses mail.
 *
 * It records per folder the source and destination UIDVALIDITY, UIDNEXT and message counts seen
 * after the last complete pass, the source UID -> destination UID map (the destination UID when the
 * server said it, with UIDPLUS), and every skipped item with its reason: the per-item audit trail.
 *
 * Crash safety is "intent before, result after": the rows of a batch are written as `intent`
 * before its APPEND is sent and turned into `done` after it was answered, each in one
 * transaction. A folder with intents left over from a killed run is never trusted: it is planned
 * again from both listings (content identity), which settles what the lost APPEND did.
 *
 * The schema is versioned (PRAGMA user_version) and migrated forward on open; a file written by a
 * newer mailmover is refused and left untouched. One run per mailbox at a time: a lock in the
 * mailbox row names the process holding it; a lock of a process that no longer runs (on this
 * host) is taken over.
 */
import Database from 'better-sqlite3';
import { closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { write } from './checkpoint.js';
import { mailboxIdentities } from './mailbox-key.js';
import { lockMailboxFiles, type MailboxLock } from './mailbox-lock.js';
import { SQLITE_V5, V4_STATUS_SQL, VERDICT_SQL } from './schema-v5.js';
import { SQLITE_V7, sqliteSpend, sqliteUsage } from './budget-ledger.js';
import type { BudgetAnswer, BudgetRequest } from './budget-window.js';
import { jobFromRow, type BatchJobRecord, type BatchJobRow, type FolderMarks, type FolderRecord, type FolderSummary, type LedgerMessage, type LedgerSkip, type MailboxRecord, type StateStore } from './types.js';
import { processAlive } from '../core/process-alive.js';

// Kept for the modules that import the types from here.
export type { BatchJobRecord, BatchJobRow, FolderMarks, LedgerMessage, LedgerSkip } from './types.js';
export { jobFromRow } from './types.js';

export { STATUS_SQL, VERDICT_SQL } from './schema-v5.js';

/** The schema version this code writes. */
export const SCHEMA_VERSION = 7;

/** Each step takes the schema from version i to i+1 (exported for the migration tests). */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE mailbox (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     lock_pid INTEGER,
     lock_host TEXT,
     lock_at TEXT,
     UNIQUE (source, destination));
   CREATE TABLE folder (
     id INTEGER PRIMARY KEY,
     mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
     source_name TEXT NOT NULL,
     dest_name TEXT NOT NULL,
     source_uidvalidity TEXT,
     source_uidnext INTEGER,
     source_count INTEGER,
     source_bytes INTEGER,
     source_modseq TEXT,
     dest_uidvalidity TEXT,
     dest_uidnext INTEGER,
     dest_count INTEGER,
     synced_at TEXT,
     UNIQUE (mailbox_id, source_name));
   CREATE TABLE message (
     folder_id INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
     source_uid INTEGER NOT NULL,
     dest_uid INTEGER,
     key TEXT NOT NULL,
     size INTEGER NOT NULL,
     flags TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('intent', 'done')),
     PRIMARY KEY (folder_id, source_uid));
   CREATE TABLE skipped (
     folder_id INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
     source_uid INTEGER NOT NULL,
     code TEXT NOT NULL,
     reason TEXT NOT NULL,
     attempts INTEGER,
     at TEXT NOT NULL,
     PRIMARY KEY (folder_id, source_uid));`,
  // 2: batches (mailmover batch): one row per mailbox of a batch, with its status.
  `CREATE TABLE batch_job (
     batch TEXT NOT NULL,
     line INTEGER NOT NULL,
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')),
     code TEXT,
     message TEXT,
     copied INTEGER NOT NULL DEFAULT 0,
     skipped INTEGER NOT NULL DEFAULT 0,
     seconds REAL,
     report TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (batch, source, destination));`,
  // 3: a running mailbox's progress (copied of to_copy), for live progress from other machines;
  // the queue job of a queued mailbox, so that enqueueing the batch again joins it.
  `ALTER TABLE batch_job ADD COLUMN to_copy INTEGER;
   ALTER TABLE batch_job ADD COLUMN job_id TEXT;`,
  // 4: every status of a mailbox (not started, waiting, interrupted), its verdict, and the process
  // running it. SQLite cannot change a CHECK constraint in place: the table is copied. Rows that
  // version 3 recorded as failed MM-ABORTED were stopped, not failed: they become interrupted.
  `CREATE TABLE batch_job_v4 (
     batch TEXT NOT NULL,
     line INTEGER NOT NULL,
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN (${V4_STATUS_SQL})),
     code TEXT,
     message TEXT,
     copied INTEGER NOT NULL DEFAULT 0,
     skipped INTEGER NOT NULL DEFAULT 0,
     seconds REAL,
     report TEXT,
     updated_at TEXT NOT NULL,
     to_copy INTEGER,
     job_id TEXT,
     verdict TEXT CHECK (verdict IN (${VERDICT_SQL})),
     runner_pid INTEGER,
     runner_host TEXT,
     PRIMARY KEY (batch, source, destination));
   INSERT INTO batch_job_v4 (batch, line, source, destination, status, code, message, copied, skipped, seconds, report, updated_at, to_copy, job_id)
     SELECT batch, line, source, destination, CASE WHEN status = 'failed' AND code = 'MM-ABORTED' THEN 'interrupted' ELSE status END,
       code, message, copied, skipped, seconds, report, updated_at, to_copy, job_id FROM batch_job;
   DROP TABLE batch_job;
   ALTER TABLE batch_job_v4 RENAME TO batch_job;`,
  // 5: the console's actions, batch starts, workers, progress samples; paused and cancelled (schema-v5.ts).
  SQLITE_V5,
  // 6: the destination folder's HIGHESTMODSEQ at the last pass, so that a quiet rerun need not
  // read every destination message's flags to learn that none changed.
  // The intents of a folder counted without reading its other rows (every rerun asks).
  `ALTER TABLE folder ADD COLUMN dest_modseq TEXT;
   CREATE INDEX message_intent ON message (folder_id) WHERE state = 'intent';`,
  // 7: daily budgets per account, and when a parked mailbox resumes (budget-ledger.ts).
  SQLITE_V7,
];

export { defaultStatePath } from './paths.js';

/** An open ledger file. */
export class Ledger implements StateStore {
  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {}

  get location(): string {
    return this.file;
  }

  /**
   * Opens (creating when missing) the ledger at `file`, migrating an older schema forward.
   * A file written by a newer version is refused (MM-STATE-VERSION) and left as it is.
   */
  static open(file: string): Ledger {
    let db: Database.Database;
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      createPrivate(file);
      db = new Database(file);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'it is a directory; pass a file path, e.g. --state ' + path.join(file, 'state.db') : (err as Error).message;
      throw new MigrateError(ERROR_CODES.STATE_OPEN, `The state file "${file}" cannot be opened: ${reason}.`, { scope: 'config', cause: err });
    }
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      // A damaged file is refused here, before anything is written, rather than failing mid-run.
      // quick_check reads every page once (about what a full listing of the ledger costs) but
      // skips the index cross-checks of integrity_check.
      const check = db.pragma('quick_check(1)', { simple: true }) as string;
      if (check !== 'ok') throw new Error(`database disk image is malformed: ${check.replace(/\*\*\* in database \w+ \*\*\*\s*/g, '').replace(/\s*\n\s*/g, '; ')}`);
      if (version > SCHEMA_VERSION) {
        throw new MigrateError(
          ERROR_CODES.STATE_VERSION,
          `The state file "${file}" was written by a newer mailmover (schema ${version}; this one knows up to ${SCHEMA_VERSION}). It was left untouched: use that version, or another --state file.`,
          { scope: 'config' },
        );
      }
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a killed process never loses a committed transaction (only a power cut could lose the last ones).
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      if (version < SCHEMA_VERSION) {
        db.transaction(() => {
          for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      }
    } catch (err) {
      db.close();
      if (err instanceof MigrateError) throw err;
      const msg = (err as Error).message;
      const damaged = /malformed|not a database|corrupt/i.test(msg);
      throw new MigrateError(
        ERROR_CODES.STATE_OPEN,
        damaged
          ? `The state file "${file}" is damaged (${msg}). Move it aside (mv "${file}" "${file}.damaged") and run again: the next run plans every folder from both listings, so nothing is copied twice.`
          : `The state file "${file}" cannot be used: ${msg}`,
        { scope: 'config', cause: err },
      );
    }
    return new Ledger(file, db);
  }

  /**
   * Takes the lock of a mailbox (source and destination URLs without passwords) for this process.
   * Refused (MM-STATE-LOCKED) while another live process holds it: in this file under the same
   * names, or anywhere on this machine under any spelling (the lock files of mailbox-lock.ts).
   */
  async lockMailbox(source: string, destination: string): Promise<MailboxState> {
    const files = lockMailboxFiles(await mailboxIdentities(source, destination), `${source} -> ${destination}`);
    try {
      return new MailboxState(this.db, this.lockRow(source, destination), files);
    } catch (err) {
      files.release();
      throw err;
    }
  }

  /** The lock in the mailbox row (which also names the holder for `report`). */
  private lockRow(source: string, destination: string): number {
    const pid = process.pid;
    const host = hostname();
    const id = this.db
      .transaction(() => {
        this.db.prepare('INSERT OR IGNORE INTO mailbox (source, destination) VALUES (?, ?)').run(source, destination);
        const row = this.db.prepare('SELECT id, lock_pid, lock_host, lock_at FROM mailbox WHERE source = ? AND destination = ?').get(source, destination) as {
          id: number;
          lock_pid: number | null;
          lock_host: string | null;
          lock_at: string | null;
        };
        if (row.lock_pid !== null && row.lock_pid !== pid && !(row.lock_host === host && !processAlive(row.lock_pid))) {
          throw new MigrateError(
            ERROR_CODES.STATE_LOCKED,
            `Another mailmover run (pid ${row.lock_pid} on ${row.lock_host}, since ${row.lock_at}) is working on this mailbox (${source} -> ${destination}). Wait for it to finish, or stop it.`,
            { scope: 'config' },
          );
        }
        this.db.prepare('UPDATE mailbox SET lock_pid = ?, lock_host = ?, lock_at = ? WHERE id = ?').run(pid, host, new Date().toISOString(), row.id);
        return row.id;
      })
      .immediate();
    return id;
  }

  /** Every skipped item the ledger holds for a mailbox, for `mailmover report`. */
  skippedItems(source: string, destination: string): LedgerSkip[] {
    return (
      this.db
        .prepare(
          `SELECT f.source_name AS folder, s.source_uid AS sourceUid, s.code, s.reason, s.attempts, s.at
           FROM skipped s JOIN folder f ON f.id = s.folder_id JOIN mailbox m ON m.id = f.mailbox_id
           WHERE m.source = ? AND m.destination = ? ORDER BY f.source_name, s.source_uid`,
        )
        .all(source, destination) as (Omit<LedgerSkip, 'attempts'> & { attempts: number | null })[]
    ).map((r) => ({ ...r, attempts: r.attempts ?? undefined }));
  }

  /** Records the status of one mailbox of a batch. */
  recordJob(batch: string, job: BatchJobRecord): void {
    this.db
      .prepare(
        `INSERT INTO batch_job (batch, line, source, destination, status, code, message, copied, skipped, to_copy, job_id, seconds, report, verdict, runner_pid, runner_host, resume_at, updated_at)
         VALUES (@batch, @line, @source, @destination, @status, @code, @message, @copied, @skipped, @toCopy, @jobId, @seconds, @report, @verdict, @runnerPid, @runnerHost, @resumeAt, @at)
         ON CONFLICT (batch, source, destination) DO UPDATE SET line = excluded.line, status = excluded.status, code = excluded.code,
           message = excluded.message, copied = excluded.copied, skipped = excluded.skipped, to_copy = excluded.to_copy,
           job_id = coalesce(excluded.job_id, batch_job.job_id), seconds = excluded.seconds, report = excluded.report,
           verdict = excluded.verdict, runner_pid = excluded.runner_pid, runner_host = excluded.runner_host, resume_at = excluded.resume_at, updated_at = excluded.updated_at`,
      )
      .run({
        resumeAt: job.resumeAt ?? null,
        batch,
        line: job.line,
        source: job.source,
        destination: job.destination,
        status: job.status,
        code: job.code ?? null,
        message: job.message ?? null,
        copied: job.copied,
        skipped: job.skipped,
        toCopy: job.toCopy ?? null,
        jobId: job.jobId ?? null,
        seconds: job.seconds ?? null,
        report: job.report ?? null,
        verdict: job.verdict ?? null,
        runnerPid: job.runner?.pid ?? null,
        runnerHost: job.runner?.host ?? null,
        at: new Date().toISOString(),
      });
  }

  /** A running mailbox's progress; a no-op once its outcome is recorded. */
  recordProgress(batch: string, source: string, destination: string, p: { copied: number; skipped: number; toCopy: number }): void {
    this.db
      .prepare("UPDATE batch_job SET copied = ?, skipped = ?, to_copy = ?, updated_at = ? WHERE batch = ? AND source = ? AND destination = ? AND status = 'running'")
      .run(p.copied, p.skipped, p.toCopy, new Date().toISOString(), batch, source, destination);
  }

  /** The mailboxes of a batch as last recorded. */
  jobs(batch: string): (BatchJobRecord & { updatedAt: string })[] {
    return (this.db.prepare('SELECT * FROM batch_job WHERE batch = ? ORDER BY line').all(batch) as BatchJobRow[]).map(jobFromRow);
  }

  spendBudget(req: BudgetRequest): BudgetAnswer {
    return sqliteSpend(this.db, req);
  }

  budgetUsage(account: string, direction: 'down' | 'up', windowMs: number, now?: number): { bytes: number; messages: number } {
    return sqliteUsage(this.db, account, direction, windowMs, now);
  }

  /** Per folder: copies recorded, intents left over, skipped items, last complete pass. */
  folders(source: string, destination: string): FolderSummary[] {
    return (
      this.db
        .prepare(
          `SELECT f.source_name AS source, f.dest_name AS destination, f.synced_at AS syncedAt,
             (SELECT count(*) FROM message WHERE folder_id = f.id AND state = 'done') AS copies,
             (SELECT count(*) FROM message WHERE folder_id = f.id AND state = 'intent') AS intents,
             (SELECT count(*) FROM skipped WHERE folder_id = f.id) AS skipped
           FROM folder f JOIN mailbox m ON m.id = f.mailbox_id
           WHERE m.source = ? AND m.destination = ? ORDER BY f.source_name`,
        )
        .all(source, destination) as { source: string; destination: string; copies: number; intents: number; skipped: number; syncedAt: string | null }[]
    ).map((r) => ({ ...r, syncedAt: r.syncedAt ?? undefined }));
  }

  close(): void {
    this.db.close();
  }
}

/** One locked mailbox in the ledger. */
export class MailboxState implements MailboxRecord {
  constructor(
    private readonly db: Database.Database,
    readonly id: number,
    private readonly files: MailboxLock,
  ) {}

  /** The ledger's record of a source folder (created empty when new). */
  folder(sourceName: string, destName: string): FolderState {
    this.db.prepare('INSERT OR IGNORE INTO folder (mailbox_id, source_name, dest_name) VALUES (?, ?, ?)').run(this.id, sourceName, destName);
    const row = this.db.prepare('SELECT id FROM folder WHERE mailbox_id = ? AND source_name = ?').get(this.id, sourceName) as { id: number };
    this.db.prepare('UPDATE folder SET dest_name = ? WHERE id = ?').run(destName, row.id);
    return new FolderState(this.db, row.id);
  }

  /** Gives the lock back. */
  release(): void {
    try {
      this.db.prepare('UPDATE mailbox SET lock_pid = NULL, lock_host = NULL, lock_at = NULL WHERE id = ? AND lock_pid = ?').run(this.id, process.pid);
    } finally {
      this.files.release();
    }
  }
}

/** One folder's rows. Every write is its own transaction. */
export class FolderState implements FolderRecord {
  constructor(
    private readonly db: Database.Database,
    readonly id: number,
  ) {}

  /** The marks of the last complete pass, when there was one and nothing is left half-done. */
  trusted(): FolderMarks | undefined {
    const r = this.db.prepare('SELECT * FROM folder WHERE id = ?').get(this.id) as Record<string, string | number | null>;
    if (r.source_uidvalidity === null || r.dest_uidvalidity === null || r.synced_at === null) return undefined;
    if (this.intents() > 0) return undefined;
    return {
      sourceUidValidity: BigInt(r.source_uidvalidity as string),
      sourceUidNext: r.source_uidnext as number,
      sourceCount: r.source_count as number,
      sourceBytes: r.source_bytes as number,
      sourceModseq: r.source_modseq === null ? undefined : BigInt(r.source_modseq as string),
      destUidValidity: BigInt(r.dest_uidvalidity as string),
      destUidNext: r.dest_uidnext as number,
      destCount: r.dest_count as number,
      destModseq: r.dest_modseq === null || r.dest_modseq === undefined ? undefined : BigInt(r.dest_modseq as string),
    };
  }

  /** Rows written before an APPEND whose answer never came (a killed run). */
  private intents(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM message WHERE folder_id = ? AND state = 'intent'").get(this.id) as { n: number }).n;
  }

  /** Source UIDs skipped by an earlier pass (they are tried again). */
  skippedUids(): number[] {
    return (this.db.prepare('SELECT source_uid AS uid FROM skipped WHERE folder_id = ? ORDER BY source_uid').all(this.id) as { uid: number }[]).map((r) => r.uid);
  }

  /**
   * Forgets the folder's rows, skipped items and marks: the folder is being planned again from
   * both listings, which records what it finds (and a changed UIDVALIDITY makes old UIDs meaningless).
   */
  reset(): void {
    write('reset', () => {
      this.db
        .transaction(() => {
          this.db.prepare('DELETE FROM message WHERE folder_id = ?').run(this.id);
          this.db.prepare('DELETE FROM skipped WHERE folder_id = ?').run(this.id);
          this.db
            .prepare('UPDATE folder SET source_uidvalidity = NULL, source_uidnext = NULL, source_count = NULL, source_bytes = NULL, source_modseq = NULL, dest_uidvalidity = NULL, dest_uidnext = NULL, dest_count = NULL, dest_modseq = NULL, synced_at = NULL WHERE id = ?')
            .run(this.id);
        })
        .immediate();
    });
  }

  /** Records the messages found at both sides by a full plan (source UID -> destination UID). */
  recordPresent(pairs: readonly { source: { uid: number; key: string; size: number; flags: string[] }; destUid: number }[]): void {
    write('recordPresent', () => {
      const put = this.db.prepare("INSERT OR REPLACE INTO message (folder_id, source_uid, dest_uid, key, size, flags, state) VALUES (?, ?, ?, ?, ?, ?, 'done')");
      const unskip = this.db.prepare('DELETE FROM skipped WHERE folder_id = ? AND source_uid = ?');
      this.db
        .transaction(() => {
          for (const p of pairs) {
            put.run(this.id, p.source.uid, p.destUid, p.source.key, p.source.size, p.source.flags.join(' '));
            unskip.run(this.id, p.source.uid);
          }
        })
        .immediate();
    });
  }

  /** Intent: these source messages are about to be appended. */
  intend(items: readonly { uid: number; key: string; size: number; flags: string[] }[]): void {
    write('intend', () => {
      const put = this.db.prepare("INSERT OR REPLACE INTO message (folder_id, source_uid, dest_uid, key, size, flags, state) VALUES (?, ?, NULL, ?, ?, ?, 'intent')");
      this.db.transaction(() => items.forEach((m) => put.run(this.id, m.uid, m.key, m.size, m.flags.join(' ')))).immediate();
    });
  }

  /** Result: `done` arrived (with their destination UIDs when known); `failed` did not. */
  settle(done: readonly { uid: number; destUid: number | undefined }[], failed: readonly number[]): void {
    write('settle', () => {
      const ok = this.db.prepare("UPDATE message SET state = 'done', dest_uid = ? WHERE folder_id = ? AND source_uid = ?");
      const unskip = this.db.prepare('DELETE FROM skipped WHERE folder_id = ? AND source_uid = ?');
      const drop = this.db.prepare("DELETE FROM message WHERE folder_id = ? AND source_uid = ? AND state = 'intent'");
      this.db
        .transaction(() => {
          for (const d of done) {
            ok.run(d.destUid ?? null, this.id, d.uid);
            unskip.run(this.id, d.uid);
          }
          for (const uid of failed) drop.run(this.id, uid);
        })
        .immediate();
    });
  }

  /** The audit trail: a skipped item and why. */
  skip(uid: number, code: string, reason: string, attempts: number | undefined): void {
    write('skip', () => {
      this.db
        .prepare('INSERT OR REPLACE INTO skipped (folder_id, source_uid, code, reason, attempts, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(this.id, uid, code, reason, attempts ?? null, new Date().toISOString());
    });
  }

  /** The marks after a complete pass: from now on a rerun trusts them. */
  markSynced(m: FolderMarks): void {
    write('markSynced', () => {
      this.db
        .prepare('UPDATE folder SET source_uidvalidity = ?, source_uidnext = ?, source_count = ?, source_bytes = ?, source_modseq = ?, dest_uidvalidity = ?, dest_uidnext = ?, dest_count = ?, dest_modseq = ?, synced_at = ? WHERE id = ?')
        .run(
          String(m.sourceUidValidity),
          m.sourceUidNext,
          m.sourceCount,
          m.sourceBytes,
          m.sourceModseq === undefined ? null : String(m.sourceModseq),
          String(m.destUidValidity),
          m.destUidNext,
          m.destCount,
          m.destModseq === undefined ? null : String(m.destModseq),
          new Date().toISOString(),
          this.id,
        );
    });
  }

  /** Marks a pass as not complete (a later run plans the folder in full). */
  unmark(): void {
    this.db.prepare('UPDATE folder SET synced_at = NULL WHERE id = ?').run(this.id);
  }

  /** The copied messages the ledger knows, with the destination UIDVALIDITY they were recorded under. */
  copies(): { destUidValidity: bigint | undefined; rows: LedgerMessage[] } {
    const f = this.db.prepare('SELECT dest_uidvalidity AS v FROM folder WHERE id = ?').get(this.id) as { v: string | null };
    const rows = (
      this.db.prepare("SELECT source_uid, dest_uid, key, size, flags FROM message WHERE folder_id = ? AND state = 'done'").all(this.id) as {
        source_uid: number;
        dest_uid: number | null;
        key: string;
        size: number;
        flags: string;
      }[]
    ).map((r) => ({ sourceUid: r.source_uid, destUid: r.dest_uid ?? undefined, key: r.key, size: r.size, flags: r.flags ? r.flags.split(' ') : [] }));
    return { destUidValidity: f.v === null ? undefined : BigInt(f.v), rows };
  }

  /** Records flags synced to the destination. */
  updateFlags(items: readonly { sourceUid: number; flags: string[] }[]): void {
    write('updateFlags', () => {
      const put = this.db.prepare('UPDATE message SET flags = ? WHERE folder_id = ? AND source_uid = ?');
      this.db.transaction(() => items.forEach((i) => put.run(i.flags.join(' '), this.id, i.sourceUid))).immediate();
    });
  }

  /** Forgets messages removed at both sides. */
  forget(sourceUids: readonly number[]): void {
    write('forget', () => {
      const del = this.db.prepare('DELETE FROM message WHERE folder_id = ? AND source_uid = ?');
      this.db.transaction(() => sourceUids.forEach((u) => del.run(this.id, u))).immediate();
    });
  }
}

/**
 * Creates a missing state file readable by its owner only, whatever the umask: it names
 * mailboxes, servers and folders. SQLite gives its -wal and -shm files the mode of the database
 * file, so they follow. An existing file is left as it is.
 */
function createPrivate(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      if (statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      return;
    }
    throw err;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
