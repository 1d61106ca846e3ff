/**
 * `mailmover migrate` and `plan` (a dry run), and `--watch` (passes until Ctrl-C).
 */
import { parseEndpoint } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { holdMailbox, migrate, type HeldMailbox } from '../job/migrate.js';
import type { MigrateOptions } from '../job/options.js';
import { presetByName } from '../core/presets.js';
import { sleep } from '../core/sleep.js';
import { SourceWatcher } from '../job/watch.js';
import type { MigrationReport } from '../job/report.js';
import { VERSION } from '../version.js';
import { defaultStatePath } from '../state/ledger.js';
import { formatSummary, terminalText } from './output.js';
import { createProgressPrinter } from './progress.js';
import { intOption } from './option-parsers.js';
import { EXIT } from './exit-codes.js';
import { type MigrateFlags, filterOption, folderOptions, scanOptions } from './options.js';
import { exitOfReport, hintFor, openLog, onInterrupt, sidePassword, sideTokens, writeReport } from './common.js';

/**
 * `--watch`: passes one after another until Ctrl-C, `seconds` apart (polling). Each pass is
 * incremental with the ledger, so a quiet mailbox costs a STATUS per folder. Ctrl-C during a pass
 * stops it after the batch in flight (the ledger stays consistent); during the wait, at once.
 */
export async function runWatch(flags: MigrateFlags): Promise<number> {
  const seconds = flags.watch === true || flags.watch === undefined ? 60 : intOption('--watch', 1, 86_400)(flags.watch);
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping after the batch in flight');
  let last: number = EXIT.OK;
  // Asked once: a prompt every pass would stall the watch.
  const passwords = {
    from: await sidePassword('from', flags, parseEndpoint(flags.from, 'from').user),
    to: await sidePassword('to', flags, parseEndpoint(flags.to, 'to').user),
  };
  // Held from the first pass to the last: between passes no other run may take the mailbox.
  const held = await holdMailbox({
    from: { url: flags.from, password: '', ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}) },
    to: { url: flags.to, password: '', ...(flags.toAuthzid ? { authzid: flags.toAuthzid } : {}) },
    ...(flags.state !== false ? { statePath: flags.state ?? defaultStatePath() } : {}),
  });
  const watcher = new SourceWatcher({
    from: { url: parseEndpoint(flags.from, 'from'), password: passwords.from, ...sideTokens('from', flags), ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}), tlsInsecure: !!flags.fromTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
    connectTimeoutSeconds: flags.timeout,
  });
  try {
    for (let pass = 1; !controller.signal.aborted; pass++) {
      await watcher.mark(controller.signal);
      lastResume.at = undefined;
      const code = await runMigrate(flags, false, controller, passwords, held);
      if (controller.signal.aborted) break;
      last = code;
      process.stderr.write(`watch: pass ${pass} done (exit ${code}); next on new mail in INBOX (IDLE) or in ${seconds} s (Ctrl-C stops)\n`);
      // Parked (a daily budget, a provider's limit): the next pass waits for the resume time.
      const resumeAt = lastResume.at;
      if (resumeAt !== undefined && resumeAt > Date.now()) {
        process.stderr.write(`watch: the mailbox is parked until ${new Date(resumeAt).toISOString()}; the next pass starts then\n`);
        await sleep(resumeAt - Date.now(), controller.signal).catch(() => undefined);
        continue;
      }
      const woken = await watcher.wait(seconds, controller.signal);
      if (woken) process.stderr.write('watch: new mail at the source\n');
    }
  } finally {
    await watcher.close();
    await held.release();
    release();
  }
  return last;
}

