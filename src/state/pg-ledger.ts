/**
 * The state ledger in PostgreSQL (pg): the same records and crash-safety rules as the SQLite
 * file (src/state/ledger.ts), shared by every worker of a queue, on any number of machines. A
 * mailbox whose worker died is taken up by another worker that finds what the first one recorded:
 * its retry is incremental, and the dead worker's intents make the folders it was writing be
 * planned again from both listings (content identity), so nothing is appended twice.
 *
 * - Tables live in the schema `mailmover_state`, versioned by `mailmover_state.schema_version`
 *   and migrated forward in one transaction under an advisory lock (workers starting together on
 *   a fresh database do not race). A database written by a newer mailmover is refused untouched.
 * - The mailbox lock is a session advisory lock held on a connection of its own for the whole
 *   run: a run that dies loses its connection and so its lock, on whatever machine it ran. The
 *   row also names the holder (pid and host) for the message a second run gets.
 * - Every write is one transaction; batches of rows go as arrays (unnest), one round trip each.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { writeAsync } from './checkpoint.js';
import { SCHEMA_VERSION } from './ledger.js';
import { pgV5, V4_STATUS_SQL, VERDICT_SQL } from './schema-v5.js';
import { pgSpend, pgUsage, pgV7 } from './budget-ledger.js';
import type { BudgetAnswer, BudgetRequest } from './budget-window.js';
import { mailboxIdentities } from './mailbox-key.js';
import { lockMailboxFiles, type MailboxLock } from './mailbox-lock.js';
import { jobFromRow, maskUrl, type BatchJobRecord, type BatchJobRow, type FolderMarks, type FolderRecord, type FolderSummary, type LedgerMessage, type LedgerSkip, type MailboxRecord, type StateStore } from './types.js';

const SCHEMA = 'mailmover_state';

/** Each step takes the schema from version i to i+1 (versions match the SQLite file's; exported for the migration tests). */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE ${SCHEMA}.mailbox (
     id BIGSERIAL PRIMARY KEY,
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     lock_pid INTEGER,
     lock_host TEXT,
     lock_at TIMESTAMPTZ,
     UNIQUE (source, destination));
   CREATE TABLE ${SCHEMA}.folder (
     id BIGSERIAL PRIMARY KEY,
     mailbox_id BIGINT NOT NULL REFERENCES ${SCHEMA}.mailbox(id) ON DELETE CASCADE,
     source_name TEXT NOT NULL,
     dest_name TEXT NOT NULL,
     source_uidvalidity TEXT,
     source_uidnext BIGINT,
     source_count BIGINT,
     source_bytes BIGINT,
     source_modseq TEXT,
     dest_uidvalidity TEXT,
     dest_uidnext BIGINT,
     dest_count BIGINT,
     synced_at TIMESTAMPTZ,
     UNIQUE (mailbox_id, source_name));
   CREATE TABLE ${SCHEMA}.message (
     folder_id BIGINT NOT NULL REFERENCES ${SCHEMA}.folder(id) ON DELETE CASCADE,
     source_uid BIGINT NOT NULL,
     dest_uid BIGINT,
     key TEXT NOT NULL,
     size BIGINT NOT NULL,
     flags TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('intent', 'done')),
     PRIMARY KEY (folder_id, source_uid));
   CREATE TABLE ${SCHEMA}.skipped (
     folder_id BIGINT NOT NULL REFERENCES ${SCHEMA}.folder(id) ON DELETE CASCADE,
     source_uid BIGINT NOT NULL,
     code TEXT NOT NULL,
     reason TEXT NOT NULL,
     attempts INTEGER,
     at TIMESTAMPTZ NOT NULL,
     PRIMARY KEY (folder_id, source_uid));`,
  `CREATE TABLE ${SCHEMA}.batch_job (
     batch TEXT NOT NULL,
     line INTEGER NOT NULL,
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')),
     code TEXT,
     message TEXT,
     copied INTEGER NOT NULL DEFAULT 0,
     skipped INTEGER NOT NULL DEFAULT 0,
     seconds DOUBLE PRECISION,
     report TEXT,
     updated_at TIMESTAMPTZ NOT NULL,
     PRIMARY KEY (batch, source, destination));`,
  `ALTER TABLE ${SCHEMA}.batch_job ADD COLUMN to_copy INTEGER;
   ALTER TABLE ${SCHEMA}.batch_job ADD COLUMN job_id TEXT;`,
  // 4: as in the SQLite file: every status, the verdict, the process running a mailbox; rows
  // recorded failed MM-ABORTED were stopped, not failed.
  `ALTER TABLE ${SCHEMA}.batch_job DROP CONSTRAINT IF EXISTS batch_job_status_check;
   UPDATE ${SCHEMA}.batch_job SET status = 'interrupted' WHERE status = 'failed' AND code = 'MM-ABORTED';
   ALTER TABLE ${SCHEMA}.batch_job ADD CONSTRAINT batch_job_status_check CHECK (status IN (${V4_STATUS_SQL}));
   ALTER TABLE ${SCHEMA}.batch_job ADD COLUMN verdict TEXT CHECK (verdict IN (${VERDICT_SQL}));
   ALTER TABLE ${SCHEMA}.batch_job ADD COLUMN runner_pid INTEGER;
   ALTER TABLE ${SCHEMA}.batch_job ADD COLUMN runner_host TEXT;`,
  // 5: the console's actions, batch starts, workers, progress samples; paused and cancelled (schema-v5.ts).
  pgV5(SCHEMA),
  // 6: the destination folder's HIGHESTMODSEQ at the last pass (see ledger.ts).
  `ALTER TABLE ${SCHEMA}.folder ADD COLUMN IF NOT EXISTS dest_modseq TEXT;
   CREATE INDEX IF NOT EXISTS message_intent ON ${SCHEMA}.message (folder_id) WHERE state = 'intent';`,
  // 7: daily budgets per account, and when a parked mailbox resumes (budget-ledger.ts).
  pgV7(SCHEMA),
];

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** PostgreSQL's answers that mean "another process was creating the same thing at the same time". */
const RACING = new Set(['40P01', '23505', '42P07', '42710', '42P06']);

/** The ledger in a PostgreSQL database. */
export class PgLedger implements StateStore {
  private constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
  ) {}

  get location(): string {
    return maskUrl(this.url);
  }

  /** Connects, creates or migrates the schema; refuses (MM-STATE-VERSION) a newer one. */
  static async open(url: string): Promise<PgLedger> {
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    // An idle client's connection dropping must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await migrate(pool, url);
          break;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (!(code && RACING.has(code) && attempt < 8)) throw err;
          await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100));
        }
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof MigrateError) throw err;
      throw new MigrateError(ERROR_CODES.STATE_OPEN, `The state database ${maskUrl(url)} cannot be used: ${maskUrl((err as Error).message)}`, { scope: 'config', cause: err });
    }
    return new PgLedger(url, pool);
  }

  /**
   * Takes the mailbox's lock: session advisory locks on a connection of its own, one for the
   * ledger row and one per identity of the mailbox (mailbox-key.ts), so that two workers on any
   * machines never copy one mailbox at once however it is spelled; and this machine's lock files
   * (mailbox-lock.ts), which also see runs with other state files.
   */
  async lockMailbox(source: string, destination: string): Promise<MailboxRecord> {
    const identities = await mailboxIdentities(source, destination);
    const files = lockMailboxFiles(identities, `${source} -> ${destination}`, process.env, { bestEffort: true });
    try {
      return await this.lockRow(source, destination, identities, files);
    } catch (err) {
      files.release();
      throw err;
    }
  }

  private async lockRow(source: string, destination: string, identities: string[], files: MailboxLock): Promise<MailboxRecord> {
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO ${SCHEMA}.mailbox (source, destination) VALUES ($1, $2)
       ON CONFLICT (source, destination) DO UPDATE SET source = EXCLUDED.source RETURNING id`,
      [source, destination],
    );
    const id = rows[0]!.id;
    // The lock's own connection: held for the run, gone (and the lock with it) if the run dies.
    const client = new pg.Client({ connectionString: this.url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [`mailmover-ledger\n${id}`]);
      // Every identity is tried (bool_and does not stop early); on refusal the session is ended,
      // which gives back whatever was taken.
      const same = got.rows[0]?.ok
        ? await client.query<{ ok: boolean }>("SELECT bool_and(pg_try_advisory_lock(hashtextextended('mailmover-mailbox' || chr(10) || k, 0))) AS ok FROM unnest($1::text[]) AS k", [identities])
        : undefined;
      if (same && !same.rows[0]?.ok) {
        throw new MigrateError(
          ERROR_CODES.STATE_LOCKED,
          `Another mailmover run is working on this mailbox (${source} -> ${destination}) under another spelling (runs are told apart by server address, port and user). Wait for it to finish, or stop it.`,
          { scope: 'config' },
        );
      }
      if (!got.rows[0]?.ok) {
        const holder = await this.pool.query<{ lock_pid: number | null; lock_host: string | null; lock_at: Date | null }>(`SELECT lock_pid, lock_host, lock_at FROM ${SCHEMA}.mailbox WHERE id = $1`, [id]);
        const h = holder.rows[0];
        throw new MigrateError(
          ERROR_CODES.STATE_LOCKED,
          `Another mailmover run (${h?.lock_pid ? `pid ${h.lock_pid} on ${h.lock_host}, since ${h.lock_at?.toISOString()}` : 'on another machine'}) is working on this mailbox (${source} -> ${destination}). Wait for it to finish, or stop it.`,
          { scope: 'config' },
        );
      }
      await client.query(`UPDATE ${SCHEMA}.mailbox SET lock_pid = $1, lock_host = $2, lock_at = now() WHERE id = $3`, [process.pid, hostname(), id]);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (err instanceof MigrateError) throw err;
      throw new MigrateError(ERROR_CODES.STATE_OPEN, `The state database ${this.location} cannot be used: ${maskUrl((err as Error).message)}`, { scope: 'config', cause: err });
    }
    return new PgMailbox(this.pool, client, id, files);
  }

  async skippedItems(source: string, destination: string): Promise<LedgerSkip[]> {
    const { rows } = await this.pool.query<{ folder: string; source_uid: string; code: string; reason: string; attempts: number | null; at: Date }>(
      `SELECT f.source_name AS folder, s.source_uid, s.code, s.reason, s.attempts, s.at
       FROM ${SCHEMA}.skipped s JOIN ${SCHEMA}.folder f ON f.id = s.folder_id JOIN ${SCHEMA}.mailbox m ON m.id = f.mailbox_id
       WHERE m.source = $1 AND m.destination = $2 ORDER BY f.source_name, s.source_uid`,
      [source, destination],
    );
    return rows.map((r) => ({ folder: r.folder, sourceUid: Number(r.source_uid), code: r.code, reason: r.reason, attempts: r.attempts ?? undefined, at: r.at.toISOString() }));
  }

  async folders(source: string, destination: string): Promise<FolderSummary[]> {
    const { rows } = await this.pool.query<{ source: string; destination: string; synced_at: Date | null; copies: string; intents: string; skipped: string }>(
      `SELECT f.source_name AS source, f.dest_name AS destination, f.synced_at,
         (SELECT count(*) FROM ${SCHEMA}.message WHERE folder_id = f.id AND state = 'done') AS copies,
         (SELECT count(*) FROM ${SCHEMA}.message WHERE folder_id = f.id AND state = 'intent') AS intents,
         (SELECT count(*) FROM ${SCHEMA}.skipped WHERE folder_id = f.id) AS skipped
       FROM ${SCHEMA}.folder f JOIN ${SCHEMA}.mailbox m ON m.id = f.mailbox_id
       WHERE m.source = $1 AND m.destination = $2 ORDER BY f.source_name`,
      [source, destination],
    );
    return rows.map((r) => ({ source: r.source, destination: r.destination, copies: Number(r.copies), intents: Number(r.intents), skipped: Number(r.skipped), syncedAt: r.synced_at?.toISOString() }));
  }

  async recordJob(batch: string, job: BatchJobRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${SCHEMA}.batch_job AS b (batch, line, source, destination, status, code, message, copied, skipped, seconds, report, to_copy, job_id, verdict, runner_pid, runner_host, resume_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
       ON CONFLICT (batch, source, destination) DO UPDATE SET line = EXCLUDED.line, status = EXCLUDED.status, code = EXCLUDED.code,
         message = EXCLUDED.message, copied = EXCLUDED.copied, skipped = EXCLUDED.skipped, seconds = EXCLUDED.seconds,
         report = EXCLUDED.report, to_copy = EXCLUDED.to_copy, job_id = coalesce(EXCLUDED.job_id, b.job_id), verdict = EXCLUDED.verdict,
         runner_pid = EXCLUDED.runner_pid, runner_host = EXCLUDED.runner_host, resume_at = EXCLUDED.resume_at, updated_at = EXCLUDED.updated_at`,
      [batch, job.line, job.source, job.destination, job.status, job.code ?? null, job.message ?? null, job.copied, job.skipped, job.seconds ?? null, job.report ?? null, job.toCopy ?? null, job.jobId ?? null, job.verdict ?? null, job.runner?.pid ?? null, job.runner?.host ?? null, job.resumeAt ?? null],
    );
  }

  async recordProgress(batch: string, source: string, destination: string, p: { copied: number; skipped: number; toCopy: number }): Promise<void> {
    await this.pool.query(
      `UPDATE ${SCHEMA}.batch_job SET copied = $4, skipped = $5, to_copy = $6, updated_at = now() WHERE batch = $1 AND source = $2 AND destination = $3 AND status = 'running'`,
      [batch, source, destination, p.copied, p.skipped, p.toCopy],
    );
  }

  async jobs(batch: string): Promise<(BatchJobRecord & { updatedAt: string })[]> {
    const { rows } = await this.pool.query<BatchJobRow>(`SELECT * FROM ${SCHEMA}.batch_job WHERE batch = $1 ORDER BY line`, [batch]);
    return rows.map(jobFromRow);
  }

  spendBudget(req: BudgetRequest): Promise<BudgetAnswer> {
    return pgSpend(this.pool, SCHEMA, req);
  }

  budgetUsage(account: string, direction: 'down' | 'up', windowMs: number, now?: number): Promise<{ bytes: number; messages: number }> {
    return pgUsage(this.pool, SCHEMA, account, direction, windowMs, now);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Creates the schema, or migrates it forward; all in one transaction under an advisory lock. */
async function migrate(pool: pg.Pool, url: string): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('mailmover-state-schema', 0))");
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA}.schema_version (version INTEGER NOT NULL)`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${SCHEMA}.schema_version`);
    const version = rows[0]?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new MigrateError(
        ERROR_CODES.STATE_VERSION,
        `The state database ${maskUrl(url)} was written by a newer mailmover (schema ${version}; this one knows up to ${SCHEMA_VERSION}). It was left untouched: use that version, or another --state database.`,
        { scope: 'config' },
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) await client.query(PG_MIGRATIONS[v]!);
    if (version < SCHEMA_VERSION) {
      await client.query(`DELETE FROM ${SCHEMA}.schema_version`);
      await client.query(`INSERT INTO ${SCHEMA}.schema_version (version) VALUES ($1)`, [SCHEMA_VERSION]);
    }
  });
}

/**
 * Runs `fn` in one transaction on a pooled connection. A checked-out client whose connection
 * drops emits 'error' on itself (the pool only listens to idle ones): it is listened to here, so
 * the failure arrives as the rejected query, and the broken client is destroyed, not pooled again.
 */
async function transaction<T>(pool: pg.Pool, fn: (c: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const onError = () => undefined;
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    broken = err as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

class PgMailbox implements MailboxRecord {
  constructor(
    private readonly pool: pg.Pool,
    private readonly lockClient: pg.Client,
    private readonly id: string,
    private readonly files: MailboxLock,
  ) {}

  async folder(sourceName: string, destName: string): Promise<FolderRecord> {
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO ${SCHEMA}.folder (mailbox_id, source_name, dest_name) VALUES ($1, $2, $3)
       ON CONFLICT (mailbox_id, source_name) DO UPDATE SET dest_name = EXCLUDED.dest_name RETURNING id`,
      [this.id, sourceName, destName],
    );
    return new PgFolder(this.pool, rows[0]!.id);
  }

  async release(): Promise<void> {
    try {
      await this.lockClient.query(`UPDATE ${SCHEMA}.mailbox SET lock_pid = NULL, lock_host = NULL, lock_at = NULL WHERE id = $1`, [this.id]);
    } finally {
      // Ending the session gives the advisory locks back.
      await this.lockClient.end().catch(() => undefined);
      this.files.release();
    }
  }
}

