/**
 * `mailmover batch status`: every row of a mailbox list with what became of it, from the ledger
 * the batch recorded its statuses in. A row the ledger does not hold is `not started`; a row
 * recorded `running` whose process is gone is `interrupted`, and in a queued batch a job that
 * pg-boss holds for a retry is `waiting` (see {@link JobProbe}). A list whose batch the ledger
 * does not hold at all is refused (MM-BATCH-UNKNOWN), never shown as an empty batch.
 */
import { hostname } from 'node:os';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { worstVerdict, type Verdict } from '../job/report.js';
import type { StateStore } from '../state/store.js';
import { JOB_STATUSES, type BatchJobRecord, type JobStatus } from '../state/types.js';
import type { MailboxList } from './mailbox-list.js';
import { processAlive } from '../core/process-alive.js';

/** One row of the list and its status. */
export interface MailboxStatus extends Partial<Omit<BatchJobRecord, 'line' | 'status' | 'runner'>> {
  line: number;
  sourceUser: string;
  destinationUser: string;
  status: JobStatus;
  /** Why the status differs from what the ledger recorded (a process that is gone, a job held for a retry). */
  note?: string;
  updatedAt?: string;
}

/** The status of a whole batch. */
export interface BatchStatus {
  batch: string;
  /** The ledger read (a file path, or a PostgreSQL URL with any password masked). */
  ledger: string;
  /** Mailboxes per status, every status present (0 when none). */
  counts: Record<JobStatus, number>;
  /** The worst verdict of the mailboxes; absent while some mailbox has none (it did not run to an end). */
  verdict?: Verdict;
  mailboxes: MailboxStatus[];
  /** Mailboxes the ledger holds for this batch that are not in the list (it was edited since). */
  notInList: number;
}

/** What a queue knows of a mailbox's job, for a queued batch (src/batch/queue.ts queueProbe). */
export interface JobProbe {
  /** pg-boss's state of the job: created, retry, active, completed, cancelled, failed; undefined when it has none. */
  jobState(id: string): Promise<string | undefined>;
  /** Whether a worker holds the mailbox's lock now (a live worker works on it). */
  lockHeld(source: string, destination: string): Promise<boolean>;
}

/** Every row of `list` with its status in `ledger` under the batch `name`. */
export async function batchStatus(list: MailboxList, name: string, ledger: StateStore, probe?: JobProbe): Promise<BatchStatus> {
  const recorded = await ledger.jobs(name);
  if (recorded.length === 0) {
    throw new MigrateError(
      ERROR_CODES.BATCH_UNKNOWN,
      `The ledger ${ledger.location} holds no batch named "${name}". Pass the ledger the batch was run with (--state FILE, or --queue URL for a queued batch), or --name NAME if it was run under another name.`,
      { scope: 'config' },
    );
  }
  const used = new Set<BatchJobRecord>();
  const mailboxes: MailboxStatus[] = [];
  for (const row of list.rows) {
    // Rows are keyed by their users (the ledger names mailboxes by URL); the same line is preferred.
    const mine = recorded.filter((j) => !used.has(j) && userOf(j.source) === row.sourceUser && userOf(j.destination) === row.destinationUser);
    const job = mine.find((j) => j.line === row.line) ?? mine[0];
    if (!job) {
      mailboxes.push({ line: row.line, sourceUser: row.sourceUser, destinationUser: row.destinationUser, status: 'not started' });
      continue;
    }
    used.add(job);
    const { runner: _runner, line: _line, ...rest } = job;
    mailboxes.push({ ...rest, line: row.line, sourceUser: row.sourceUser, destinationUser: row.destinationUser, ...(await liveStatus(job, probe)) });
  }
  const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, mailboxes.filter((m) => m.status === s).length])) as Record<JobStatus, number>;
  const verdict = worstVerdict(mailboxes.map((m) => m.verdict ?? (m.status === 'failed' ? 'poor' : undefined)));
  return { batch: name, ledger: ledger.location, counts, ...(verdict ? { verdict } : {}), mailboxes, notInList: recorded.length - used.size };
}

/**
 * The status of a recorded row as it is now. The ledger says what the process working on a
 * mailbox last wrote; a process killed (SIGKILL, a crash, a lost machine) writes nothing more,
 * so `running` is checked against what can be known: the process itself when it ran on this
 * machine, the worker's lock and pg-boss's job for a queued batch.
 */
async function liveStatus(job: BatchJobRecord, probe: JobProbe | undefined): Promise<{ status: JobStatus; note?: string }> {
  const state = probe && job.jobId && ['queued', 'running', 'interrupted'].includes(job.status) ? await probe.jobState(job.jobId) : undefined;
  if (state === 'retry' || (state === 'created' && job.status !== 'queued')) {
    return { status: 'waiting', note: 'back in the queue for a retry: the next free worker takes it' };
  }
  if (job.status !== 'running') return { status: job.status };
  const here = job.runner?.host === hostname();
  const gone = here && !processAlive(job.runner!.pid) ? `its ${probe ? 'worker' : 'process'} (pid ${job.runner!.pid}) is gone` : undefined;
  if (!probe) return gone ? { status: 'interrupted', note: `${gone}; running the batch again resumes it` } : { status: 'running' };
  if (gone || !(await probe.lockHeld(job.source, job.destination))) {
    const who = gone ?? 'its worker is gone';
    return state === 'active'
      ? { status: 'interrupted', note: `${who}; the queue gives the job to another worker once it expires (--job-timeout)` }
      : { status: 'interrupted', note: `${who} and the queue holds no job for it; running the batch again queues it` };
  }
  return { status: 'running' };
}

/** The user named in a mailbox URL of the ledger (urlOf in run-batch.ts). */
function userOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username);
  } catch {
    return undefined;
  }
}