export async function runMigrate(flags: MigrateFlags, dryRun: boolean, outer?: AbortController, known?: { from: string; to: string }, held?: HeldMailbox): Promise<number> {
  const from = parseEndpoint(flags.from, 'from');
  const to = parseEndpoint(flags.to, 'to');
  if (flags.deleteSource && from.archive?.kind === 'mbox' && from.archive.labels) {
    // A Takeout file read by its labels holds a message in several folders: refused before anything is copied.
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--delete-source: ${from.display} is a Gmail Takeout file read by its labels, where a message is in several folders; mailmover does not remove messages from it. Copy without --delete-source.`, { scope: 'config' });
  }
  if (flags.deleteSource && from.archive?.kind === 'pst') {
    // A PST or OST source is only read (mailmover never writes Outlook's format): refused before anything is copied.
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--delete-source: ${from.display} is a PST source, which mailmover only reads. Copy without --delete-source, then remove the file yourself once verify agrees.`, { scope: 'config' });
  }
  const fromPassword = known?.from ?? (await sidePassword('from', flags, from.user));
  const toPassword = known?.to ?? (await sidePassword('to', flags, to.user));
  const logger = openLog(flags.log);
  const controller = outer ?? new AbortController();
  // Under --watch the watch loop owns the signals.
  const release = outer ? () => undefined : onInterrupt(controller, 'stopping after the batch in flight');

  const interactive = !!process.stderr.isTTY && flags.progress;
  const printer = flags.json ? undefined : createProgressPrinter(process.stderr, interactive, dryRun);
  // On a terminal a slow login would otherwise look like a hang.
  if (printer && interactive) process.stderr.write(`connecting to source ${terminalText(from.display)} and destination ${terminalText(to.display)}\n`);
  logger?.info({ from: from.display, to: to.display, dryRun, version: VERSION }, 'migration started');
  let report: MigrationReport;
  try {
    report = await migrate({
      from: { url: from, password: fromPassword, ...sideTokens('from', flags), ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}), tlsInsecure: !!flags.fromTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      to: { url: to, password: toPassword, ...sideTokens('to', flags), ...(flags.toAuthzid ? { authzid: flags.toAuthzid } : {}), tlsInsecure: !!flags.toTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      dryRun,
      ...(held ? { heldMailbox: held } : {}),
      connections: flags.connections,
      mergeCollisions: !!flags.mergeCollisions,
      separatorSubstitute: flags.separatorSubstitute,
      folders: folderOptions(flags),
      connectTimeoutSeconds: flags.timeout,
      idleTimeoutSeconds: flags.idleTimeout,
      ...(flags.state !== false ? { statePath: flags.state ?? defaultStatePath() } : {}),
      syncDeletions: !!flags.syncDeletions,
      deleteSource: !!flags.deleteSource,
      acceptSizeMismatch: !!flags.acceptSizeMismatch,
      ...(flags.gmailLabels !== undefined ? { gmailLabels: flags.gmailLabels } : {}),
      ...(flags.labelPriority !== undefined ? { labelPriority: flags.labelPriority } : {}),
      ...filterOption(flags),
      limits: { maxMessagesPerSecond: flags.maxMessagesPerSecond, maxBytesPerSecond: flags.maxBytesPerSecond },
      ...budgetOptions(flags),
      retry: { attempts: flags.retries, baseDelayMs: Math.round(flags.retryDelay * 1000) },
      ...(flags.badItemLimit !== undefined ? { badItemLimit: flags.badItemLimit } : {}),
      ...(flags.maxMessageSize !== undefined ? { maxMessageSize: flags.maxMessageSize } : {}),
      ...(scanOptions(flags) ? { scan: scanOptions(flags)! } : {}),
      signal: controller.signal,
      ...(logger ? { logger } : {}),
      onEvent: (e) => {
        printer?.onEvent(e);
        if (logger && e.type !== 'progress') logger.info({ event: e }, e.type);
      },
    });
  } finally {
    printer?.finish();
    release();
  }
  logger?.info({ status: report.status, totals: report.totals, error: report.error }, 'migration finished');
  lastResume.at = report.status === 'waiting' && report.error?.resumeAt ? Date.parse(report.error.resumeAt) : undefined;
  if (flags.report) await writeReport(flags.report, report);
  if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else if (report.error && report.folders.length === 0 && report.error.code !== ERROR_CODES.ABORTED) {
    // Nothing was started (connect, login, listing): no empty table, no "0 messages copied" line.
    process.stderr.write(`mailmover: ${report.error.code}: ${terminalText(report.error.message)}\nhint: ${hintFor(report.error.code)}\n`);
  } else process.stdout.write(formatSummary(report));
  logger?.flush();
  return exitOfReport(report);
}

/** The resume time of the last pass that was parked (for --watch). */
const lastResume: { at: number | undefined } = { at: undefined };

/**
 * The daily budgets of the flags (the same for both accounts), under the presets' published
 * limits (the source preset's download budget, the destination preset's upload budget), which
 * apply only with a state ledger (the budgets are kept there).
 */
export function budgetOptions(flags: MigrateFlags): Pick<MigrateOptions, 'budgets' | 'providerLimitParkMs'> {
  const given = flags.maxBytesPerDay !== undefined || flags.maxMessagesPerDay !== undefined ? { maxBytes: flags.maxBytesPerDay, maxMessages: flags.maxMessagesPerDay } : undefined;
  const preset = (name: string | undefined, key: 'downloadBytes' | 'uploadBytes') => {
    const bytes = name && flags.state !== false ? presetByName(name.toLowerCase())?.dailyBudget?.[key] : undefined;
    return bytes !== undefined ? { maxBytes: bytes } : undefined;
  };
  const source = given ?? preset(flags.fromPreset, 'downloadBytes');
  const destination = given ?? preset(flags.toPreset, 'uploadBytes');
  return {
    ...(source || destination ? { budgets: { ...(source ? { source } : {}), ...(destination ? { destination } : {}), ...(flags.budgetWindow ? { windowMs: flags.budgetWindow } : {}) } } : {}),
    ...(flags.providerLimitPark ? { providerLimitParkMs: flags.providerLimitPark } : {}),
  };
}
