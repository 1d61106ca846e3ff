/**
 * `mailmover batch run`, `batch status` and `worker`.
 */
import { readCredentials } from '../core/oauth-credentials.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { isLoopbackHost } from '../core/endpoint.js';
import { parseListen } from './console-command.js';
// The batch modules (yaml, csv-parse, pg, pg-boss) are loaded by the commands that use them:
// every migrate run would otherwise pay about 0.15 s of start-up for them.
import type { BatchJobResult, BatchReport } from '../batch/run-batch.js';
import type { waitForJobs as waitForJobsFn } from '../batch/queue.js';
import path from 'node:path';
import { defaultStatePath } from '../state/ledger.js';
import { terminalText } from './output.js';
import { BatchProgressView } from './progress.js';
import type { BatchStatus } from '../batch/batch-status.js';
import { EXIT } from './exit-codes.js';
import { openLog, onInterrupt, openRecorded } from './common.js';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { stateHome } from '../state/paths.js';
import { defaultLog, rotateLogs } from './log-file.js';

/**
 * The log of fleet work: --log FILE, or by default a file of its own under
 * $XDG_STATE_HOME/mailmover/logs (the older ones of its kind rotated away), or none with
 * --no-log. The path is printed, so that it can be found after the run.
 */
function fleetLog(flag: string | false | undefined, kind: Parameters<typeof defaultLog>[1]): Logger | undefined {
  if (flag === false) return undefined;
  if (flag) return openLog(flag);
  const dir = path.join(stateHome(), 'logs');
  const { file, kind: pattern } = defaultLog(dir, kind);
  const logger = openLog(file);
  rotateLogs(dir, pattern);
  process.stderr.write(`log: ${file}\n`);
  return logger;
}

export interface WorkerFlags {
  queue: string;
  parallel: number;
  state?: string;
  reportDir?: string;
  maintenanceInterval: number;
  heartbeat: number;
  /** ADDR:PORT of the worker's /metrics. */
  metrics?: string;
  metricsPublic?: boolean;
  /** A file, or false for --no-log. */
  log?: string | false;
  fromOauth?: string;
  toOauth?: string;
}

export async function runWorkerCommand(flags: WorkerFlags): Promise<number> {
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping the mailboxes in hand (they go back to the queue, and resume where they stopped), then quitting');
  // Checked before anything starts: a wrong --metrics is a usage error, not a late surprise.
  const listen = flags.metrics ? metricsAddress(flags.metrics, !!flags.metricsPublic) : undefined;
  const logger = fleetLog(flags.log, { worker: { host: hostname(), pid: process.pid } });
  try {
    const metrics = listen ? new (await import('../batch/worker-metrics.js')).WorkerMetrics() : undefined;
    if (metrics && listen) {
      const served = await metrics.serve(listen.hostname, listen.port, controller.signal);
      const host = listen.hostname.includes(':') ? `[${listen.hostname}]` : listen.hostname;
      process.stderr.write(`worker ${process.pid}: metrics at http://${host}:${served.port}/metrics\n`);
    }
    process.stderr.write(`worker ${process.pid}: waiting for mailboxes\n`);
    logger?.info({ event: 'worker-start', parallel: flags.parallel }, 'worker started');
    const { runWorker } = await import('../batch/queue.js');
    for (const file of [flags.fromOauth, flags.toOauth]) if (file && !file.includes('{user}')) readCredentials(file);
    await runWorker({
      queueUrl: flags.queue,
      ...(flags.fromOauth || flags.toOauth ? { oauth: { ...(flags.fromOauth ? { source: flags.fromOauth } : {}), ...(flags.toOauth ? { destination: flags.toOauth } : {}) } } : {}),
      ...(flags.state ? { statePath: flags.state } : {}),
      reportDir: flags.reportDir ?? path.resolve('mailmover-reports'),
      parallel: flags.parallel,
      maintenanceIntervalSeconds: flags.maintenanceInterval,
      heartbeatSeconds: flags.heartbeat,
      ...(metrics ? { onEvent: (e) => metrics.event(e), gateObserver: (server) => metrics.gate(server) } : {}),
      signal: controller.signal,
      ...(logger ? { logger } : {}),
      onJob: (e) =>
        process.stderr.write(
          e.type === 'start' ? `worker ${process.pid}: started line ${e.line} ${e.source}\n` : `worker ${process.pid}: line ${e.line} ${e.source}: ${e.result?.status} ${e.result?.verdict ?? ''} ${e.result?.code ?? ''}\n`,
        ),
    });
  } finally {
    release();
    logger?.info({ event: 'worker-stop' }, 'worker stopped');
    logger?.flush();
  }
  return EXIT.OK;
}