class PgFolder implements FolderRecord {
  constructor(
    private readonly pool: pg.Pool,
    private readonly id: string,
  ) {}

  async trusted(): Promise<FolderMarks | undefined> {
    const { rows } = await this.pool.query<Record<string, string | null>>(
      `SELECT f.*, (SELECT count(*) FROM ${SCHEMA}.message WHERE folder_id = f.id AND state = 'intent') AS intents FROM ${SCHEMA}.folder f WHERE id = $1`,
      [this.id],
    );
    const r = rows[0]!;
    if (r.source_uidvalidity === null || r.dest_uidvalidity === null || r.synced_at === null || Number(r.intents) > 0) return undefined;
    return {
      sourceUidValidity: BigInt(r.source_uidvalidity!),
      sourceUidNext: Number(r.source_uidnext),
      sourceCount: Number(r.source_count),
      sourceBytes: Number(r.source_bytes),
      sourceModseq: r.source_modseq === null ? undefined : BigInt(r.source_modseq!),
      destUidValidity: BigInt(r.dest_uidvalidity!),
      destUidNext: Number(r.dest_uidnext),
      destCount: Number(r.dest_count),
      destModseq: r.dest_modseq === null || r.dest_modseq === undefined ? undefined : BigInt(r.dest_modseq),
    };
  }


