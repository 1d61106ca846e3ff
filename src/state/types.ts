/**
 * The ledger's shared types and small helpers, used by the interface (store.ts) and both
 * backends (ledger.ts, pg-ledger.ts). It imports nothing from them, so the three never form an
 * import circle.
 */
import type { Verdict } from '../job/report.js';
import type { BudgetAnswer, BudgetRequest } from './budget-window.js';

/** A value now or later. */
export type Awaitable<T> = T | Promise<T>;

/** Per folder: copies recorded, intents left over, skipped items, last complete pass. */
export interface FolderSummary {
  source: string;
  destination: string;
  copies: number;
  intents: number;
  skipped: number;
  syncedAt: string | undefined;
}

/** An open ledger. */
export interface StateStore {
  /** Where it is, for messages (a file path, or a PostgreSQL URL with any password masked). */
  readonly location: string;
  /**
   * Takes the lock of a mailbox (source and destination named without passwords) for this
   * process. Refused (MM-STATE-LOCKED) while another live run holds it.
   */
  lockMailbox(source: string, destination: string): Awaitable<MailboxRecord>;
  /** Every skipped item recorded for a mailbox, for `mailmover report`. */
  skippedItems(source: string, destination: string): Awaitable<LedgerSkip[]>;
  /** Per folder of a mailbox: what is recorded. */
  folders(source: string, destination: string): Awaitable<FolderSummary[]>;
  /** Records the status of one mailbox of a batch. */
  recordJob(batch: string, job: BatchJobRecord): Awaitable<void>;
  /** A running mailbox's progress (a no-op once its outcome is recorded, so a late update never undoes it). */
  recordProgress(batch: string, source: string, destination: string, progress: { copied: number; skipped: number; toCopy: number }): Awaitable<void>;
  /** The mailboxes of a batch as last recorded, in list order. */
  jobs(batch: string): Awaitable<(BatchJobRecord & { updatedAt: string })[]>;
  /**
   * Daily budgets (README "Daily budgets", state/budget-window.ts): records as spent the prefix of
   * `req.sizes` that every account's budget admits in the rolling window, in one transaction
   * shared by every run and worker of this ledger; says when the next message fits if some did not.
   */
  spendBudget(req: BudgetRequest): Awaitable<BudgetAnswer>;
  /** What an account spent (`down`: downloaded from it; `up`: uploaded to it) in the window ending now (or at `now`). */
  budgetUsage(account: string, direction: 'down' | 'up', windowMs: number, now?: number): Awaitable<{ bytes: number; messages: number }>;
  close(): Awaitable<void>;
}

/** One locked mailbox. */
export interface MailboxRecord {
  /** The record of a source folder (created empty when new). */
  folder(sourceName: string, destName: string): Awaitable<FolderRecord>;
  /** Gives the lock back. */
  release(): Awaitable<void>;
}

/** One folder's rows. Every write is its own transaction. */
export interface FolderRecord {
  /** The marks of the last complete pass, when there was one and nothing is left half-done. */
  trusted(): Awaitable<FolderMarks | undefined>;
  /** Source UIDs skipped by an earlier pass (they are tried again). */
  skippedUids(): Awaitable<number[]>;
  /** Forgets the folder's rows, skipped items and marks (it is being planned again in full). */
  reset(): Awaitable<void>;
  /** Records the messages found at both sides by a full plan (source UID -> destination UID). */
  recordPresent(pairs: readonly { source: { uid: number; key: string; size: number; flags: string[] }; destUid: number }[]): Awaitable<void>;
  /** Intent: these source messages are about to be appended. */
  intend(items: readonly { uid: number; key: string; size: number; flags: string[] }[]): Awaitable<void>;
  /** Result: `done` arrived (with their destination UIDs when known); `failed` did not. */
  settle(done: readonly { uid: number; destUid: number | undefined }[], failed: readonly number[]): Awaitable<void>;
  /** The audit trail: a skipped item and why. */
  skip(uid: number, code: string, reason: string, attempts: number | undefined): Awaitable<void>;
  /** The marks after a complete pass: from now on a rerun trusts them. */
  markSynced(m: FolderMarks): Awaitable<void>;
  /** Marks a pass as not complete (a later run plans the folder in full). */
  unmark(): Awaitable<void>;
  /** The copied messages recorded, with the destination UIDVALIDITY they were recorded under. */
  copies(): Awaitable<{ destUidValidity: bigint | undefined; rows: LedgerMessage[] }>;
  /** Records flags synced to the destination. */
  updateFlags(items: readonly { sourceUid: number; flags: string[] }[]): Awaitable<void>;
  /** Forgets messages removed at both sides. */
  forget(sourceUids: readonly number[]): Awaitable<void>;
}

/** True when `location` names a PostgreSQL database rather than a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** A PostgreSQL URL (or a text holding some) as it may be shown: every password masked. */
export function maskUrl(text: string): string {
  return text.replace(/\/\/([^:@/\s]*):[^@/\s]*@/g, '//$1:***@');
}