/** --metrics ADDR:PORT: loopback unless --metrics-public. */
function metricsAddress(text: string, open: boolean): { hostname: string; port: number } {
  const at = parseListen(text);
  if (!open && !isLoopbackHost(at.hostname)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--metrics ${text} is reachable from other machines; give a loopback address (127.0.0.1:PORT), or add --metrics-public to serve the metrics there.`, { scope: 'config' });
  }
  return at;
}

export interface BatchFlags {
  queue?: string;
  jobTimeout: number;
  config: string;
  parallel: number;
  state?: string;
  reportDir?: string;
  name?: string;
  again?: boolean;
  wait?: boolean;
  json?: boolean;
  /** A file, or false for --no-log. */
  log?: string | false;
  notifyEmail?: string[];
  notifySmtp?: string;
  notifySmtpPassword?: string;
  notifyFrom?: string;
  notifyWebhook?: string[];
  fromOauth?: string;
  toOauth?: string;
}

export async function runBatchCommand(listFile: string, flags: BatchFlags): Promise<number> {
  const [{ loadBatchConfig }, { loadMailboxList }, { finishReport, runBatch, urlOf }] = await Promise.all([import('../batch/config.js'), import('../batch/mailbox-list.js'), import('../batch/run-batch.js')]);
  const config = loadBatchConfig(flags.config);
  // --from-oauth/--to-oauth replace the configuration's oauth for that side (checked now, before anything runs).
  if (flags.fromOauth) config.source.oauth = { credentials: flags.fromOauth };
  if (flags.toOauth) config.destination.oauth = { credentials: flags.toOauth };
  for (const file of [flags.fromOauth, flags.toOauth]) if (file && !file.includes('{user}')) readCredentials(file);
  const list = loadMailboxList(listFile);
  for (const w of list.warnings) process.stderr.write(`mailmover: warning: ${w}\n`);
  const { mergeNotify, notifyBatchEnd, printNotifyFailures, resolveNotify, wantsNotify } = await import('../notify/notify.js');
  const notify = resolveNotify(mergeNotify(config.notify, { email: flags.notifyEmail, smtp: flags.notifySmtp, from: flags.notifyFrom, smtpPassword: flags.notifySmtpPassword, webhook: flags.notifyWebhook }));
  const name = flags.name ?? path.basename(listFile);
  const reportDir = flags.reportDir ?? path.join(path.dirname(path.resolve(listFile)), `${path.basename(listFile).replace(/\.csv$/i, '')}-reports`);
  const logger = fleetLog(flags.log, { batch: name });
  logger?.info({ event: 'batch-start', batch: name, mailboxes: list.rows.length, parallel: flags.queue ? undefined : flags.parallel, queued: !!flags.queue }, 'batch started');
  const controller = new AbortController();
  if (flags.queue) {
    const started = Date.now();
    const { enqueueBatch, followBatch, waitForJobs } = await import('../batch/queue.js');
    const entries = await enqueueBatch({ queueUrl: flags.queue, list, config, name, jobTimeoutSeconds: flags.jobTimeout, again: !!flags.again, files: { list: path.resolve(listFile), config: path.resolve(flags.config), reportDir: path.resolve(reportDir) } });
    const ids = entries.flatMap((e) => (e.id ? [e.id] : []));
    const earlier = entries.length - ids.length;
    const joined = entries.filter((e) => e.joined).length;
    process.stderr.write(
      `queued ${ids.length - joined} mailboxes${joined ? `, joined ${joined} still queued or running` : ''}${earlier ? ` (${earlier} complete from an earlier run, not queued again)` : ''}; waiting for workers (mailmover worker --queue ...)\n`,
    );
    const release = onInterrupt(controller, 'no longer waiting; the workers go on with the queued mailboxes (see mailmover batch status --queue ...)');
    // Progress from the statuses the workers record (on any machine), while pg-boss says when all are done.
    const view = flags.json ? undefined : new BatchProgressView(process.stderr, entries.length, !!process.stderr.isTTY);
    for (const e of entries) if (e.alreadyComplete) view?.finished(e.alreadyComplete, true);
    const lineOf = new Map(entries.filter((e) => e.id).map((e) => [`${urlOf(config.source, e.row.sourceUser)}\0${urlOf(config.destination, e.row.destinationUser)}`, e.row.line]));
    const following = new AbortController();
    const follower = view
      ? followBatch(flags.queue, name, following.signal, (j) => {
          const line = lineOf.get(`${j.source}\0${j.destination}`);
          if (line === undefined || j.status === 'queued') return;
          if (j.status === 'running') view.progress(line, j.source, j.toCopy === undefined ? undefined : j.copied, j.toCopy);
          else view.finished({ ...j, line });
        }).catch(() => undefined)
      : undefined;
    let results: Awaited<ReturnType<typeof waitForJobsFn>>;
    try {
      results = await waitForJobs(flags.queue, ids, controller.signal, 1000, name);
    } finally {
      following.abort();
      await follower;
      release();
    }
    const byId = new Map(ids.map((id, i) => [id, results[i]]));
    const jobs = entries.map((e): BatchJobResult => {
      if (e.alreadyComplete) return e.alreadyComplete;
      const row = e.row;
      return byId.get(e.id!) ?? { line: row.line, source: urlOf(config.source, row.sourceUser), destination: urlOf(config.destination, row.destinationUser), status: 'failed', code: ERROR_CODES.QUEUE, message: 'the job failed in the queue after all its retries', copied: 0, skipped: 0 };
    });
    for (const j of jobs) view?.finished(j, j.alreadyComplete);
    view?.end();
    const queued = await finishReport(name, 0, started, jobs, list.warnings, reportDir);
    if (wantsNotify(notify)) printNotifyFailures(await notifyBatchEnd(queued, reportDir, notify, logger, controller.signal.aborted));
    process.stdout.write(flags.json ? JSON.stringify(queued, null, 2) + '\n' : `${queued.status}: ${queued.totals.mailboxes} mailboxes, ${queued.totals.complete} complete, ${queued.totals.partial} partial, ${queued.totals.failed} failed${queued.totals.cancelled ? `, ${queued.totals.cancelled} cancelled` : ''}. Reports: ${reportDir}/batch-report.md\n`);
    return queued.status === 'waiting' ? EXIT.WAITING : queued.status === 'complete' ? EXIT.OK : queued.status === 'partial' ? EXIT.PARTIAL : EXIT.FAILED;
  }
  let report: BatchReport;
  const view = flags.json ? undefined : new BatchProgressView(process.stderr, list.rows.length, !!process.stderr.isTTY);
  const release = onInterrupt(controller, 'stopping every mailbox after the messages in flight; the rest are not started (running the batch again resumes)');
  try {
    report = await runBatch({
      list,
      config,
      name,
      parallel: flags.parallel,
      statePath: flags.state ?? defaultStatePath(),
      reportDir,
      again: !!flags.again,
      waitParked: !!flags.wait,
      signal: controller.signal,
      notify,
      files: { list: path.resolve(listFile), config: path.resolve(flags.config) },
      ...(logger ? { logger } : {}),
      onEvent: (e) => {
        if (e.type === 'job-start') view?.progress(e.line, e.source);
        else if (e.type === 'job-progress') view?.progress(e.line, e.source, e.counters.copied, e.counters.toCopy);
        else if (e.type === 'job-done' || e.type === 'job-skipped') view?.finished(e.job, e.type === 'job-skipped');
      },
    });
  } finally {
    view?.end();
    release();
  }
  const t = report.totals;
  if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    process.stdout.write(
      `${report.status}: ${t.mailboxes} mailboxes, ${t.complete} complete (${t.alreadyComplete} from an earlier run), ${t.partial} partial, ${t.failed} failed` +
        `${t.waiting ? `, ${t.waiting} waiting` : ''}${t.interrupted ? `, ${t.interrupted} interrupted` : ''}${t.notStarted ? `, ${t.notStarted} not started` : ''}; ` +
        `${t.copied} messages copied, ${t.skippedItems} skipped, ${t.seconds} s${report.verdict ? `; verdict ${report.verdict}` : ''}. Reports: ${reportDir}/batch-report.md\n`,
    );
    for (const j of report.jobs.filter((x) => x.status !== 'complete' && x.status !== 'not started')) process.stdout.write(`  line ${j.line}: ${j.source}: ${j.status}${j.resumeAt ? ` until ${j.resumeAt}` : ''} ${j.code ?? ''} ${j.message ?? ''}\n`);
    if (report.status === 'waiting') process.stdout.write('Parked mailboxes go on when the batch is run again after their resume time (or run it with --wait).\n');
  }
  logger?.info({ event: 'batch-end', batch: name, status: report.status, verdict: report.verdict, totals: t }, 'batch ended');
  logger?.flush();
  if (report.status === 'interrupted') return EXIT.INTERRUPTED;
  if (report.status === 'waiting') return EXIT.WAITING;
  return report.status === 'complete' ? EXIT.OK : report.status === 'partial' ? EXIT.PARTIAL : EXIT.FAILED;
}

export async function runBatchStatus(listFile: string, flags: { state?: string; queue?: string; name?: string; json?: boolean }): Promise<number> {
  const [{ loadMailboxList }, { batchStatus }] = await Promise.all([import('../batch/mailbox-list.js'), import('../batch/batch-status.js')]);
  const list = loadMailboxList(listFile);
  // In queue mode the statuses are in the queue's database, wherever the workers keep their ledger.
  const ledger = await openRecorded(flags.queue ?? flags.state ?? defaultStatePath(), 'pass --state FILE, or --queue URL for a queued batch');
  let status: Awaited<ReturnType<typeof batchStatus>>;
  try {
    const probe = flags.queue ? await (await import('../batch/queue.js')).queueProbe(flags.queue) : undefined;
    try {
      status = await batchStatus(list, flags.name ?? path.basename(listFile), ledger, probe);
    } finally {
      await probe?.close();
    }
  } finally {
    await ledger.close();
  }
  if (flags.json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
  else process.stdout.write(batchStatusText(status));
  return EXIT.OK;
}

/** `batch status` for people: a count per status, the verdict, then a line per row of the list. */
function batchStatusText(s: BatchStatus): string {
  const out = [
    `batch "${terminalText(s.batch)}" in ${terminalText(s.ledger)}`,
    // paused and cancelled come only from the console's actions: shown when some mailbox is.
    `${s.mailboxes.length} mailboxes: ${Object.entries(s.counts).filter(([k, n]) => n > 0 || (k !== 'paused' && k !== 'cancelled')).map(([k, n]) => `${n} ${k}`).join(', ')}`,
    `verdict: ${s.verdict ?? 'none yet (some mailboxes did not run to an end)'}`,
  ];
  if (s.notInList > 0) out.push(`(${s.notInList} more recorded for this batch are not in the list)`);
  for (const m of s.mailboxes) {
    const who = m.source ? `${m.source} -> ${m.destination}` : `${m.sourceUser} -> ${m.destinationUser}`;
    const counts = m.status === 'not started' ? '' : `  ${m.copied ?? 0} copied${m.skipped ? `, ${m.skipped} skipped` : ''}`;
    out.push(`${String(m.line).padStart(5)}  ${m.status.padEnd(11)}  ${(m.verdict ?? '-').padEnd(11)}  ${terminalText(who)}${counts}${m.code ? `  ${m.code}` : ''}${m.status === 'waiting' && m.resumeAt ? `  resumes ${m.resumeAt}` : ''}${m.note ? `  (${m.note})` : ''}`);
  }
  return out.join('\n') + '\n';
}