  async skippedUids(): Promise<number[]> {
    const { rows } = await this.pool.query<{ uid: string }>(`SELECT source_uid AS uid FROM ${SCHEMA}.skipped WHERE folder_id = $1 ORDER BY source_uid`, [this.id]);
    return rows.map((r) => Number(r.uid));
  }

  reset(): Promise<void> {
    return writeAsync('reset', () =>
      transaction(this.pool, async (c) => {
        await c.query(`DELETE FROM ${SCHEMA}.message WHERE folder_id = $1`, [this.id]);
        await c.query(`DELETE FROM ${SCHEMA}.skipped WHERE folder_id = $1`, [this.id]);
        await c.query(
          `UPDATE ${SCHEMA}.folder SET source_uidvalidity = NULL, source_uidnext = NULL, source_count = NULL, source_bytes = NULL, source_modseq = NULL,
             dest_uidvalidity = NULL, dest_uidnext = NULL, dest_count = NULL, dest_modseq = NULL, synced_at = NULL WHERE id = $1`,
          [this.id],
        );
      }),
    );
  }

  recordPresent(pairs: readonly { source: { uid: number; key: string; size: number; flags: string[] }; destUid: number }[]): Promise<void> {
    return writeAsync('recordPresent', () =>
      transaction(this.pool, async (c) => {
        if (pairs.length === 0) return;
        const uids = pairs.map((p) => p.source.uid);
        await c.query(
          `INSERT INTO ${SCHEMA}.message (folder_id, source_uid, dest_uid, key, size, flags, state)
           SELECT $1, u, d, k, s, f, 'done' FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS t(u, d, k, s, f)
           ON CONFLICT (folder_id, source_uid) DO UPDATE SET dest_uid = EXCLUDED.dest_uid, key = EXCLUDED.key, size = EXCLUDED.size, flags = EXCLUDED.flags, state = 'done'`,
          [this.id, uids, pairs.map((p) => p.destUid), pairs.map((p) => p.source.key), pairs.map((p) => p.source.size), pairs.map((p) => p.source.flags.join(' '))],
        );
        await c.query(`DELETE FROM ${SCHEMA}.skipped WHERE folder_id = $1 AND source_uid = ANY($2::bigint[])`, [this.id, uids]);
      }),
    );
  }

