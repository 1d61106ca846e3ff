#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The mailmover command line. Exit codes by class (README "Exit codes", src/cli/exit-codes.ts):
 * 0 all there, 1 failed, 2 usage, 3 some items skipped, 4 auth, 5 connection/TLS, 6 quota,
 * 70 internal, 130 interrupted.
 */
import { Command, CommanderError, Option } from 'commander';
import { chmod, rename, writeFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import { parseEndpoint, redactUrl } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { mailboxName, migrate, type ScanOptions } from '../migrate.js';
import type { FolderRuleOptions } from '../plan/folder-rules.js';
import { messageFilter, type MessageFilter } from '../plan/message-filter.js';
import { verify, type VerifyReport } from '../verify.js';
import { SourceWatcher } from '../watch.js';
// The batch modules (yaml, csv-parse, pg, pg-boss) are loaded by the commands that use them:
// every migrate run would otherwise pay about 0.15 s of start-up for them.
import type { BatchJobResult, BatchReport } from '../batch/run-batch.js';
import type { waitForJobs as waitForJobsFn } from '../batch/queue.js';
import path from 'node:path';
import type { MigrationReport } from '../report.js';
import { VERSION } from '../version.js';
import { defaultStatePath } from '../state/ledger.js';
import { isPostgresUrl, openState, type StateStore } from '../state/store.js';
import { tokenFromCommand, tokenFromFile, type TokenProvider } from '../core/access-token.js';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { BatchProgressView, createProgressPrinter, formatSummary, formatVerifySummary, terminalText } from './output.js';
import { dateOption, intOption, numberOption, parseSize } from './option-parsers.js';
import { resolvePassword } from './passwords.js';
import { scrub, scrubStream } from '../core/redact.js';
import { openLogFile } from './log-file.js';

import { EXIT, EXIT_HELP, exitForError } from './exit-codes.js';

export { EXIT };

/** The exit code of a finished migration report. */
function exitOfReport(report: MigrationReport): number {
  if (report.status === 'complete') return EXIT.OK;
  if (report.status === 'partial') return EXIT.PARTIAL;
  return exitForError(report.error?.code ?? report.folders.find((f) => f.error)?.error?.code);
}

/**
 * The report as the CLI writes it: a run stopped by Ctrl-C/SIGTERM says `interrupted`, not
 * `failed`, so that a script reading the JSON tells the two apart as the exit code does (130).
 */
function asWritten(report: MigrationReport): MigrationReport {
  if (report.error?.code !== ERROR_CODES.ABORTED) return report;
  return { ...report, status: 'interrupted' as MigrationReport['status'] };
}

/** What to try next for a run that failed before it started (no folder was looked at). */
function hintFor(code: string): string {
  if (code === ERROR_CODES.AUTH_FAILED) return 'check the user in the URL and the password (file, $MAILMOVER_FROM_PASSWORD/$MAILMOVER_TO_PASSWORD or the prompt)';
  if (code === ERROR_CODES.AUTH_TOKEN) return 'check --from/--to-token-file or --from/--to-token-command';
  if (code.startsWith('MM-CONNECT-')) return 'check the host and port in the URL, and that the server is up (--timeout sets the wait)';
  if (code.startsWith('MM-TLS-')) return 'imaps:// for implicit TLS, imap:// for STARTTLS; --from-tls-insecure/--to-tls-insecure skip certificate checks';
  return 'see docs/errors.md';
}

interface ConnectionFlags {
  from: string;
  to: string;
  fromPasswordFile?: string;
  toPasswordFile?: string;
  fromTlsInsecure?: boolean;
  toTlsInsecure?: boolean;
  allowPlaintext?: boolean;
  fromAuthzid?: string;
  toAuthzid?: string;
  fromTokenFile?: string;
  fromTokenCommand?: string;
  toTokenFile?: string;
  toTokenCommand?: string;
  report?: string;
  json?: boolean;
  log?: string;
  timeout: number;
  progress: boolean;
}

interface FolderFlags {
  include: string[];
  exclude: string[];
  map: string[];
  rename: string[];
  destPrefix?: string;
  automap: boolean;
  includeGmailViews?: boolean;
  includeOtherNamespaces?: boolean;
  separatorSubstitute: string;
  maxAge?: number;
  minAge?: number;
  since?: Date;
  before?: Date;
  minSize?: number;
}

interface VerifyFlags extends ConnectionFlags, FolderFlags {
  deep?: boolean;
}

interface MigrateFlags extends ConnectionFlags, FolderFlags {
  dryRun?: boolean;
  dry?: boolean;
  justFolders?: boolean;
  connections: number;
  mergeCollisions?: boolean;
  state?: string | false;
  syncDeletions?: boolean;
  deleteSource?: boolean;
  acceptSizeMismatch?: boolean;
  watch?: string | true;
  maxMessagesPerSecond?: number;
  maxBytesPerSecond?: number;
  retries: number;
  retryDelay: number;
  idleTimeout: number;
  badItemLimit?: number;
  maxMessageSize?: number;
  scan?: string;
  scanPolicy?: 'quarantine' | 'skip' | 'report';
  quarantineFolder: string;
  quarantineDir?: string;
  scanFailOpen?: boolean;
  scanTimeout: number;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/*
 * Option builders, one per help group. Each command takes exactly the groups it uses, so that a
 * list cannot drift between commands (plan and verify pair folders as migrate does) and `plan
 * --help` lists no copy-only option. Commander's optionsGroup() puts the options added after it
 * under that heading in --help.
 */

/**
 * The endpoints and how to log in to them. `--from`/`--to` are checked in a preAction hook
 * (requireEndpoints), not with requiredOption: commander checks required options before unknown
 * ones, so `--form x` would be reported as a missing --from instead of a misspelt option.
 */
function addLoginOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('Endpoints and login:')
    .option('--from <url>', 'source mailbox (required): imap://USER@HOST[:PORT] (STARTTLS when offered) or imaps://USER@HOST[:PORT]')
    .option('--to <url>', 'destination mailbox (required), same form as --from')
    .option('--from-password-file <file>', 'read the source password from FILE (else $MAILMOVER_FROM_PASSWORD, else a prompt)')
    .option('--to-password-file <file>', 'read the destination password from FILE (else $MAILMOVER_TO_PASSWORD, else a prompt)')
    .option('--from-token-file <file>', 'log in to the source with the OAuth 2.0 access token in FILE (XOAUTH2/OAUTHBEARER); read again when refused')
    .option('--from-token-command <command>', 'run COMMAND (sh -c) for the source access token; run again when the token is refused')
    .option('--to-token-file <file>', 'the same for the destination')
    .option('--to-token-command <command>', 'the same for the destination')
    .option('--from-authzid <user>', "log in with the --from URL's user (an admin or proxy account) and act as USER (SASL PLAIN authorization identity)")
    .option('--to-authzid <user>', 'the same for the destination')
    .option('--from-tls-insecure', 'do not verify the source server certificate')
    .option('--to-tls-insecure', 'do not verify the destination server certificate')
    .option('--allow-plaintext', 'allow passwords to travel unencrypted to hosts that are not loopback')
    .addOption(new Option('--timeout <seconds>', 'seconds to wait for a server to accept and greet').default(20).argParser(intOption('--timeout', 1, 3600)));
}

/** A usage error (exit 2) for a missing --from or --to, after unknown options were reported. */
function requireEndpoints(cmd: Command): Command {
  return cmd.hook('preAction', (self) => {
    const o = self.opts<{ from?: string; to?: string }>();
    for (const side of ['from', 'to'] as const) {
      if (!o[side]) self.error(`required option '--${side} <url>' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: EXIT.USAGE });
    }
  });
}

/** Where the outcome goes. */
function addOutputOptions(cmd: Command, progress = true): Command {
  cmd
    .optionsGroup('Output:')
    .option('--report <file>', 'write the JSON report to FILE')
    .option('--json', 'print the JSON report on stdout instead of the summary')
    .option('--log <file>', 'write structured JSON logs (pino) to FILE');
  return progress ? cmd.option('--no-progress', 'no live progress line (and no "connecting" lines) on a terminal') : cmd;
}

/** Which folders and messages, and where they go (migrate, plan and verify pair folders alike). */
function addSelectionOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('What to copy:')
    .option('--include <regex>', 'copy only folders whose path (levels joined by /) matches; repeatable', collect, [])
    .option('--exclude <regex>', 'leave out folders whose path matches; repeatable', collect, [])
    .option('--map <source=destination>', 'put a folder (and its subfolders) at another path, e.g. "Old Mail=Archive/Old"; repeatable', collect, [])
    .option('--rename <s|regex|replacement|flags>', 'rewrite destination paths with a regular expression; repeatable, applied in order', collect, [])
    .option('--dest-prefix <path>', 'place every folder (INBOX too) under this destination folder')
    .option('--no-automap', "do not map Sent/Drafts/Trash/Junk/Archive onto the destination's own special folders")
    .option('--include-gmail-views', "also copy Gmail's All Mail, Important and Starred views (they repeat messages kept in other folders)")
    .option('--include-other-namespaces', "also copy other users' and shared folders the source shows, below their namespace's name")
    .option('--separator-substitute <char>', 'replaces a destination separator (or control character) inside a folder name', '_')
    .addOption(new Option('--max-age <days>', 'only messages received (INTERNALDATE) in the last DAYS days').argParser(numberOption('--max-age', 0, 1e6)))
    .addOption(new Option('--min-age <days>', 'only messages received more than DAYS days ago').argParser(numberOption('--min-age', 0, 1e6)))
    .addOption(new Option('--since <date>', 'only messages received on or after DATE (YYYY-MM-DD, UTC)').argParser(dateOption('--since')))
    .addOption(new Option('--before <date>', 'only messages received before DATE (YYYY-MM-DD, UTC)').argParser(dateOption('--before')))
    .addOption(new Option('--min-size <size>', 'only messages of at least SIZE, e.g. 100K').argParser(parseSize('--min-size')));
}

/** Options of migrate and plan that shape the run (plan uses them to count). */
function addRunOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('Speed and limits:')
    .addOption(new Option('--connections <n>', 'folders copied at once, each with its own connection pair').default(2).argParser(intOption('--connections', 1, 16)))
    .addOption(new Option('--idle-timeout <seconds>', 'seconds of silence on an open connection before it is rebuilt').default(300).argParser(intOption('--idle-timeout', 1, 86400)))
    .optionsGroup('Safety and state:')
    .option('--state <file|postgres-url>', `the state ledger (a SQLite file, or a PostgreSQL database shared by many machines) that makes reruns incremental and crash-safe (default ${defaultStatePath().replace(homedir(), '~')})`)
    .option('--no-state', 'keep no state: every run lists both sides in full')
    .option('--merge-collisions', 'copy even when two source folders map to one destination folder');
}

/** How messages are copied (migrate only). */
function addCopyOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('What to copy:')
    .option('--just-folders', 'create the folder tree (and subscriptions) only; copy no message')
    .optionsGroup('Speed and limits:')
    .addOption(new Option('--max-messages-per-second <n>', 'at most N messages a second from the source and to the destination').argParser(numberOption('--max-messages-per-second', 0.01, 1e6)))
    .addOption(new Option('--max-bytes-per-second <size>', 'at most SIZE (e.g. 10M) of messages a second per server').argParser(parseSize('--max-bytes-per-second')))
    .addOption(new Option('--retries <n>', 'tries per message for a temporary error (busy, locked, throttled) before it is deferred to the end of the folder, and again there').default(3).argParser(intOption('--retries', 1, 20)))
    .addOption(new Option('--retry-delay <seconds>', "first wait before trying again; it doubles each time (a server's suggested backoff is honoured)").default(1).argParser(numberOption('--retry-delay', 0, 600)))
    .addOption(new Option('--max-message-size <size>', 'skip (and report) messages larger than SIZE, e.g. 25M').argParser(parseSize('--max-message-size')))
    .optionsGroup('Safety and state:')
    .option('--dry-run', 'plan and count only; change nothing (same as the plan command)')
    .addOption(new Option('--dry', 'the same as --dry-run (imapsync\'s name)').hideHelp())
    .option('--sync-deletions', 'remove at the destination what was deleted at the source since the last pass (off by default)')
    .option('--delete-source', 'move: remove each source message once its exact copy (size and SHA-256) is proven at the destination')
    .option('--accept-size-mismatch', 'copy a message whose fetched size differs from the size the source listed (servers with inexact RFC822.SIZE)')
    .addOption(new Option('--bad-item-limit <n>', 'fail the mailbox (exit 1) when more than N messages are skipped (default: no limit)').argParser(intOption('--bad-item-limit', 0, 1_000_000_000)))
    .option('--watch [seconds]', 'cutover: keep syncing new mail every SECONDS (default 60) until Ctrl-C')
    .optionsGroup('Scanning:')
    .option('--scan <url>', 'scan every message in transit with ClamAV: clamd://HOST:PORT or clamd:///path/to/clamd.sock')
    .addOption(new Option('--scan-policy <policy>', 'what happens to a flagged message: quarantine (to the quarantine folder), skip (not delivered), report (delivered and reported)').choices(['quarantine', 'skip', 'report']))
    .option('--quarantine-folder <name>', 'destination folder for quarantined messages (levels joined by /)', 'Quarantine')
    .option('--quarantine-dir <dir>', 'with --scan-policy skip: save withheld messages as .eml files here')
    .option('--scan-fail-open', 'when the scanner is unavailable, deliver unscanned (reported) instead of stopping')
    .addOption(new Option('--scan-timeout <seconds>', 'seconds one scan may stay silent before the scanner counts as unavailable').default(30).argParser(intOption('--scan-timeout', 1, 3600)));
}

/** The defaults of the copy-only options, for plan (which does not take them). */
const COPY_DEFAULTS = { retries: 3, retryDelay: 1, quarantineFolder: 'Quarantine', scanTimeout: 30 } as const;

const MIGRATE_EXAMPLES = `
Examples:
  # copy everything; a rerun copies only what is missing
  MAILMOVER_FROM_PASSWORD=... MAILMOVER_TO_PASSWORD=... \\
    mailmover migrate --from imaps://alice@old.example.org --to imaps://alice@new.example.org

  # see the folder mapping and the counts first, change nothing
  mailmover migrate --dry-run --from imaps://alice@old.example.org --to imaps://alice@new.example.org

  # only the last 90 days of mail, leaving out Spam, with a JSON report
  mailmover migrate --from ... --to ... --max-age 90 --exclude '^Spam$' --report alice.json

  # cutover: keep syncing new mail every 2 minutes until Ctrl-C
  mailmover migrate --from ... --to ... --watch 120
`;

/**
 * `--watch`: passes one after another until Ctrl-C, `seconds` apart (polling). Each pass is
 * incremental with the ledger, so a quiet mailbox costs a STATUS per folder. Ctrl-C during a pass
 * stops it after the batch in flight (the ledger stays consistent); during the wait, at once.
 */
async function runWatch(flags: MigrateFlags): Promise<number> {
  const seconds = flags.watch === true || flags.watch === undefined ? 60 : intOption('--watch', 1, 86_400)(flags.watch);
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping after the batch in flight');
  let last: number = EXIT.OK;
  // Asked once: a prompt every pass would stall the watch.
  const passwords = {
    from: await sidePassword('from', flags, parseEndpoint(flags.from, 'from').user),
    to: await sidePassword('to', flags, parseEndpoint(flags.to, 'to').user),
  };
  const watcher = new SourceWatcher({
    from: { url: parseEndpoint(flags.from, 'from'), password: passwords.from, ...sideTokens('from', flags), ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}), tlsInsecure: !!flags.fromTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
    connectTimeoutSeconds: flags.timeout,
  });
  try {
    for (let pass = 1; !controller.signal.aborted; pass++) {
      await watcher.mark(controller.signal);
      const code = await runMigrate(flags, false, controller, passwords);
      if (controller.signal.aborted) break;
      last = code;
      process.stderr.write(`watch: pass ${pass} done (exit ${code}); next on new mail in INBOX (IDLE) or in ${seconds} s (Ctrl-C stops)\n`);
      const woken = await watcher.wait(seconds, controller.signal);
      if (woken) process.stderr.write('watch: new mail at the source\n');
    }
  } finally {
    await watcher.close();
    release();
  }
  return last;
}

async function runMigrate(flags: MigrateFlags, dryRun: boolean, outer?: AbortController, known?: { from: string; to: string }): Promise<number> {
  const from = parseEndpoint(flags.from, 'from');
  const to = parseEndpoint(flags.to, 'to');
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
      ...filterOption(flags),
      limits: { maxMessagesPerSecond: flags.maxMessagesPerSecond, maxBytesPerSecond: flags.maxBytesPerSecond },
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
  report = asWritten(report);
  if (flags.report) await writeReport(flags.report, report);
  if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else if (report.error && report.folders.length === 0 && report.error.code !== ERROR_CODES.ABORTED) {
    // Nothing was started (connect, login, listing): no empty table, no "0 messages copied" line.
    process.stderr.write(`mailmover: ${report.error.code}: ${terminalText(report.error.message)}\nhint: ${hintFor(report.error.code)}\n`);
  } else process.stdout.write(formatSummary(report));
  logger?.flush();
  return exitOfReport(report);
}

interface WorkerFlags {
  queue: string;
  parallel: number;
  state?: string;
  reportDir?: string;
  maintenanceInterval: number;
  log?: string;
}

async function runWorkerCommand(flags: WorkerFlags): Promise<number> {
  const controller = new AbortController();
  const release = onInterrupt(controller, 'finishing the mailboxes in hand, then stopping');
  const logger = openLog(flags.log);
  try {
    process.stderr.write(`worker ${process.pid}: waiting for mailboxes\n`);
    const { runWorker } = await import('../batch/queue.js');
    await runWorker({
      queueUrl: flags.queue,
      ...(flags.state ? { statePath: flags.state } : {}),
      reportDir: flags.reportDir ?? path.resolve('mailmover-reports'),
      parallel: flags.parallel,
      maintenanceIntervalSeconds: flags.maintenanceInterval,
      signal: controller.signal,
      ...(logger ? { logger } : {}),
      onJob: (e) =>
        process.stderr.write(
          e.type === 'start' ? `worker ${process.pid}: started line ${e.line} ${e.source}\n` : `worker ${process.pid}: line ${e.line} ${e.source}: ${e.result?.status} ${e.result?.code ?? ''}\n`,
        ),
    });
  } finally {
    release();
  }
  return EXIT.OK;
}

interface BatchFlags {
  queue?: string;
  jobTimeout: number;
  config: string;
  parallel: number;
  state?: string;
  reportDir?: string;
  name?: string;
  again?: boolean;
  json?: boolean;
  log?: string;
  notifyEmail?: string[];
  notifySmtp?: string;
  notifySmtpPassword?: string;
  notifyFrom?: string;
  notifyWebhook?: string[];
}

async function runBatchCommand(listFile: string, flags: BatchFlags): Promise<number> {
  const [{ loadBatchConfig }, { loadMailboxList }, { finishReport, runBatch, urlOf }] = await Promise.all([import('../batch/config.js'), import('../batch/mailbox-list.js'), import('../batch/run-batch.js')]);
  const config = loadBatchConfig(flags.config);
  const list = loadMailboxList(listFile);
  for (const w of list.warnings) process.stderr.write(`mailmover: warning: ${w}\n`);
  const { mergeNotify, notifyBatchEnd, printNotifyFailures, resolveNotify, wantsNotify } = await import('../notify/notify.js');
  const notify = resolveNotify(mergeNotify(config.notify, { email: flags.notifyEmail, smtp: flags.notifySmtp, from: flags.notifyFrom, smtpPassword: flags.notifySmtpPassword, webhook: flags.notifyWebhook }));
  const name = flags.name ?? path.basename(listFile);
  const reportDir = flags.reportDir ?? path.join(path.dirname(path.resolve(listFile)), `${path.basename(listFile).replace(/\.csv$/i, '')}-reports`);
  const logger = openLog(flags.log);
  const controller = new AbortController();
  if (flags.queue) {
    const started = Date.now();
    const { enqueueBatch, followBatch, waitForJobs } = await import('../batch/queue.js');
    const entries = await enqueueBatch({ queueUrl: flags.queue, list, config, name, jobTimeoutSeconds: flags.jobTimeout, again: !!flags.again });
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
      results = await waitForJobs(flags.queue, ids, controller.signal);
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
    process.stdout.write(flags.json ? JSON.stringify(queued, null, 2) + '\n' : `${queued.status}: ${queued.totals.mailboxes} mailboxes, ${queued.totals.complete} complete, ${queued.totals.partial} partial, ${queued.totals.failed} failed. Reports: ${reportDir}/batch-report.md\n`);
    return queued.status === 'complete' ? EXIT.OK : queued.status === 'partial' ? EXIT.PARTIAL : EXIT.FAILED;
  }
  let report: BatchReport;
  const view = flags.json ? undefined : new BatchProgressView(process.stderr, list.rows.length, !!process.stderr.isTTY);
  const release = onInterrupt(controller, 'stopping every mailbox after the batch in flight');
  try {
    report = await runBatch({
      list,
      config,
      name,
      parallel: flags.parallel,
      statePath: flags.state ?? defaultStatePath(),
      reportDir,
      again: !!flags.again,
      signal: controller.signal,
      notify,
      ...(logger ? { logger } : {}),
      onEvent: (e) => {
        if (e.type === 'job-start') view?.progress(e.line, e.source);
        else if (e.type === 'job-progress') view?.progress(e.line, e.source, e.counters.copied, e.counters.toCopy);
        else view?.finished(e.job, e.type === 'job-skipped');
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
      `${report.status}: ${t.mailboxes} mailboxes, ${t.complete} complete (${t.alreadyComplete} from an earlier run), ${t.partial} partial, ${t.failed} failed; ` +
        `${t.copied} messages copied, ${t.skippedItems} skipped, ${t.seconds} s. Reports: ${reportDir}/batch-report.md\n`,
    );
    for (const j of report.jobs.filter((x) => x.status !== 'complete')) process.stdout.write(`  line ${j.line}: ${j.source}: ${j.status} ${j.code ?? ''} ${j.message ?? ''}\n`);
  }
  logger?.flush();
  return report.status === 'complete' ? EXIT.OK : report.status === 'partial' ? EXIT.PARTIAL : EXIT.FAILED;
}

async function runBatchStatus(listFile: string, flags: { state?: string; queue?: string; name?: string; json?: boolean }): Promise<number> {
  // In queue mode the statuses are in the queue's database, wherever the workers keep their ledger.
  const ledger = await openRecorded(flags.queue ?? flags.state ?? defaultStatePath(), 'pass --state FILE, or --queue URL for a queued batch');
  try {
    const jobs = await ledger.jobs(flags.name ?? path.basename(listFile));
    if (flags.json) process.stdout.write(JSON.stringify(jobs, null, 2) + '\n');
    else {
      const count = (s: string) => jobs.filter((j) => j.status === s).length;
      process.stdout.write(`${jobs.length} mailboxes: ${count('complete')} complete, ${count('partial')} partial, ${count('failed')} failed, ${count('running')} running, ${count('queued')} queued\n`);
      for (const j of jobs) process.stdout.write(`${String(j.line).padStart(5)}  ${j.status.padEnd(8)}  ${j.source} -> ${j.destination}  ${j.copied} copied${j.code ? `  ${j.code}` : ''}\n`);
    }
  } finally {
    await ledger.close();
  }
  return EXIT.OK;
}

/** The structured log (pino JSON lines) when --log FILE was given; password fields are redacted. */
function openLog(file: string | undefined): Logger | undefined {
  if (!file) return undefined;
  // Opened and written once here (MM-LOG-OPEN before anything is done); later write failures are noted once, never fatal.
  // Every line goes through scrub(): a server's text (an echoed login, a raw line imapflow could not parse) is logged too.
  const first = JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: 'log opened', version: VERSION }) + '\n';
  return pino({ base: { pid: process.pid }, redact: { paths: ['password', 'pass', '*.password', '*.pass'], censor: '[redacted]' } }, scrubStream(openLogFile(file, first)));
}

/**
 * Ctrl-C and SIGTERM: the first aborts `controller` after saying `what` will happen, a second
 * one quits at once. Returns the function that removes the handlers.
 */
function onInterrupt(controller: AbortController, what: string): () => void {
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${sig}: ${what} (press Ctrl-C again to quit at once)\n`);
    controller.abort(new MigrateError(ERROR_CODES.ABORTED, `Stopped by ${sig}.`, { scope: 'mailbox' }));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** The password of a side, unless it logs in with OAuth 2.0 tokens (then no password is asked for). */
function sidePassword(side: 'from' | 'to', flags: ConnectionFlags, user: string): Promise<string> {
  const tokens = side === 'from' ? flags.fromTokenFile ?? flags.fromTokenCommand : flags.toTokenFile ?? flags.toTokenCommand;
  // A local archive has no login.
  if (tokens || parseEndpoint(side === 'from' ? flags.from : flags.to, side).archive) return Promise.resolve('');
  return resolvePassword(side, side === 'from' ? flags.fromPasswordFile : flags.toPasswordFile, process.env, user, side === 'from' ? flags.fromAuthzid : flags.toAuthzid);
}

/** The OAuth 2.0 token source of a side, when it has one. */
function sideTokens(side: 'from' | 'to', flags: ConnectionFlags): { accessToken: TokenProvider } | Record<string, never> {
  const user = parseEndpoint(side === 'from' ? flags.from : flags.to, side).user;
  const file = side === 'from' ? flags.fromTokenFile : flags.toTokenFile;
  const command = side === 'from' ? flags.fromTokenCommand : flags.toTokenCommand;
  if (file && command) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--${side}-token-file and --${side}-token-command exclude each other.`, { scope: 'config' });
  if (file) return { accessToken: tokenFromFile(file, user) };
  if (command) return { accessToken: tokenFromCommand(command, user) };
  return {};
}

/**
 * Opens a ledger to read what it recorded: a state file must exist already (opening would create
 * an empty one); a PostgreSQL database is opened as it is.
 */
async function openRecorded(location: string, hint: string): Promise<StateStore> {
  if (!isPostgresUrl(location) && !existsSync(location)) throw new MigrateError(ERROR_CODES.STATE_OPEN, `There is no state file "${location}" (${hint}).`, { scope: 'config' });
  return openState(location);
}

/** `mailmover report`: the audit trail the ledger keeps for a mailbox. */
async function runReport(flags: { from: string; to: string; fromAuthzid?: string; toAuthzid?: string; state?: string; json?: boolean }): Promise<number> {
  // Named as migrate names them in the ledger (with the user acted as, for authzid logins).
  const from = { display: mailboxName(parseEndpoint(flags.from, 'from').display, flags.fromAuthzid) };
  const to = { display: mailboxName(parseEndpoint(flags.to, 'to').display, flags.toAuthzid) };
  const ledger = await openRecorded(flags.state ?? defaultStatePath(), 'no migration with a ledger has run, or pass --state FILE');
  const file = ledger.location;
  try {
    const folders = await ledger.folders(from.display, to.display);
    const skipped = await ledger.skippedItems(from.display, to.display);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ source: from.display, destination: to.display, state: file, folders, skipped }, null, 2) + '\n');
    } else {
      const lines = [`${from.display} -> ${to.display} (${file})`];
      if (folders.length === 0) lines.push('No record of this mailbox.');
      for (const f of folders) {
        lines.push(`${terminalText(f.source)} -> ${terminalText(f.destination)}: ${f.copies} copied${f.skipped ? `, ${f.skipped} skipped` : ''}${f.intents ? `, ${f.intents} in flight when a run stopped` : ''}; last complete pass ${f.syncedAt ?? 'none'}`);
      }
      for (const k of skipped) lines.push(`skipped: "${terminalText(k.folder)}" UID ${k.sourceUid}: ${k.code} ${terminalText(k.reason)}${k.attempts ? ` (${k.attempts} tries)` : ''} at ${k.at}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
  } finally {
    await ledger.close();
  }
  return EXIT.OK;
}

/** The message filter of the flags (--since, --before, --max-age, --min-age, --min-size, --just-folders), when there is one. */
function filterOption(flags: FolderFlags & { justFolders?: boolean }): { messageFilter: MessageFilter } | Record<string, never> {
  const f = messageFilter({ ...(flags.since ? { since: flags.since } : {}), ...(flags.before ? { before: flags.before } : {}), ...(flags.maxAge !== undefined ? { maxAgeDays: flags.maxAge } : {}), ...(flags.minAge !== undefined ? { minAgeDays: flags.minAge } : {}), ...(flags.minSize !== undefined ? { minSize: flags.minSize } : {}), justFolders: !!flags.justFolders });
  if (f?.since && f.before && f.since >= f.before) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `No message can be both received since ${f.since.toISOString()} and before ${f.before.toISOString()}: check --since/--max-age and --before/--min-age.`, { scope: 'config' });
  return f ? { messageFilter: f } : {};
}

/** The folder rule options from the flags. */
function folderOptions(flags: FolderFlags): FolderRuleOptions {
  return {
    include: flags.include,
    exclude: flags.exclude,
    map: flags.map,
    rename: flags.rename,
    ...(flags.destPrefix ? { destPrefix: flags.destPrefix } : {}),
    automap: flags.automap,
    includeGmailViews: !!flags.includeGmailViews,
    includeOtherNamespaces: !!flags.includeOtherNamespaces,
  };
}

async function runVerify(flags: VerifyFlags): Promise<number> {
  const from = parseEndpoint(flags.from, 'from');
  const to = parseEndpoint(flags.to, 'to');
  const fromPassword = await sidePassword('from', flags, from.user);
  const toPassword = await sidePassword('to', flags, to.user);
  const logger = openLog(flags.log);
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping the comparison');
  let report: VerifyReport;
  try {
    report = await verify({
      from: { url: from, password: fromPassword, ...sideTokens('from', flags), ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}), tlsInsecure: !!flags.fromTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      to: { url: to, password: toPassword, ...sideTokens('to', flags), ...(flags.toAuthzid ? { authzid: flags.toAuthzid } : {}), tlsInsecure: !!flags.toTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      deep: !!flags.deep,
      ...filterOption(flags),
      folders: folderOptions(flags),
      separatorSubstitute: flags.separatorSubstitute,
      connectTimeoutSeconds: flags.timeout,
      signal: controller.signal,
      ...(logger ? { logger } : {}),
      onFolder: (f) => {
        if (!flags.json && !process.stderr.isTTY) process.stderr.write(`verified "${terminalText(f.source)}": ${f.state}\n`);
      },
    });
  } finally {
    release();
  }
  if (flags.report) await writeReport(flags.report, report);
  if (!flags.json && report.error && report.folders.length === 0) {
    // Nothing was compared (connect, login, listing): the error alone, not an empty table.
    process.stderr.write(`mailmover: ${report.error.code}: ${terminalText(report.error.message)}\nhint: ${hintFor(report.error.code)}\n`);
  } else process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatVerifySummary(report));
  logger?.flush();
  return report.status === 'match' ? EXIT.OK : report.status === 'failed' ? exitForError(report.error?.code) : EXIT.FAILED;
}

/** The scan options from the flags; scan flags without --scan are a usage error. */
function scanOptions(flags: MigrateFlags): ScanOptions | undefined {
  if (!flags.scan) {
    const stray = [flags.scanPolicy && '--scan-policy', flags.quarantineDir && '--quarantine-dir', flags.scanFailOpen && '--scan-fail-open'].filter(Boolean);
    if (stray.length > 0) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${stray.join(', ')} need --scan.`, { scope: 'config' });
    return undefined;
  }
  return {
    scanner: flags.scan,
    policy: flags.scanPolicy ?? 'quarantine',
    quarantineFolder: flags.quarantineFolder,
    ...(flags.quarantineDir ? { quarantineDir: flags.quarantineDir } : {}),
    failOpen: !!flags.scanFailOpen,
    timeoutSeconds: flags.scanTimeout,
  };
}

/** Writes the report atomically: a crash never leaves half a JSON file behind. */
async function writeReport(file: string, report: MigrationReport | VerifyReport): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // 0600: a report names folders, subjects' Message-IDs and server answers of one person's mailbox.
    await writeFile(tmp, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    throw new MigrateError(ERROR_CODES.REPORT_WRITE, `Cannot write the report to "${file}" (${(err as NodeJS.ErrnoException).code ?? err}).`, { scope: 'mailbox', cause: err });
  }
}

/** Builds the program (exported for tests and for embedding). */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('mailmover')
    .description('Move mailboxes between IMAP servers: every folder, message, flag and date, exactly once.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .addHelpText('after', EXIT_HELP)
    .configureOutput({ outputError: (text, write) => write(`mailmover: ${ERROR_CODES.USAGE}: ${text.replace(/^error: /, '')}`) })
    .exitOverride();
  const migrateCmd = program.command('migrate').description('copy a whole mailbox; a rerun copies only what is missing');
  requireEndpoints(addOutputOptions(addCopyOptions(addRunOptions(addSelectionOptions(addLoginOptions(migrateCmd))))))
    .addHelpText('after', MIGRATE_EXAMPLES + EXIT_HELP)
    .action(async (flags: MigrateFlags) => {
      const dryRun = !!(flags.dryRun || flags.dry);
      setExit(flags.watch && !dryRun ? await runWatch(flags) : await runMigrate(flags, dryRun));
    });
  const planCmd = program.command('plan').description('show the folder mapping and the counts without changing anything');
  requireEndpoints(addOutputOptions(addRunOptions(addSelectionOptions(addLoginOptions(planCmd)))))
    .addHelpText('after', `\nExample:\n  mailmover plan --from imaps://alice@old.example.org --to imaps://alice@new.example.org --include '^Work'\n${EXIT_HELP}`)
    .action(async (flags: MigrateFlags) => setExit(await runMigrate({ ...COPY_DEFAULTS, ...flags }, true)));
  const batch = program.command('batch').description('many mailboxes: a CSV list and a server configuration');
  batch
    .command('run')
    .description('migrate every mailbox of the list, N at a time; a rerun skips the complete ones and resumes the rest')
    .argument('<list.csv>', 'one mailbox per row: source_user[,destination_user,source_password,destination_password]')
    .requiredOption('--config <file.yaml>', 'the servers, admin access, defaults and folder rules')
    .addOption(new Option('--parallel <n>', 'mailboxes at once').default(4).argParser(intOption('--parallel', 1, 256)))
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .option('--report-dir <dir>', 'where the per-mailbox reports and batch-report.json/.md go (default: LIST-reports next to the list)')
    .option('--name <name>', 'the batch name in the ledger (default: the list file name)')
    .option('--again', 'also run the mailboxes an earlier run completed (an incremental pass for each)')
    .option('--queue <postgres-url>', 'scale out: put the mailboxes in this PostgreSQL queue (pg-boss) for `mailmover worker` processes, and wait for them')
    .addOption(new Option('--job-timeout <seconds>', 'with --queue: a mailbox not finished after this long is taken as lost (its worker died) and run again').default(14_400).argParser(intOption('--job-timeout', 1, 7 * 86_400)))
    .option('--json', 'print the batch report as JSON')
    .option('--log <file>', 'write structured JSON logs (pino) to FILE')
    .option('--notify-email <addr[,addr]>', 'when the batch ends, e-mail its summary and reports to these addresses (repeatable)', (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((a) => a.trim()).filter(Boolean)])
    .option('--notify-smtp <url>', 'the SMTP relay: smtp://[USER@]HOST[:PORT] (STARTTLS required unless on loopback) or smtps://... (default smtp://localhost:25)')
    .option('--notify-smtp-password <ref>', 'the SMTP password as env:NAME or file:PATH')
    .option('--notify-from <addr>', 'the sender address of the notification')
    .option('--notify-webhook <url>', 'when the batch ends, POST the JSON batch report to URL (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .addHelpText('after', EXIT_HELP)
    .action(async (list: string, flags: BatchFlags) => setExit(await runBatchCommand(list, flags)));
  program
    .command('worker')
    .description('process mailboxes from a batch queue (batch run --queue) until Ctrl-C; run any number, on any machines')
    .requiredOption('--queue <postgres-url>', 'the PostgreSQL queue (pg-boss)')
    .addOption(new Option('--parallel <n>', 'mailboxes at once on this worker').default(2).argParser(intOption('--parallel', 1, 64)))
    .option('--state <file|postgres-url>', 'the state ledger (default: the queue\'s database, shared by every worker)')
    .option('--report-dir <dir>', 'where per-mailbox reports go (default ./mailmover-reports)')
    .addOption(new Option('--maintenance-interval <seconds>', 'how often jobs of dead workers are looked for').default(60).argParser(intOption('--maintenance-interval', 1, 3600)))
    .option('--log <file>', 'write structured JSON logs (pino) to FILE')
    .addHelpText('after', EXIT_HELP)
    .action(async (flags: WorkerFlags) => setExit(await runWorkerCommand(flags)));
  batch
    .command('status')
    .description('show the recorded status of every mailbox of a batch')
    .argument('<list.csv>', 'the list the batch was run with')
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .option('--queue <postgres-url>', 'a batch run with --queue: read the statuses from the queue\'s database')
    .option('--name <name>', 'the batch name (default: the list file name)')
    .option('--json', 'print JSON')
    .addHelpText('after', EXIT_HELP)
    .action(async (list: string, flags: { state?: string; queue?: string; name?: string; json?: boolean }) => setExit(await runBatchStatus(list, flags)));
  // report takes the same login options as migrate (and ignores the ones it does not need), so one
  // argument set serves migrate, plan, verify and report.
  const reportCmd = program.command('report').description("print the state ledger's record of a mailbox: folders, copies, skipped items and why");
  requireEndpoints(addLoginOptions(reportCmd))
    .optionsGroup('Safety and state:')
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .optionsGroup('Output:')
    .option('--json', 'print JSON instead of text')
    .addHelpText('after', EXIT_HELP)
    .action(async (flags: { from: string; to: string; fromAuthzid?: string; toAuthzid?: string; state?: string; json?: boolean }) => setExit(await runReport(flags)));
  requireEndpoints(addOutputOptions(addSelectionOptions(addLoginOptions(program.command('verify').description('compare source and destination folder by folder; exit 0 only when they match')))))
    .optionsGroup('Verify:')
    .option('--deep', 'also compare the SHA-256 of every message (reads every body on both sides)')
    .addHelpText('after', `\nExample:\n  mailmover verify --from imaps://alice@old.example.org --to imaps://alice@new.example.org --deep\n${EXIT_HELP}`)
    .action(async (flags: VerifyFlags) => setExit(await runVerify(flags)));
  return program;
}

/**
 * `mailmover ... | head`: once the reader has gone, writes fail with EPIPE. That is the reader's
 * choice, not an error: stop quietly (no stack trace) with the exit code reached so far.
 */
function quietOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK);
    throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  quietOnEpipe(process.stdout);
  quietOnEpipe(process.stderr);
  let code: number = EXIT.OK;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; every other parse error is a usage error.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (isMigrateError(err)) {
      process.stderr.write(`mailmover: ${err.code}: ${redactUrl(err.message).split('\n').map(terminalText).join('\n')}\n`);
      return exitForError(err.code, err.scope);
    }
    process.stderr.write(`mailmover: ${ERROR_CODES.INTERNAL}: ${scrub((err as Error)?.stack ?? String(err))}\n`);
    return EXIT.INTERNAL;
  }
  return code;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mailmover: ${ERROR_CODES.INTERNAL}: ${String(err)}\n`);
    process.exitCode = EXIT.INTERNAL;
  },
);
