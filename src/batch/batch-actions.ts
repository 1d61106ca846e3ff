/**
 * The console's actions on a batch, each recorded in the ledger (batch_action) with who and when:
 *
 * - retry: the failed and partial mailboxes run again. Queued: each is sent to the queue again
 *   (pg-boss) with the job it had (its row and configuration, secret references only), so workers
 *   pick it up and resume it incrementally from the ledger. Local: nothing runs; the exact
 *   `mailmover batch run` command that reruns the batch is given back (a rerun skips complete
 *   mailboxes and resumes the others).
 * - pause (queued): jobs still waiting in the queue are cancelled in pg-boss and their mailboxes
 *   recorded `paused`; a worker finishes the mailbox in flight, and one that takes a job of a
 *   paused batch in the same instant gives it back unrun (queue.ts). resume: those jobs go back
 *   to the queue (pg-boss resume, or sent again when pg-boss had closed them), recorded `queued`.
 * - cancel (queued): waiting and paused jobs are cancelled and their mailboxes recorded
 *   `cancelled`; running mailboxes finish (their outcome is recorded as usual).
 */
import type PgBoss from 'pg-boss';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { ControlStore, type BatchRun } from '../state/batch-control.js';
import { PgLedger } from '../state/pg-ledger.js';
import type { BatchActionName } from '../state/schema-v5.js';
import { jobOptions, QUEUE, startBoss, type MailboxJob } from './queue.js';

/** What an action did. */
export interface ActionResult {
  action: BatchActionName;
  /** Mailboxes it touched. */
  mailboxes: number;
  /** Said to the operator (e.g. mailboxes whose job could not be found again). */
  note?: string;
  /** Local retry: the command to run. */
  command?: string;
}

const refused = (message: string) => new MigrateError(ERROR_CODES.CONSOLE_ACTION, message, { scope: 'config' });

/** Seconds of a PostgreSQL interval as pg returns it ({ hours, minutes, ... }). */
function intervalSeconds(i: unknown): number {
  if (!i || typeof i !== 'object') return 4 * 3600;
  const v = i as Record<string, number | undefined>;
  const s = (v.days ?? 0) * 86_400 + (v.hours ?? 0) * 3600 + (v.minutes ?? 0) * 60 + (v.seconds ?? 0);
  return s > 0 ? s : 4 * 3600;
}

/** Sends a mailbox's job to the queue again, as it was; undefined when pg-boss no longer has it. */
async function sendAgain(b: PgBoss, jobId: string | undefined): Promise<string | undefined> {
  if (!jobId) return undefined;
  const old = await b.getJobById<MailboxJob>(QUEUE, jobId, { includeArchive: true });
  if (!old) return undefined;
  return (await b.send(QUEUE, old.data, jobOptions(intervalSeconds(old.expireIn)))) ?? undefined;
}