  intend(items: readonly { uid: number; key: string; size: number; flags: string[] }[]): Promise<void> {
    return writeAsync('intend', async () => {
      if (items.length === 0) return;
      await this.pool.query(
        `INSERT INTO ${SCHEMA}.message (folder_id, source_uid, dest_uid, key, size, flags, state)
         SELECT $1, u, NULL, k, s, f, 'intent' FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[]) AS t(u, k, s, f)
         ON CONFLICT (folder_id, source_uid) DO UPDATE SET dest_uid = NULL, key = EXCLUDED.key, size = EXCLUDED.size, flags = EXCLUDED.flags, state = 'intent'`,
        [this.id, items.map((m) => m.uid), items.map((m) => m.key), items.map((m) => m.size), items.map((m) => m.flags.join(' '))],
      );
    });
  }

  settle(done: readonly { uid: number; destUid: number | undefined }[], failed: readonly number[]): Promise<void> {
    return writeAsync('settle', () =>
      transaction(this.pool, async (c) => {
        if (done.length > 0) {
          await c.query(
            `UPDATE ${SCHEMA}.message m SET state = 'done', dest_uid = t.d FROM unnest($2::bigint[], $3::bigint[]) AS t(u, d)
             WHERE m.folder_id = $1 AND m.source_uid = t.u`,
            [this.id, done.map((d) => d.uid), done.map((d) => d.destUid ?? null)],
          );
          await c.query(`DELETE FROM ${SCHEMA}.skipped WHERE folder_id = $1 AND source_uid = ANY($2::bigint[])`, [this.id, done.map((d) => d.uid)]);
        }
        if (failed.length > 0) {
          await c.query(`DELETE FROM ${SCHEMA}.message WHERE folder_id = $1 AND state = 'intent' AND source_uid = ANY($2::bigint[])`, [this.id, [...failed]]);
        }
      }),
    );
  }

