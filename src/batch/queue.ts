/**
 * Scale-out: a batch's mailboxes as jobs in PostgreSQL through pg-boss (a proven queue, not a
 * home-made one), processed by `mailmover worker` on any number of machines.
 *
 * - A job carries the row and the configuration with secret *references* only (literal secrets
 *   are refused before anything is queued); each worker resolves them in its own environment.
 * - The batch's statuses (queued, running, complete, partial, failed) are kept in the same
 *   database (the ledger's batch_job table): `mailmover batch status --queue URL` shows them,
 *   and enqueueing the batch again skips the mailboxes recorded complete.
 * - The state ledger lives in the same database by default (src/state/pg-ledger.ts), so a job
 *   retried on another machine is incremental: it goes on from what the first worker recorded.
 * - Two workers never work on one mailbox at once: a worker holds a PostgreSQL advisory lock on
 *   the mailbox for the whole job, on a connection of its own. A worker that dies loses the
 *   connection and so the lock; pg-boss expires its job and another worker takes it again. That
 *   retry is exact by construction: the dead worker's intents make the folders it was writing be
 *   planned again from both listings, by content identity.
 * - Per-server limits (connections, rates, throttling pauses) are counted across all workers
 *   (src/batch/shared-limits.ts), not per worker.
 */
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { ServerGate, type GateObserver } from '../copy/retry-policy.js';
import { redactUrl } from '../core/endpoint.js';
import { sleep } from '../core/sleep.js';
import type { BatchConfig, BatchServer } from './config.js';
import { literalPasswords, type MailboxList, type MailboxRow } from './mailbox-list.js';
import { recordingProgress, runOne, urlOf, type BatchJobResult } from './run-batch.js';
import { PgLedger } from '../state/pg-ledger.js';
import { ControlStore } from '../state/batch-control.js';
import { WorkerHeartbeat } from './worker-heartbeat.js';
import type { BatchEvent } from './run-batch.js';
import { SharedLimitsHub } from './shared-limits.js';
import type { JobProbe } from './batch-status.js';
import { hostname } from 'node:os';
import { isReference } from './secrets.js';
import { maskUrl, openState, type BatchJobRecord, type StateStore } from '../state/store.js';

/** The pg-boss queue of mailbox jobs. */
export const QUEUE = 'mailmover-mailbox';

/** How often a worker records a running mailbox's progress in the database. */

/** What a job carries. */
export interface MailboxJob {
  batch: string;
  row: MailboxRow;
  config: BatchConfig;
}

/** Options of {@link enqueueBatch}. */
export interface EnqueueOptions {
  queueUrl: string;
  list: MailboxList;
  config: BatchConfig;
  name: string;
  /** A job not finished after this long is taken as lost (its worker died) and retried (default 4 h). */
  jobTimeoutSeconds?: number;
  /** Queue mailboxes recorded complete again (an incremental pass) instead of skipping them. */
  again?: boolean;
  /** The list, configuration and report directory, recorded for the console. */
  files?: { list: string; config: string; reportDir: string };
}

/** One row of the list once enqueued: its job id, or its earlier complete result. */
export interface Enqueued {
  row: MailboxRow;
  id?: string;
  /** The mailbox was still queued or running from an earlier enqueueing: this is that job. */
  joined?: true;
  alreadyComplete?: BatchJobResult;
}

/**
 * Puts one job per mailbox in the queue, in list order, and records each as queued; a mailbox
 * recorded complete by an earlier run of the batch is skipped unless `again`, and one whose job
 * is still queued or running (an earlier `batch run --queue` was interrupted, or is running
 * elsewhere) is joined rather than queued twice.
 */