/** What the ledger knows of a folder after its last complete pass. */
export interface FolderMarks {
  sourceUidValidity: bigint;
  sourceUidNext: number;
  sourceCount: number;
  sourceBytes: number;
  /** CONDSTORE: the source folder's HIGHESTMODSEQ at the last pass, when it has one. */
  sourceModseq: bigint | undefined;
  destUidValidity: bigint;
  destUidNext: number;
  destCount: number;
  /** CONDSTORE: the destination folder's HIGHESTMODSEQ at the end of the last pass, when it has one. */
  destModseq?: bigint | undefined;
}

/** A message row. */
export interface LedgerMessage {
  sourceUid: number;
  destUid: number | undefined;
  key: string;
  size: number;
  flags: string[];
}

/**
 * What became of one mailbox of a batch (README "Batches"): `not started` (the batch has not
 * reached it), `queued` (its job waits for a worker), `running`, `waiting` (parked until
 * `resumeAt`: a daily budget is spent or the provider said its limit is reached; or, in a queued
 * batch, its job is back in the queue for a retry after its worker stopped, died or failed), `interrupted` (stopped
 * by Ctrl-C or SIGTERM, or its process was killed: a rerun resumes it), `complete`, `partial`
 * (some items skipped) or `failed`; a queued batch's mailbox may also be `paused` (its job held
 * back until the batch is resumed) or `cancelled` (its job taken out of the queue), by the console.
 */
export type JobStatus = 'not started' | 'queued' | 'running' | 'waiting' | 'paused' | 'interrupted' | 'complete' | 'partial' | 'failed' | 'cancelled';

/** Every job status, in the order `batch status` counts them. */
export const JOB_STATUSES: readonly JobStatus[] = ['not started', 'queued', 'running', 'waiting', 'paused', 'interrupted', 'complete', 'partial', 'failed', 'cancelled'];

/** A mailbox's consistency verdict (src/job/report.ts verdictOf). */
export type JobVerdict = Verdict;

/** One mailbox of a batch as the ledger keeps it. */
export interface BatchJobRecord {
  line: number;
  source: string;
  destination: string;
  status: JobStatus;
  /** Set once the mailbox ran to an end (complete, partial or failed): the verdict of its report; `poor` when it failed. */
  verdict?: JobVerdict;
  /** While running: the process working on it (for `batch status` to see that it is gone). */
  runner?: { pid: number; host: string };
  code?: string;
  message?: string;
  copied: number;
  skipped: number;
  /** While running: the messages found missing so far (grows as folders are read). */
  toCopy?: number;
  /** A queued batch: the mailbox's job in the queue (kept once set). */
  jobId?: string;
  seconds?: number;
  /** The mailbox's report file. */
  report?: string;
  /** A `waiting` (parked) mailbox: when it may go on (ISO time). */
  resumeAt?: string;
}

/** A batch_job row as both backends return it (PostgreSQL gives the time as a Date). */
export interface BatchJobRow {
  line: number;
  source: string;
  destination: string;
  status: BatchJobRecord['status'];
  code: string | null;
  message: string | null;
  copied: number;
  skipped: number;
  seconds: number | null;
  report: string | null;
  to_copy: number | null;
  job_id: string | null;
  verdict: JobVerdict | null;
  runner_pid: number | null;
  runner_host: string | null;
  /** Schema 7; absent when read through an older view. */
  resume_at?: string | Date | null;
  updated_at: string | Date;
}

/** A batch_job row as a record. */
export function jobFromRow(r: BatchJobRow): BatchJobRecord & { updatedAt: string } {
  return {
    line: r.line,
    source: r.source,
    destination: r.destination,
    status: r.status,
    ...(r.code ? { code: r.code } : {}),
    ...(r.message ? { message: r.message } : {}),
    copied: r.copied,
    skipped: r.skipped,
    ...(r.seconds !== null ? { seconds: r.seconds } : {}),
    ...(r.report ? { report: r.report } : {}),
    ...(r.to_copy !== null && r.to_copy !== undefined ? { toCopy: r.to_copy } : {}),
    ...(r.job_id ? { jobId: r.job_id } : {}),
    ...(r.verdict ? { verdict: r.verdict } : {}),
    ...(r.runner_pid !== null && r.runner_pid !== undefined && r.runner_host ? { runner: { pid: r.runner_pid, host: r.runner_host } } : {}),
    ...(r.resume_at ? { resumeAt: r.resume_at instanceof Date ? r.resume_at.toISOString() : r.resume_at } : {}),
    updatedAt: r.updated_at instanceof Date ? r.updated_at.toISOString() : r.updated_at,
  };
}

/** A skipped item as the ledger keeps it. */
export interface LedgerSkip {
  folder: string;
  sourceUid: number;
  code: string;
  reason: string;
  attempts: number | undefined;
  at: string;
}