  skip(uid: number, code: string, reason: string, attempts: number | undefined): Promise<void> {
    return writeAsync('skip', async () => {
      await this.pool.query(
        `INSERT INTO ${SCHEMA}.skipped (folder_id, source_uid, code, reason, attempts, at) VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (folder_id, source_uid) DO UPDATE SET code = EXCLUDED.code, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, at = EXCLUDED.at`,
        [this.id, uid, code, reason, attempts ?? null],
      );
    });
  }

  markSynced(m: FolderMarks): Promise<void> {
    return writeAsync('markSynced', async () => {
      await this.pool.query(
        `UPDATE ${SCHEMA}.folder SET source_uidvalidity = $1, source_uidnext = $2, source_count = $3, source_bytes = $4, source_modseq = $5,
           dest_uidvalidity = $6, dest_uidnext = $7, dest_count = $8, dest_modseq = $9, synced_at = now() WHERE id = $10`,
        [String(m.sourceUidValidity), m.sourceUidNext, m.sourceCount, m.sourceBytes, m.sourceModseq === undefined ? null : String(m.sourceModseq), String(m.destUidValidity), m.destUidNext, m.destCount, m.destModseq === undefined ? null : String(m.destModseq), this.id],
      );
    });
  }

  async unmark(): Promise<void> {
    await this.pool.query(`UPDATE ${SCHEMA}.folder SET synced_at = NULL WHERE id = $1`, [this.id]);
  }

