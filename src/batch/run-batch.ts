/**
 * Runs a batch of mailboxes on this machine: `parallel` at a time, each an independent job with
 * its own status, report and state (the shared ledger file). One failing mailbox never stops the
 * others; a rerun skips the mailboxes recorded complete and resumes the rest (incremental, from
 * the ledger). A throttling answer to one mailbox pauses every mailbox on that server.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { ServerGate } from '../copy/retry-policy.js';
import { sleep } from '../core/sleep.js';
import { migrate } from '../job/migrate.js';
import type { MigrateOptions } from '../job/options.js';
import { worstVerdict, type MigrationReport } from '../job/report.js';
import type { MigrationEvent, ProgressCounters } from '../job/events.js';
import { hostname } from 'node:os';
import type { BatchJobRecord } from '../state/ledger.js';
import { openState, type StateStore } from '../state/store.js';
import { ControlStore } from '../state/batch-control.js';
import { VERSION } from '../version.js';
import type { BatchJobResult, BatchReport } from './batch-report.js';

export type { BatchJobResult, BatchReport } from './batch-report.js';
import type { BatchConfig, BatchServer } from './config.js';
import type { MailboxList, MailboxRow } from './mailbox-list.js';
import { resolveSecret } from './secrets.js';
import { tokenFromCredentials } from '../core/oauth-credentials.js';
import { tokenFromCommand, tokenFromFile, type TokenProvider } from '../core/access-token.js';
import { notifyBatchEnd, printNotifyFailures, wantsNotify, type ResolvedNotify } from '../notify/notify.js';

/** Options of {@link runBatch}. */
export interface BatchOptions {
  list: MailboxList;
  config: BatchConfig;
  /** Names the batch in the ledger (the CSV file's name by default in the CLI). */
  name: string;
  /** Mailboxes at once (default 4). */
  parallel?: number;
  /** The state ledger: a SQLite file or a PostgreSQL URL. */
  statePath: string;
  /** Where each mailbox's report and the batch report go. */
  reportDir: string;
  /** Run mailboxes already recorded complete again (an incremental pass) instead of skipping them; and parked ones before their resume time. */
  again?: boolean;
  /**
   * `batch run --wait`: a parked mailbox (a daily budget spent, a provider's limit) waits for its
   * resume time and goes on, and the run ends when none is left waiting. Without it the run ends
   * with parked mailboxes `waiting`; the next run resumes them once their time has come.
   */
  waitParked?: boolean;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: (e: BatchEvent) => void;
  logger?: Logger;
  /** Who is told when the batch ends (resolved with resolveNotify); a failure there is printed, never thrown. */
  notify?: ResolvedNotify;
  /** The list and configuration files, recorded so that the console can give the command that reruns the batch. */
  files?: { list: string; config: string };
}

/** What the batch reports while it runs. */
export type BatchEvent =
  | { type: 'job-start'; line: number; source: string; destination: string }
  | { type: 'job-progress'; line: number; source: string; counters: ProgressCounters }
  /** Every engine event of a running mailbox (skipped items, scan verdicts, ...), for metrics. */
  | { type: 'job-event'; line: number; source: string; event: MigrationEvent }
  | { type: 'job-done'; job: BatchJobResult }
  | { type: 'job-skipped'; job: BatchJobResult };

/** How often a running mailbox's copied/to-copy counts are written to the ledger. */
export const PROGRESS_EVERY_MS = 2000;

/** A progress listener that can write its last counts at the end. */
export type ProgressRecorder = ((e: BatchEvent) => void) & { flush(): Promise<void> };

/**
 * An event listener that also writes a running mailbox's progress to the ledger, at most every
 * PROGRESS_EVERY_MS, so that `batch status`, a waiting `batch run --queue` and the console see it
 * move while it runs (a late write never undoes the outcome: see StateStore.recordProgress); with
 * `samples`, also what was copied since the last write (the batch's throughput over time);
 * `flush()` samples what is left at the end.
 */
