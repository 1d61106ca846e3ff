/**
 * Schema 5 of the ledger (both backends): what the console steers and shows beyond the mailboxes.
 *
 * - `batch_action`: every action taken on a batch (retry, pause, resume, cancel), by whom (the
 *   console's operator name) and when, with how many mailboxes it touched and a note.
 * - `batch_run`: how a batch was started (its list, configuration and report directory), so that
 *   the console can print the exact command that reruns a local batch.
 * - `worker`: one row per `mailmover worker` process, its heartbeat, and the mailboxes it runs.
 * - `progress_sample`: messages and bytes copied since the previous sample of a running mailbox,
 *   written with its progress every few seconds: the batch's throughput over time.
 * - two more mailbox statuses, `paused` and `cancelled`.
 *
 * The SQL lives here, apart from ledger.ts and pg-ledger.ts, which run it as their step 4 -> 5.
 */
import { JOB_STATUSES } from './types.js';

/** The job statuses and verdicts as SQL lists, for the CHECK constraints of both backends. */
export const STATUS_SQL = JOB_STATUSES.map((x) => `'${x}'`).join(', ');
/** The statuses schema 4 allowed (its CHECK, as files of that version have it). */
export const V4_STATUS_SQL = ['not started', 'queued', 'running', 'waiting', 'interrupted', 'complete', 'partial', 'failed'].map((x) => `'${x}'`).join(', ');
export const VERDICT_SQL = ['perfect', 'good', 'investigate', 'poor'].map((x) => `'${x}'`).join(', ');

/** The actions the console records. */
export const ACTIONS = ['retry', 'pause', 'resume', 'cancel'] as const;
export type BatchActionName = (typeof ACTIONS)[number];
const ACTION_SQL = ACTIONS.map((x) => `'${x}'`).join(', ');

/** SQLite: the new tables, and batch_job copied under the wider CHECK (SQLite cannot change one in place). */
export const SQLITE_V5 = `
  CREATE TABLE batch_action (
    id INTEGER PRIMARY KEY,
    batch TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN (${ACTION_SQL})),
    operator TEXT NOT NULL,
    at TEXT NOT NULL,
    mailboxes INTEGER NOT NULL DEFAULT 0,
    note TEXT);
  CREATE INDEX batch_action_batch ON batch_action (batch, id);
  CREATE TABLE batch_run (
    batch TEXT PRIMARY KEY,
    list_file TEXT,
    config_file TEXT,
    report_dir TEXT,
    queued INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL);
  CREATE TABLE worker (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    heartbeat_seconds REAL NOT NULL,
    running TEXT NOT NULL DEFAULT '[]',
    stopped_at TEXT);
  CREATE TABLE progress_sample (
    batch TEXT NOT NULL,
    at TEXT NOT NULL,
    copied INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
  CREATE INDEX progress_sample_batch ON progress_sample (batch, at);
  CREATE TABLE batch_job_v5 (
    batch TEXT NOT NULL,
    line INTEGER NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN (${STATUS_SQL})),
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
  INSERT INTO batch_job_v5 SELECT batch, line, source, destination, status, code, message, copied, skipped, seconds, report, updated_at,
    to_copy, job_id, verdict, runner_pid, runner_host FROM batch_job;
  DROP TABLE batch_job;
  ALTER TABLE batch_job_v5 RENAME TO batch_job;`;

/** PostgreSQL, in the schema `s`. */
export const pgV5 = (s: string): string => `
  CREATE TABLE ${s}.batch_action (
    id BIGSERIAL PRIMARY KEY,
    batch TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN (${ACTION_SQL})),
    operator TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    mailboxes INTEGER NOT NULL DEFAULT 0,
    note TEXT);
  CREATE INDEX batch_action_batch ON ${s}.batch_action (batch, id);
  CREATE TABLE ${s}.batch_run (
    batch TEXT PRIMARY KEY,
    list_file TEXT,
    config_file TEXT,
    report_dir TEXT,
    queued INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL);
  CREATE TABLE ${s}.worker (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    heartbeat_seconds DOUBLE PRECISION NOT NULL,
    running TEXT NOT NULL DEFAULT '[]',
    stopped_at TIMESTAMPTZ);
  CREATE TABLE ${s}.progress_sample (
    batch TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    copied INTEGER NOT NULL,
    bytes BIGINT NOT NULL);
  CREATE INDEX progress_sample_batch ON ${s}.progress_sample (batch, at);
  ALTER TABLE ${s}.batch_job DROP CONSTRAINT IF EXISTS batch_job_status_check;
  ALTER TABLE ${s}.batch_job ADD CONSTRAINT batch_job_status_check CHECK (status IN (${STATUS_SQL}));`;