  async copies(): Promise<{ destUidValidity: bigint | undefined; rows: LedgerMessage[] }> {
    const [f, m] = await Promise.all([
      this.pool.query<{ v: string | null }>(`SELECT dest_uidvalidity AS v FROM ${SCHEMA}.folder WHERE id = $1`, [this.id]),
      this.pool.query<{ source_uid: string; dest_uid: string | null; key: string; size: string; flags: string }>(
        `SELECT source_uid, dest_uid, key, size, flags FROM ${SCHEMA}.message WHERE folder_id = $1 AND state = 'done'`,
        [this.id],
      ),
    ]);
    const v = f.rows[0]?.v ?? null;
    return {
      destUidValidity: v === null ? undefined : BigInt(v),
      rows: m.rows.map((r) => ({ sourceUid: Number(r.source_uid), destUid: r.dest_uid === null ? undefined : Number(r.dest_uid), key: r.key, size: Number(r.size), flags: r.flags ? r.flags.split(' ') : [] })),
    };
  }

  updateFlags(items: readonly { sourceUid: number; flags: string[] }[]): Promise<void> {
    return writeAsync('updateFlags', async () => {
      if (items.length === 0) return;
      await this.pool.query(
        `UPDATE ${SCHEMA}.message m SET flags = t.f FROM unnest($2::bigint[], $3::text[]) AS t(u, f) WHERE m.folder_id = $1 AND m.source_uid = t.u`,
        [this.id, items.map((i) => i.sourceUid), items.map((i) => i.flags.join(' '))],
      );
    });
  }

  forget(sourceUids: readonly number[]): Promise<void> {
    return writeAsync('forget', async () => {
      if (sourceUids.length === 0) return;
      await this.pool.query(`DELETE FROM ${SCHEMA}.message WHERE folder_id = $1 AND source_uid = ANY($2::bigint[])`, [this.id, [...sourceUids]]);
    });
  }
}