export async function enqueueBatch(options: EnqueueOptions): Promise<Enqueued[]> {
  refuseLiteralSecrets(options.list, options.config);
  const jobs = await PgLedger.open(options.queueUrl);
  try {
    const before = new Map((await jobs.jobs(options.name)).map((j) => [`${j.source}\0${j.destination}`, j]));
    const control = await ControlStore.open(options.queueUrl, true);
    await control.recordRun({ batch: options.name, listFile: options.files?.list, configFile: options.files?.config, reportDir: options.files?.reportDir, queued: true }).finally(() => control.close());
    const b = await startBoss(options.queueUrl, { supervise: false }, true);
    try {
      const out: Enqueued[] = [];
      for (const row of options.list.rows) {
        const [source, destination] = [urlOf(options.config.source, row.sourceUser), urlOf(options.config.destination, row.destinationUser)];
        const prior = before.get(`${source}\0${destination}`);
        if (prior?.status === 'complete' && !options.again) {
          out.push({ row, alreadyComplete: { ...prior, line: row.line, alreadyComplete: true } });
          continue;
        }
        // Still queued or running from an earlier `batch run --queue` (one interrupted, or running
        // now elsewhere): join that job instead of queueing the mailbox twice.
        const live = prior?.jobId && (prior.status === 'queued' || prior.status === 'running') ? await b.getJobById(QUEUE, prior.jobId) : null;
        if (live && ['created', 'retry', 'active'].includes(live.state)) {
          out.push({ row, id: live.id, joined: true });
          continue;
        }
        // Without notify: (workers do not notify; the waiting batch run does), so that no SMTP
        // password or webhook header, even as a reference, is stored with every job.
        const { notify: _notify, ...config } = options.config;
        const job: MailboxJob = { batch: options.name, row, config };
        const id = await b.send(QUEUE, job, jobOptions(options.jobTimeoutSeconds ?? 4 * 3600));
        if (!id) throw new MigrateError(ERROR_CODES.QUEUE, `The queue did not take the job of line ${row.line}.`, { scope: 'mailbox' });
        await jobs.recordJob(options.name, { line: row.line, source, destination, status: 'queued', copied: 0, skipped: 0, jobId: id });
        out.push({ row, id });
      }
      return out;
    } finally {
      await b.stop({ graceful: false, wait: true }).catch(() => undefined);
    }
  } finally {
    await jobs.close();
  }
}

/** How every mailbox job is sent (also again by the console's retry and resume). */
export const jobOptions = (expireInSeconds: number): PgBoss.SendOptions => ({ retryLimit: 20, retryDelay: 2, retryBackoff: true, expireInSeconds });

/**
 * A job is a row in PostgreSQL (pg-boss keeps it, and its archive, long after it ran): it may
 * hold secret references, never a secret. A literal password in the list or the configuration
 * is refused before anything is queued, naming every place, rather than stored in clear.
 */
function refuseLiteralSecrets(list: MailboxList, config: BatchConfig): void {
  const rows = literalPasswords(list);
  if (rows.length > 0) {
    const shown = rows.slice(0, 50).join('\n  ') + (rows.length > 50 ? `\n  ... and ${rows.length - 50} more` : '');
    throw new MigrateError(
      ERROR_CODES.BATCH_CSV,
      `--queue stores each mailbox's job in PostgreSQL, and these passwords are written in the list; write them as env:NAME or file:PATH references (resolved by each worker) instead:\n  ${shown}`,
      { scope: 'config' },
    );
  }
  for (const [name, s] of [['source', config.source], ['destination', config.destination]] as const) {
    if (s.master && !isReference(s.master.password)) {
      throw new MigrateError(
        ERROR_CODES.BATCH_CONFIG,
        `${s.master.at ?? 'the configuration'}: ${name}.master.password is written in the file, and --queue would store it in PostgreSQL with every job; use env:NAME or file:PATH (resolved by each worker).`,
        { scope: 'config' },
      );
    }
  }
}

/**
 * Waits until every job is done (or failed for good); resolves with their results. With `batch`,
 * follows the console's actions: a mailbox sent to the queue again (retry, resume) is followed to
 * its new job, nothing ends while the batch is paused, and a cancelled mailbox ends as recorded.
 */