/** Runs an action on a queued batch (the queue's database holds the ledger's batch rows). */
export async function queuedAction(queueUrl: string, batch: string, action: BatchActionName, operator: string): Promise<ActionResult> {
  const ledger = await PgLedger.open(queueUrl);
  const control = await ControlStore.open(queueUrl, true);
  let b: PgBoss | undefined;
  try {
    const rows = await ledger.jobs(batch);
    if (rows.length === 0) throw refused(`There is no batch "${batch}" in the ledger.`);
    if (!rows.some((r) => r.jobId)) throw refused(`The batch "${batch}" was not queued (it ran on one machine): only retry applies, as a command to run.`);
    const state = await control.batchState(batch);
    const check = (ok: boolean, message: string) => {
      if (!ok) throw refused(message);
    };
    if (action === 'pause') check(state === 'active', `The batch "${batch}" is ${state}; only an active batch can be paused.`);
    if (action === 'resume') check(state === 'paused', `The batch "${batch}" is ${state}, not paused.`);
    if (action === 'cancel') check(state !== 'cancelled', `The batch "${batch}" is already cancelled.`);
    if (action === 'retry') check(state !== 'paused', `The batch "${batch}" is paused: resume it first.`);
    b = await startBoss(queueUrl, { supervise: false, schedule: false }, true);
    // Recorded first, so that a worker taking one of these jobs already sees the batch's new state.
    const pick = (statuses: string[]) => rows.filter((r) => statuses.includes(r.status));
    let touched = 0;
    const lost: number[] = [];
    if (action === 'retry' || action === 'resume') {
      const todo = action === 'retry' ? pick(['failed', 'partial']) : pick(['paused']);
      await control.recordAction({ batch, action, operator, mailboxes: todo.length });
      for (const r of todo) {
        const job = r.jobId ? await b.getJobById(QUEUE, r.jobId, { includeArchive: true }) : null;
        let id: string | undefined;
        if (action === 'resume' && job?.state === 'cancelled') {
          await b.resume(QUEUE, job.id);
          id = job.id;
        } else id = await sendAgain(b, r.jobId);
        if (!id) {
          lost.push(r.line);
          continue;
        }
        await ledger.recordJob(batch, { line: r.line, source: r.source, destination: r.destination, status: 'queued', copied: 0, skipped: 0, jobId: id });
        touched++;
      }
    } else {
      const todo = action === 'pause' ? pick(['queued', 'waiting']) : pick(['queued', 'waiting', 'paused']);
      await control.recordAction({ batch, action, operator, mailboxes: todo.length });
      const lines: number[] = [];
      for (const r of todo) {
        const job = r.jobId ? await b.getJobById(QUEUE, r.jobId) : null;
        if (job && (job.state === 'created' || job.state === 'retry')) await b.cancel(QUEUE, job.id);
        // A job a worker has just taken runs to its end (its outcome replaces this status).
        if (!job || job.state !== 'active') lines.push(r.line);
      }
      touched = await control.setStatuses(batch, action === 'pause' ? ['queued', 'waiting'] : ['queued', 'waiting', 'paused'], action === 'pause' ? 'paused' : 'cancelled', lines);
    }
    const note = lost.length ? `pg-boss no longer holds the job of line ${lost.join(', ')}: run the batch again (mailmover batch run LIST --queue URL) to queue it.` : undefined;
    return { action, mailboxes: touched, ...(note ? { note } : {}) };
  } finally {
    await b?.stop({ graceful: false, wait: true }).catch(() => undefined);
    await control.close().catch(() => undefined);
    await ledger.close().catch(() => undefined);
  }
}

/** Quotes an argument for a POSIX shell when it needs it. */
const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * Local retry: records the action and gives the command that reruns the batch (nothing runs).
 * Its list and configuration are those `batch run` recorded; when the ledger has none (a batch of
 * an older mailmover), the command names them as placeholders, and says so.
 */
export async function localRetry(stateFile: string, batch: string, failed: number, operator: string): Promise<ActionResult> {
  const control = await ControlStore.open(stateFile);
  try {
    const run: BatchRun | undefined = await control.run(batch);
    const parts = ['mailmover', 'batch', 'run', run?.listFile ? sh(run.listFile) : 'LIST.csv', '--config', run?.configFile ? sh(run.configFile) : 'CONFIG.yaml', '--state', sh(stateFile), '--name', sh(batch)];
    if (run?.reportDir) parts.push('--report-dir', sh(run.reportDir));
    const command = parts.join(' ');
    const note = run?.listFile && run.configFile ? undefined : 'The ledger does not record this batch\'s list and configuration (it ran before mailmover recorded them): put their paths for LIST.csv and CONFIG.yaml.';
    await control.recordAction({ batch, action: 'retry', operator, mailboxes: failed, note: command });
    return { action: 'retry', mailboxes: failed, command, ...(note ? { note } : {}) };
  } finally {
    await control.close().catch(() => undefined);
  }
}