export function recordingProgress(
  ledger: Pick<StateStore, 'recordProgress'>,
  batch: string,
  source: string,
  destination: string,
  forward?: (e: BatchEvent) => void,
  samples?: Pick<ControlStore, 'sample'>,
): ProgressRecorder {
  let last = 0;
  let latest = { copied: 0, bytes: 0 };
  let sampled = { copied: 0, bytes: 0 };
  const sample = () => {
    const d = { copied: latest.copied - sampled.copied, bytes: latest.bytes - sampled.bytes };
    sampled = latest;
    return samples && (d.copied > 0 || d.bytes > 0) ? Promise.resolve(samples.sample(batch, d.copied, d.bytes)).catch(() => undefined) : Promise.resolve();
  };
  const listener = (e: BatchEvent) => {
    forward?.(e);
    if (e.type !== 'job-progress') return;
    latest = { copied: e.counters.copied, bytes: e.counters.copiedBytes };
    if (Date.now() - last < PROGRESS_EVERY_MS) return;
    last = Date.now();
    Promise.resolve(ledger.recordProgress(batch, source, destination, { copied: e.counters.copied, skipped: e.counters.skipped, toCopy: e.counters.toCopy })).catch(() => undefined);
    void sample();
  };
  return Object.assign(listener, { flush: sample });
}