export async function waitForJobs(queueUrl: string, ids: readonly string[], signal?: AbortSignal, pollMs = 1000, batch?: string): Promise<(BatchJobResult | undefined)[]> {
  if (ids.length === 0) return [];
  const b = await startBoss(queueUrl, { supervise: false });
  const ledger = batch ? await PgLedger.open(queueUrl).catch(() => undefined) : undefined;
  const control = ledger ? await ControlStore.open(queueUrl, true).catch(() => undefined) : undefined;
  try {
    let keys: (string | undefined)[] | undefined;
    for (;;) {
      const rows = ledger && batch ? await ledger.jobs(batch).catch(() => []) : [];
      const key = (r: BatchJobRecord) => `${r.source}\0${r.destination}`;
      keys ??= ids.map((id) => rows.find((r) => r.jobId === id)).map((r) => (r ? key(r) : undefined));
      const byKey = new Map(rows.map((r) => [key(r), r]));
      const current = ids.map((id, i) => byKey.get(keys![i] ?? '')?.jobId ?? id);
      const jobs = await Promise.all(current.map((id) => b.getJobById(QUEUE, id)));
      const paused = control && batch ? (await control.batchState(batch).catch(() => 'active')) === 'paused' : false;
      if (!paused && jobs.every((j) => j && (j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled'))) {
        return jobs.map((j, i) => {
          if (j?.state === 'completed') return j.output as BatchJobResult;
          const row = byKey.get(keys![i] ?? '');
          return j?.state === 'cancelled' && row ? { ...row, line: row.line } : undefined;
        });
      }
      if (signal?.aborted) throw signal.reason;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await b.stop({ graceful: false, wait: true }).catch(() => undefined);
    await control?.close().catch(() => undefined);
    await ledger?.close().catch(() => undefined);
  }
}

/**
 * Follows a queued batch from its statuses in the database until the signal is aborted: calls
 * `onChange` for each mailbox whose status or counts changed since the last look (every `pollMs`).
 */
export async function followBatch(queueUrl: string, name: string, signal: AbortSignal, onChange: (job: BatchJobRecord) => void, pollMs = 1000): Promise<void> {
  const ledger = await PgLedger.open(queueUrl);
  const seen = new Map<string, string>();
  try {
    while (!signal.aborted) {
      for (const j of await ledger.jobs(name).catch(() => [])) {
        const key = `${j.source}\0${j.destination}`;
        const state = `${j.status} ${j.copied} ${j.skipped} ${j.toCopy ?? ''} ${j.updatedAt}`;
        if (seen.get(key) === state) continue;
        seen.set(key, state);
        onChange(j);
      }
      await sleep(pollMs, signal).catch(() => undefined);
    }
  } finally {
    await ledger.close().catch(() => undefined);
  }
}

/**
 * What the queue knows of a queued batch's mailboxes, for `batch status`: pg-boss's state of each
 * job, and whether a worker holds a mailbox's lock (the advisory lock a worker takes for the
 * whole job, on a connection of its own: it is gone with the worker). Only looked at, never taken.
 */
export async function queueProbe(queueUrl: string): Promise<JobProbe & { close(): Promise<void> }> {
  const b = await startBoss(queueUrl, { supervise: false, schedule: false });
  const db = new pg.Client({ connectionString: queueUrl });
  db.on('error', () => undefined);
  try {
    await db.connect();
  } catch (err) {
    await b.stop({ graceful: false, wait: true }).catch(() => undefined);
    throw new MigrateError(ERROR_CODES.QUEUE, `The queue at ${maskUrl(queueUrl)} cannot be used: ${maskUrl((err as Error).message)}`, { scope: 'config', cause: err });
  }
  return {
    jobState: async (id) => (await b.getJobById(QUEUE, id).catch(() => null))?.state,
    lockHeld: async (source, destination) => {
      // A bigint advisory key is kept in pg_locks as its high (classid) and low (objid) halves.
      const { rows } = await db.query<{ held: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)) AS held`,
        [`${source}\n${destination}`],
      );
      return !!rows[0]?.held;
    },
    close: async () => {
      await db.end().catch(() => undefined);
      await b.stop({ graceful: false, wait: true }).catch(() => undefined);
    },
  };
}

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  queueUrl: string;
  /** The state ledger: a file of this worker's, or a PostgreSQL URL (default: the queue's database, shared by all workers). */
  statePath?: string;
  reportDir: string;
  /** Mailboxes at once on this worker (default 2). */
  parallel?: number;
  /** How often expired jobs (of dead workers) are looked for (default 60 s). */
  maintenanceIntervalSeconds?: number;
  /** How often the worker records its heartbeat in the ledger (default 10 s). */
  heartbeatSeconds?: number;
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  onJob?: (e: { type: 'start' | 'done'; line: number; source: string; result?: BatchJobResult }) => void;
  /** Every running mailbox's events, its start and its end (the worker's metrics). */
  onEvent?: (e: BatchEvent) => void;
  /** Told of each server's retries, throttling pauses and connections (the worker's metrics). */
  gateObserver?: (server: string) => GateObserver;
  /** `worker --from-oauth/--to-oauth`: credentials files that replace the jobs' oauth for that side. */
  oauth?: { source?: string; destination?: string };
}

/** Processes queued mailboxes until the signal is aborted (then finishes the jobs in hand). */
export async function runWorker(options: WorkerOptions): Promise<void> {
  mkdirSync(options.reportDir, { recursive: true });
  const parallel = options.parallel ?? 2;
  // Statuses always go to the queue's database (batch status reads them there); the ledger may be elsewhere.
  const jobs = await PgLedger.open(options.queueUrl);
  let ledger: StateStore;
  try {
    ledger = !options.statePath || options.statePath === options.queueUrl ? jobs : await openState(options.statePath);
  } catch (err) {
    await jobs.close();
    throw err;
  }
  let b: PgBoss;
  try {
    b = await startBoss(options.queueUrl, { maintenanceIntervalSeconds: options.maintenanceIntervalSeconds ?? 60 }, true, options.logger);
  } catch (err) {
    await Promise.all([jobs.close(), ledger !== jobs ? ledger.close() : undefined]);
    throw err;
  }
  // Actions (pause, cancel), the heartbeat and progress samples: in the queue's database, with the statuses.
  const control = await ControlStore.open(options.queueUrl, true);
  const heartbeat = new WorkerHeartbeat(control, options.heartbeatSeconds);
  await heartbeat.start();
  const locks = new pg.Pool({ connectionString: options.queueUrl, max: parallel + 1 });
  locks.on('error', () => undefined);
  // A server's limits hold for all workers together: counted in the queue's database.
  const hub = new SharedLimitsHub(options.queueUrl);
  const gates = new Map<string, ServerGate>();
  const gateOf = (s: BatchServer) => {
    const key = urlOf(s, '');
    let g = gates.get(key);
    if (!g) {
      const limits = { maxConnections: s.maxConnections, maxMessagesPerSecond: s.maxMessagesPerSecond, maxBytesPerSecond: s.maxBytesPerSecond };
      gates.set(key, (g = new ServerGate(limits, hub.limitsFor(key, limits))));
      g.observer = options.gateObserver?.(redactUrl(key.replace('://@', '://')));
    }
    return g;
  };
  const handle = async ([job]: PgBoss.Job<MailboxJob>[]): Promise<BatchJobResult> => {
    const { row, batch } = job!.data;
    const config: BatchConfig = {
      ...job!.data.config,
      source: options.oauth?.source ? { ...job!.data.config.source, oauth: { credentials: options.oauth.source } } : job!.data.config.source,
      destination: options.oauth?.destination ? { ...job!.data.config.destination, oauth: { credentials: options.oauth.destination } } : job!.data.config.destination,
    };
    const source = urlOf(config.source, row.sourceUser);
    const destination = urlOf(config.destination, row.destinationUser);
    // A job of a paused or cancelled batch taken in the instant of the action is given back unrun:
    // recorded paused (resume sends it again) or cancelled.
    const held = await control.batchState(batch);
    if (held !== 'active') {
      const status = held === 'paused' ? 'paused' : 'cancelled';
      await control.setStatuses(batch, ['queued', 'waiting', 'paused'], status, [row.line]);
      return { line: row.line, source, destination, status, copied: 0, skipped: 0 };
    }
    const client = await locks.connect();
    // Held for the whole job: a dropped connection must fail its queries, not crash the worker.
    client.on('error', () => undefined);
    try {
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [`${source}\n${destination}`]);
      // Another worker holds this mailbox (a job retried while its first worker still runs): try later.
      if (!got.rows[0]?.ok) {
        options.logger?.warn({ event: 'retry', mailbox: source, line: row.line }, 'another worker holds the mailbox; its job is queued again for a retry');
        throw new Error(`the mailbox ${source} is being migrated by another worker`);
      }
      options.onJob?.({ type: 'start', line: row.line, source });
      heartbeat.begin(job!.id, { batch, line: row.line, source });
      options.onEvent?.({ type: 'job-start', line: row.line, source, destination });
      await jobs.recordJob(batch, { line: row.line, source, destination, status: 'running', copied: 0, skipped: 0, runner: { pid: process.pid, host: hostname() } });
      // Progress goes to the database every few seconds, for `batch run --queue`, `batch status` and the console elsewhere.
      const onEvent = recordingProgress(jobs, batch, source, destination, options.onEvent, control);
      const result = await runOne(row, source, destination, { config, stateStore: ledger, reportDir: options.reportDir, env: options.env, signal: options.signal, logger: options.logger, onEvent }, {
        source: gateOf(config.source),
        destination: gateOf(config.destination),
      });
      await onEvent.flush();
      // Parked (a daily budget, a provider's limit): the mailbox goes back in the queue for its resume time.
      if (result.status === 'waiting' && result.resumeAt && !options.signal.aborted) {
        const again = await b.send(QUEUE, job!.data, { ...jobOptions(job!.expireInSeconds ?? 4 * 3600), startAfter: new Date(result.resumeAt) });
        if (again) result.jobId = again;
        options.logger?.info({ event: 'mailbox-parked', mailbox: source, line: row.line, resumeAt: result.resumeAt, job: again }, 'mailbox parked; queued again for its resume time');
      }
      await jobs.recordJob(batch, result);
      options.onEvent?.({ type: 'job-done', job: result });
      options.onJob?.({ type: 'done', line: row.line, source, result });
      // Stopped before its end (Ctrl-C or SIGTERM of this worker): the job goes back to the queue
      // for another worker (or this one, started again), which resumes it from the ledger.
      if (result.status === 'interrupted') throw new Error(`the mailbox ${source} was interrupted; it is queued again`);
      return result;
    } finally {
      heartbeat.done(job!.id);
      await client.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      client.release();
    }
  };
  for (let i = 0; i < parallel; i++) await b.work<MailboxJob>(QUEUE, { batchSize: 1, pollingIntervalSeconds: 0.5 }, handle);
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    else options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await b.stop({ graceful: true, wait: true, timeout: 30_000 }).catch(() => undefined);
  await heartbeat.stop();
  await control.close().catch(() => undefined);
  await locks.end().catch(() => undefined);
  await hub.close().catch(() => undefined);
  if (ledger !== jobs) await Promise.resolve(ledger.close()).catch(() => undefined);
  await jobs.close().catch(() => undefined);
}

/**
 * Starts pg-boss and makes sure the queue exists. Several workers (and the batch) starting at once
 * on a fresh database all create pg-boss's schema and the queue together, and PostgreSQL answers
 * some of them with a deadlock or a duplicate object: those are tried again after a short wait.
 */
export async function startBoss(url: string, extra: Partial<PgBoss.ConstructorOptions>, createQueue = false, logger?: Logger): Promise<PgBoss> {
  const racing = new Set(['40P01', '23505', '42P07', '42710', '42P06']);
  for (let attempt = 1; ; attempt++) {
    // A fresh instance each time: pg-boss cannot be started again after a failed start.
    const b = new PgBoss({ connectionString: url, schema: 'mailmover_queue', ...extra });
    b.on('error', (err) => logger?.warn({ err: (err as Error).message }, 'queue error'));
    try {
      await b.start();
      if (createQueue) await b.createQueue(QUEUE);
      return b;
    } catch (err) {
      await b.stop({ graceful: false, wait: true }).catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (code && racing.has(code) && attempt < 8) {
        await sleep(100 * attempt + Math.random() * 200);
        continue;
      }
      throw new MigrateError(ERROR_CODES.QUEUE, `The queue at ${maskUrl(url)} cannot be used: ${maskUrl((err as Error).message)}`, { scope: 'config', cause: err });
    }
  }
}