/** Runs the batch; resolves with its report (also written to the report directory). */
export async function runBatch(options: BatchOptions): Promise<BatchReport> {
  const parallel = options.parallel ?? 4;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `parallel must be a whole number from 1 to 256 (got ${parallel}).`, { scope: 'config' });
  }
  try {
    mkdirSync(options.reportDir, { recursive: true });
  } catch (err) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The report directory "${options.reportDir}" cannot be created: ${(err as Error).message}`, { scope: 'config', cause: err });
  }
  const started = Date.now();
  const ledger = await openState(options.statePath);
  let control: ControlStore;
  try {
    control = await ControlStore.open(options.statePath, true);
    await control.recordRun({ batch: options.name, listFile: options.files?.list, configFile: options.files?.config, reportDir: path.resolve(options.reportDir), queued: false });
  } catch (err) {
    await ledger.close();
    throw err;
  }
  // One gate per server for the whole batch: connection caps, rates and throttling pauses apply
  // across mailboxes. Each mailbox needs at least one connection per side.
  const limitsOf = (s: BatchServer) => ({ maxConnections: s.maxConnections, maxMessagesPerSecond: s.maxMessagesPerSecond, maxBytesPerSecond: s.maxBytesPerSecond });
  const gates = { source: new ServerGate(limitsOf(options.config.source)), destination: new ServerGate(limitsOf(options.config.destination)) };
  const jobs: BatchJobResult[] = [];
  const runner = { pid: process.pid, host: hostname() };
  const urls = (row: MailboxRow) => [urlOf(options.config.source, row.sourceUser), urlOf(options.config.destination, row.destinationUser)] as const;
  const reached = new Set<MailboxRow>();
  /** A parked row's latest record. */
  const last = new Map<MailboxRow, BatchJobResult>();
  try {
    const before = new Map((await ledger.jobs(options.name)).map((j) => [`${j.source}\0${j.destination}`, j]));
    // Every row is in the ledger from the start, so that `batch status` knows the batch and
    // its rows not reached yet; a row recorded by an earlier run keeps its record until it runs.
    for (const row of options.list.rows) {
      const [source, destination] = urls(row);
      if (!before.has(`${source}\0${destination}`)) await ledger.recordJob(options.name, { line: row.line, source, destination, status: 'not started', copied: 0, skipped: 0 });
    }
    // Each row with the time it may start: a mailbox parked by an earlier run (a daily budget, a
    // provider's limit) not before its resume time, unless --again.
    const queue = options.list.rows.map((row) => {
      const prior = before.get(urls(row).join('\0'));
      const resume = prior?.status === 'waiting' && prior.resumeAt && !options.again ? Date.parse(prior.resumeAt) : 0;
      if (resume > Date.now()) last.set(row, { ...prior!, line: row.line });
      return { row, notBefore: Number.isFinite(resume) ? resume : 0 };
    });
    const worker = async () => {
      for (;;) {
        if (options.signal?.aborted) return;
        const i = queue.findIndex((q) => q.notBefore <= Date.now());
        if (i < 0) {
          if (queue.length === 0) return;
          // Only parked mailboxes are left: wait for the first to resume (--wait), or end with them waiting.
          if (!options.waitParked) {
            for (const q of queue.splice(0)) {
              reached.add(q.row);
              const job = last.get(q.row)!;
              jobs.push(job);
              options.onEvent?.({ type: 'job-done', job });
            }
            return;
          }
          await sleep(Math.max(0, Math.min(...queue.map((q) => q.notBefore)) - Date.now()), options.signal).catch(() => undefined);
          continue;
        }
        const row = queue.splice(i, 1)[0]!.row;
        reached.add(row);
        const [source, destination] = urls(row);
        const prior = before.get(`${source}\0${destination}`);
        if (prior?.status === 'complete' && !options.again) {
          const job: BatchJobResult = { ...prior, line: row.line, alreadyComplete: true };
          jobs.push(job);
          options.logger?.info({ event: 'mailbox-skipped', mailbox: source, line: row.line, verdict: prior.verdict }, 'mailbox skipped: complete in an earlier run');
          options.onEvent?.({ type: 'job-skipped', job });
          continue;
        }
        options.onEvent?.({ type: 'job-start', line: row.line, source, destination });
        await ledger.recordJob(options.name, { line: row.line, source, destination, status: 'running', copied: 0, skipped: 0, runner });
        const progress = recordingProgress(ledger, options.name, source, destination, options.onEvent, control);
        const job = await runOne(row, source, destination, { ...options, stateStore: ledger, onEvent: progress }, gates);
        await progress.flush();
        await ledger.recordJob(options.name, job);
        options.onEvent?.({ type: 'job-done', job });
        // Parked: with --wait it goes back in line for its resume time; else the run ends with it waiting.
        if (job.status === 'waiting' && job.resumeAt && options.waitParked && !options.signal?.aborted) {
          last.set(row, job);
          queue.push({ row, notBefore: Date.parse(job.resumeAt) });
          continue;
        }
        jobs.push(job);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, options.list.rows.length)) }, worker));
  } finally {
    await control.close().catch(() => undefined);
    await ledger.close();
  }
  // Rows the batch never ended (it was stopped): in the report as last recorded (parked), or as not started.
  const ended = new Set(jobs.map((j) => j.line));
  for (const row of options.list.rows) {
    if (ended.has(row.line) && reached.has(row)) continue;
    const [source, destination] = urls(row);
    jobs.push(last.get(row) ?? { line: row.line, source, destination, status: 'not started', copied: 0, skipped: 0 });
  }
  const report = await finishReport(options.name, parallel, started, jobs, [...(options.config.warnings ?? []), ...options.list.warnings], options.reportDir);
  // After the statuses and reports are written, also when Ctrl-C stopped the batch early.
  if (wantsNotify(options.notify)) printNotifyFailures(await notifyBatchEnd(report, options.reportDir, options.notify, options.logger, !!options.signal?.aborted));
  return report;
}

/** Builds the batch report from the jobs' results and writes it (JSON and Markdown) to `reportDir`. */
export async function finishReport(name: string, parallel: number, started: number, results: BatchJobResult[], warnings: string[], reportDir: string): Promise<BatchReport> {
  const jobs = [...results].sort((a, b) => a.line - b.line);
  const count = (s: BatchJobRecord['status']) => jobs.filter((j) => j.status === s).length;
  const stopped = count('interrupted') + count('not started') > 0;
  const waiting = count('waiting');
  const verdict = worstVerdict(jobs.map((j) => j.verdict ?? (j.status === 'failed' ? 'poor' : undefined)));
  const report: BatchReport = {
    version: 1,
    kind: 'batch',
    tool: `mailmover ${VERSION}`,
    name,
    status: stopped ? 'interrupted' : waiting > 0 ? 'waiting' : count('complete') === jobs.length ? 'complete' : count('complete') + count('partial') > 0 ? 'partial' : 'failed',
    ...(verdict ? { verdict } : {}),
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    parallel,
    totals: {
      mailboxes: jobs.length,
      complete: count('complete'),
      partial: count('partial'),
      failed: count('failed'),
      interrupted: count('interrupted'),
      ...(count('cancelled') ? { cancelled: count('cancelled') } : {}),
      ...(waiting ? { waiting } : {}),
      notStarted: count('not started'),
      alreadyComplete: jobs.filter((j) => j.alreadyComplete).length,
      copied: jobs.reduce((n, j) => n + (j.alreadyComplete ? 0 : j.copied), 0),
      skippedItems: jobs.reduce((n, j) => n + (j.alreadyComplete ? 0 : j.skipped), 0),
      seconds: Math.round((Date.now() - started) / 10) / 100,
    },
    warnings,
    jobs,
  };
  mkdirSync(reportDir, { recursive: true });
  await writePrivate(path.join(reportDir, 'batch-report.json'), JSON.stringify(report, null, 2) + '\n');
  await writePrivate(path.join(reportDir, 'batch-report.md'), batchMarkdown(report));
  return report;
}

/**
 * Writes a file only its owner can read (0600): reports name every mailbox, user and server of
 * the batch. The mode is set on the open file as well, for a file that existed with another mode.
 */
export async function writePrivate(file: string, data: string): Promise<void> {
  const h = await open(file, 'w', 0o600);
  try {
    await h.chmod(0o600);
    await h.writeFile(data);
  } finally {
    await h.close();
  }
}

/** One mailbox: resolve its secrets, migrate, write its report. Never throws. */
export async function runOne(
  row: MailboxRow,
  source: string,
  destination: string,
  options: Pick<BatchOptions, 'config' | 'reportDir' | 'env' | 'signal' | 'logger' | 'onEvent'> & { stateStore: StateStore },
  gates: { source: ServerGate; destination: ServerGate },
): Promise<BatchJobResult> {
  const t0 = Date.now();
  const base: BatchJobResult = { line: row.line, source, destination, status: 'failed', copied: 0, skipped: 0 };
  // One logger per mailbox: every line it writes names the mailbox and its line in the list.
  const log = options.logger?.child({ mailbox: source, line: row.line });
  log?.info({ event: 'mailbox-start', source, destination }, 'mailbox started');
  let report: MigrationReport;
  try {
    const from = login(options.config.source, row.sourceUser, row.sourcePassword, 'source', options.env);
    const to = login(options.config.destination, row.destinationUser, row.destinationPassword, 'destination', options.env);
    const d = options.config.defaults;
    report = await migrate({
      from: { url: from.url, password: from.password, ...(from.accessToken ? { accessToken: from.accessToken } : {}), ...(from.authzid ? { authzid: from.authzid } : {}), tlsInsecure: options.config.source.tlsInsecure, allowPlaintext: options.config.source.allowPlaintext },
      to: { url: to.url, password: to.password, ...(to.accessToken ? { accessToken: to.accessToken } : {}), ...(to.authzid ? { authzid: to.authzid } : {}), tlsInsecure: options.config.destination.tlsInsecure, allowPlaintext: options.config.destination.allowPlaintext },
      connections: d.connections,
      retry: { attempts: d.retries, baseDelayMs: Math.round(d.retryDelaySeconds * 1000) },
      ...(d.badItemLimit !== undefined ? { badItemLimit: d.badItemLimit } : {}),
      ...(d.maxMessageSize !== undefined ? { maxMessageSize: d.maxMessageSize } : {}),
      ...(d.gmailLabels !== undefined ? { gmailLabels: d.gmailLabels } : {}),
      ...(d.labelPriority !== undefined ? { labelPriority: d.labelPriority } : {}),
      folders: options.config.rules,
      stateStore: options.stateStore,
      ...budgetsOf(options.config),
      serverGates: gates,
      onEvent: (e) => {
        options.onEvent?.({ type: 'job-event', line: row.line, source, event: e });
        if (e.type === 'progress') options.onEvent?.({ type: 'job-progress', line: row.line, source, counters: e.counters });
        else if (log) logEvent(log, e);
      },
      ...(options.signal ? { signal: options.signal } : {}),
      ...(log ? { logger: log } : {}),
    });
  } catch (err) {
    const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.INTERNAL, String((err as Error)?.message ?? err), { scope: 'mailbox' });
    const job: BatchJobResult = { ...base, ...(e.code === ERROR_CODES.ABORTED ? { status: 'interrupted' as const } : { verdict: 'poor' as const }), code: e.code, message: e.message, seconds: secondsSince(t0) };
    log?.warn({ event: 'mailbox-end', line: row.line, status: job.status, verdict: job.verdict, code: e.code, err: e.message, copied: 0, skipped: 0, seconds: job.seconds }, 'mailbox ended');
    return job;
  }
  const file = path.join(options.reportDir, `${String(row.line).padStart(5, '0')}-${safeName(row.sourceUser)}.json`);
  await writePrivate(file, JSON.stringify(report, null, 2) + '\n').catch(() => undefined);
  const job: BatchJobResult = {
    ...base,
    status: report.status,
    // An interrupted run has no verdict: what it would have done is not known.
    ...(report.status !== 'interrupted' && report.status !== 'waiting' && report.verdict ? { verdict: report.verdict } : {}),
    ...(report.error ? { code: report.error.code, message: report.error.message } : report.items[0] ? { code: report.items[0].code, message: `${report.items.length} item(s) skipped; first: ${report.items[0].reason}` } : {}),
    // Parked (a daily budget, a provider's limit): when it may go on.
    ...(report.status === 'waiting' && report.error?.resumeAt ? { resumeAt: report.error.resumeAt } : {}),
    copied: report.totals.copied,
    skipped: report.totals.skipped,
    seconds: secondsSince(t0),
    report: file,
  };
  log?.[job.status === 'complete' ? 'info' : 'warn'](
    { event: 'mailbox-end', line: row.line, status: job.status, verdict: job.verdict, code: job.code, copied: job.copied, skipped: job.skipped, seconds: job.seconds, report: file },
    'mailbox ended',
  );
  return job;
}

/**
 * What the engine reports as events goes to the batch's log too (the engine itself logs
 * retries, throttling pauses, reconnects and failures): a skipped item or a scan verdict as a
 * warning, the rest as information; progress is left out (the end line has the counts).
 */
function logEvent(log: Logger, e: MigrationEvent): void {
  if (e.type === 'item-skipped') log.warn({ event: e.type, folder: e.item.folder, uid: e.item.uid, code: e.item.code, reason: e.item.reason, attempts: e.item.attempts }, 'item skipped');
  else if (e.type === 'scan-verdict') log.warn({ event: e.type, folder: e.verdict.folder, uid: e.verdict.uid, verdict: e.verdict.verdict, action: e.verdict.action }, 'scan verdict');
  else if (e.type === 'folder-done') log.info({ event: e.type, folder: e.folder.source, copied: e.folder.copied, skipped: e.folder.skipped, alreadyPresent: e.folder.alreadyPresent, error: e.folder.error?.code }, 'folder done');
  else if (e.type === 'reconnected') log.info({ event: e.type, side: e.side, folder: e.folder }, 'reconnected');
  else if (e.type === 'folder-start') log.info({ event: e.type, folder: e.folder, toCopy: e.toCopy, alreadyPresent: e.alreadyPresent }, 'folder started');
}

/** The URL and password one side logs in with: the row's own password, or the master login. */
function login(server: BatchServer, user: string, ref: string | undefined, side: 'source' | 'destination', env?: NodeJS.ProcessEnv): { url: string; password: string; authzid?: string; accessToken?: TokenProvider } {
  // The login each secret is for, so that the SASL blobs built from it are scrubbed too.
  const loginOf = (what: string) => {
    const m = server.master;
    if (what === 'password' || !m) return { user };
    return m.method === 'authzid' ? { user: m.user, authzid: user } : { user: `${user}${m.separator}${m.user}` };
  };
  // A PST row names its file; there is no login.
  if (server.protocol === 'pst') return { url: urlOf(server, user), password: '' };
  const secret = (r: string, what: string) => {
    try {
      return resolveSecret(r, env, loginOf(what)).value;
    } catch (err) {
      throw new MigrateError(ERROR_CODES.BATCH_SECRET, `The ${side} ${what} cannot be resolved: ${(err as Error).message}`, { scope: 'mailbox' });
    }
  };
  if (ref !== undefined) return { url: urlOf(server, user), password: secret(ref, 'password') };
  if (server.oauth?.tokenCommand) return { url: urlOf(server, user), password: '', accessToken: tokenFromCommand(server.oauth.tokenCommand, user) };
  if (server.oauth?.credentials) return { url: urlOf(server, user), password: '', accessToken: tokenFromCredentials(server.oauth.credentials.replaceAll('{user}', user.replace(/[/\0]/g, '_')), user) };
  if (server.oauth?.tokenFile) return { url: urlOf(server, user), password: '', accessToken: tokenFromFile(server.oauth.tokenFile.replaceAll('{user}', user.replace(/[/\0]/g, '_')), user) };
  if (server.master?.method === 'authzid') return { url: urlOf(server, server.master.user), password: secret(server.master.password, 'master password'), authzid: user };
  if (server.master) return { url: urlOf(server, `${user}${server.master.separator}${server.master.user}`), password: secret(server.master.password, 'master password') };
  throw new MigrateError(ERROR_CODES.BATCH_SECRET, `No ${side} password for ${user}: give one in the list, or a master login in the configuration.`, { scope: 'mailbox' });
}

/** The daily budgets and the provider-limit park time of a batch's configuration, as migrate takes them. */
export function budgetsOf(config: BatchConfig): Pick<MigrateOptions, 'budgets' | 'providerLimitParkMs'> {
  const limit = (s: BatchServer) => (s.maxBytesPerDay !== undefined || s.maxMessagesPerDay !== undefined ? { maxBytes: s.maxBytesPerDay, maxMessages: s.maxMessagesPerDay } : undefined);
  const source = limit(config.source);
  const destination = limit(config.destination);
  const d = config.defaults;
  return {
    ...(source || destination ? { budgets: { ...(source ? { source } : {}), ...(destination ? { destination } : {}), ...(d.budgetWindowMs ? { windowMs: d.budgetWindowMs } : {}) } } : {}),
    ...(d.providerLimitParkMs ? { providerLimitParkMs: d.providerLimitParkMs } : {}),
  };
}

export function urlOf(server: BatchServer, user: string): string {
  if (server.protocol === 'pst') return `pst:${user}`;
  const host = server.host.includes(':') ? `[${server.host}]` : server.host;
  return `${server.protocol}://${encodeURIComponent(user)}@${host}${server.port ? `:${server.port}` : ''}`;
}

function secondsSince(t0: number): number {
  return Math.round((Date.now() - t0) / 10) / 100;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._@-]+/g, '_').slice(0, 60);
}

/** The batch report as Markdown, for an administrator to forward. */
export function batchMarkdown(r: BatchReport): string {
  const t = r.totals;
  const lines = [
    `# Mailbox migration batch "${r.name}": ${r.status}`,
    '',
    `${t.mailboxes} mailboxes: ${t.complete} complete (${t.alreadyComplete} from an earlier run), ${t.partial} partial, ${t.failed} failed${t.waiting ? `, ${t.waiting} waiting (parked: see resumes)` : ''}${t.interrupted ? `, ${t.interrupted} interrupted` : ''}${t.notStarted ? `, ${t.notStarted} not started` : ''}. ${t.copied} messages copied, ${t.skippedItems} skipped, in ${t.seconds} s with ${r.parallel} at a time (${r.startedAt} to ${r.finishedAt}).`,
    '',
    r.verdict ? `Verdict: ${r.verdict} (the worst of its mailboxes; see "Verdicts" in the README).` : 'Verdict: none yet (some mailboxes did not run to an end).',
    '',
    '| line | source | destination | status | verdict | copied | skipped | code | detail |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.jobs.map((j) => `| ${j.line} | ${cell(j.source)} | ${cell(j.destination)} | ${j.status}${j.alreadyComplete ? ' (earlier run)' : ''}${j.resumeAt ? ` (resumes ${j.resumeAt})` : ''} | ${j.verdict ?? ''} | ${j.copied} | ${j.skipped} | ${j.code ?? ''} | ${cell(j.message ?? '')} |`),
  ];
  if (r.warnings.length) lines.push('', '## Warnings', '', ...r.warnings.map((w) => `- ${w}`));
  lines.push('', 'Error codes are explained in docs/errors.md of mailmover.', '');
  return lines.join('\n');
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').slice(0, 200);
}
