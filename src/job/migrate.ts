/**
 * The migration facade: connect, plan, create folders, copy folders on a few parallel lanes,
 * report. It wires the parts together and holds no protocol or planning logic of its own.
 */
import { checkSearchKeys, requireSearchableSides } from '../plan/search-keys.js';
import { trySearch } from '../copy/search-probe.js';
import type { Logger } from 'pino';
import { parseEndpoint, type Endpoint } from '../core/endpoint.js';
import { registerSecret } from '../core/redact.js';
import { pathKey } from '../core/mailbox-path.js';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { type Lane } from '../copy/folder-copy.js';
import { copyAll } from '../copy/copy-all.js';
import { dailyGate, type DailyBudgets } from '../copy/daily-budget.js';
import { DAY_MS } from '../state/budget-window.js';
import { createFolders } from '../copy/create-stage.js';
import { surveyFolders } from '../copy/survey-stage.js';
import { DEFAULT_RETRY, ServerGate, backoffDelay, type RetryPolicy } from '../copy/retry-policy.js';
import { sleep } from '../core/sleep.js';
import { ClamdClient, describeAddress, parseScanUrl } from '../scan/clamd.js';
import { ContentScreen, type ScanEngine } from '../scan/content-screen.js';
import { QuarantineDir, QuarantineFolder } from '../scan/quarantine.js';
import { guardMailbox, openState, type MailboxRecord } from '../state/store.js';
import { mailboxIdentities } from '../state/mailbox-key.js';
import { lockMailboxFiles, type MailboxLock } from '../state/mailbox-lock.js';
import type { MigrationEvent } from './events.js';
import { planFolders, type FolderPlanEntry } from '../plan/folder-plan.js';
import { parseFolderRules } from '../plan/folder-rules.js';
import { statusOf, totalsOf, verdictOf, type FolderReport, type MigrationReport } from './report.js';
import { storeFactory } from '../stores/imap/open.js';
import { labelRunFor } from '../stores/gmail/label-run.js';
import { withLabels } from '../stores/gmail/label-view.js';
import type { MailStore } from '../stores/mail-store.js';
import { VERSION } from '../version.js';
import type { HeldMailbox, MigrateOptions, ScanOptions } from './options.js';

export type { EndpointOptions, HeldMailbox, MigrateOptions, ScanOptions } from './options.js';


/** How often a lost connection is rebuilt in a row before the mailbox gives up. */
const MAX_RECONNECT_TRIES = 5;

/**
 * Migrates one mailbox. Resolves with the report in every case except bad options (which throw a
 * {@link MigrateError} with scope 'config'); a failed migration is a report with status 'failed'.
 */
export async function migrate(options: MigrateOptions): Promise<MigrationReport> {
  const from = typeof options.from.url === 'string' ? parseEndpoint(options.from.url, 'from') : options.from.url;
  const to = typeof options.to.url === 'string' ? parseEndpoint(options.to.url, 'to') : options.to.url;
  // Whatever a server echoes back of these (a NO quoting the login) is scrubbed from every error.
  registerSecret(options.from.password, { user: from.user, ...(options.from.authzid ? { authzid: options.from.authzid } : {}) });
  registerSecret(options.to.password, { user: to.user, ...(options.to.authzid ? { authzid: options.to.authzid } : {}) });
  const connections = options.connections ?? 2;
  if (!Number.isInteger(connections) || connections < 1 || connections > 16) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `connections must be a whole number from 1 to 16 (got ${connections}).`, { scope: 'config' });
  }
  const rules = parseFolderRules(options.folders);
  const substitute = options.separatorSubstitute ?? '_';
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (!/^[^\u0000-\u001f\u007f/.\\"*%]$/u.test(substitute)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The separator substitute must be one printable character other than / . \\ " * % (got "${substitute}").`, { scope: 'config' });
  }
  const retry = retryPolicy(options.retry);
  if (options.badItemLimit !== undefined && (!Number.isInteger(options.badItemLimit) || options.badItemLimit < 0)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The bad item limit must be a whole number, 0 or more (got ${options.badItemLimit}).`, { scope: 'config' });
  }
  if (options.maxMessageSize !== undefined && (!Number.isSafeInteger(options.maxMessageSize) || options.maxMessageSize < 1)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The largest message size must be a positive number of bytes (got ${options.maxMessageSize}).`, { scope: 'config' });
  }
  const screen = options.scan && !options.dryRun ? buildScreen(options.scan, retry, options.logger) : undefined;
  if (options.syncDeletions && options.messageFilter) {
    // A filtered pass sees only some messages: the others would look deleted at the source.
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, '--sync-deletions cannot be combined with message filters (--since, --before, --max-age, --min-age, --min-size, --just-folders, --search): messages the filter leaves out would look deleted.', { scope: 'config' });
  }
  if (options.messageFilter?.search !== undefined) {
    checkSearchKeys(options.messageFilter.search);
    requireSearchableSides([{ flag: '--from', endpoint: from }]);
  }
  if (!options.dryRun && budgetsSet(options.budgets) && !options.statePath && !options.stateStore && !options.heldMailbox?.ledger) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'Daily budgets are kept in the state ledger (so that they hold across runs and processes): --max-bytes-per-day and --max-messages-per-day need a state file.', { scope: 'config' });
  }
  if (options.syncDeletions && !options.statePath && !options.stateStore) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'Deletions are synced from the state ledger (what was copied, and is gone at the source now): --sync-deletions needs a state file.', { scope: 'config' });
  }
  // The ledger is opened and the mailbox locked before anything connects: a second run on the
  // same mailbox, or a state file from a newer version, changes nothing.
  // A caller that runs pass after pass (--watch) holds the mailbox for all of them.
  const labels = labelRunFor(options);
  const held = options.dryRun ? undefined : (options.heldMailbox ?? (await holdMailbox(options, from, to)));
  const mailboxState = held?.state;
  const started = Date.now();
  // Stops every lane when the mailbox as a whole fails (quota, scanner, bad item limit), as an
  // abort from the caller does.
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal;
  const log = options.logger;
  const emit = (event: MigrationEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's failure must not change the migration.
    }
  };
  const report: MigrationReport = {
    version: 1,
    tool: `mailmover ${VERSION}`,
    status: 'failed',
    dryRun: !!options.dryRun,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    source: { url: mailboxName(from.display, options.from.authzid) },
    destination: { url: mailboxName(to.display, options.to.authzid) },
    totals: totalsOf([], 0),
    folders: [],
    items: [],
    collisions: [],
    excluded: [],
  };
  if (screen) {
    report.scan = { engine: screen.options.engine.description, policy: screen.options.policy, failOpen: screen.options.failOpen, onUnscanned: screen.options.unscanned, ...screen.stats, verdicts: [] };
  }
  const baseStore = await storeFactory({ ...options.from, endpoint: from }, { ...options.to, endpoint: to }, {
    connectTimeoutSeconds: options.connectTimeoutSeconds,
    idleTimeoutSeconds: options.idleTimeoutSeconds,
    separatorSubstitute: substitute,
    logger: log,
  });
  const makeStore = labels ? (side: 'source' | 'destination') => (side === 'source' ? withLabels(baseStore(side), labels) : baseStore(side)) : baseStore;
  labels?.attachState(mailboxState);
  const ledgerState = labels ? labels.wrapState(mailboxState) : mailboxState;
  // Shared with other mailboxes on the same servers when the caller passes them (batches).
  const gates = options.serverGates ?? { source: new ServerGate(options.limits), destination: new ServerGate(options.limits) };
  const lanes: Lane[] = [];
  /** Lanes hold a connection slot per side; slots are taken source first, so waits never form a cycle. */
  const laneSlots = new Set<Lane>();
  const releaseLane = async (lane: Lane) => {
    await Promise.all([lane.source.close(), lane.dest.close()]);
    lanes.splice(lanes.indexOf(lane), 1);
    if (laneSlots.delete(lane)) {
      gates.source.release();
      gates.destination.release();
    }
  };
  /** Opens a lane; an optional one (an extra lane) takes slots only when they are free now. */
  const openLane = async (optional = false): Promise<Lane> => {
    if (optional) {
      if (!(await gates.source.tryAcquire())) throw new Error('the source connection cap is reached');
      if (!(await gates.destination.tryAcquire())) {
        gates.source.release();
        throw new Error('the destination connection cap is reached');
      }
    } else {
      await gates.source.acquire(signal);
      try {
        await gates.destination.acquire(signal);
      } catch (err) {
        gates.source.release();
        throw err;
      }
    }
    const lane = { source: makeStore('source'), dest: makeStore('destination') };
    lanes.push(lane);
    laneSlots.add(lane);
    // Both sides must log in before anything is written, so a wrong password changes nothing.
    const results = await Promise.allSettled([lane.source.connect(signal), lane.dest.connect(signal)]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await releaseLane(lane);
      throw failed.reason;
    }
    return lane;
  };
  /**
   * Rebuilds one side of a lane after its connection was lost: a new connection (imapflow
   * clients are single-use), tried again with backoff while the server is unreachable. A refused
   * login or a server that stays away ends the mailbox.
   */
  const reconnect = async (lane: Lane, side: 'source' | 'destination'): Promise<void> => {
    const old = side === 'source' ? lane.source : lane.dest;
    await old.close();
    for (let attempt = 1; ; attempt++) {
      await sleep(attempt === 1 ? 0 : backoffDelay(retry, attempt - 1), signal);
      const store = makeStore(side);
      try {
        await store.connect(signal);
        if (side === 'source') lane.source = store;
        else lane.dest = store;
        log?.info({ side, attempt }, 'reconnected');
        return;
      } catch (err) {
        await store.close();
        const e = isMigrateError(err) ? err : undefined;
        if (signal.aborted || !e || e.retry === 'never' || attempt >= MAX_RECONNECT_TRIES) {
          throw e && e.scope === 'mailbox' ? e : new MigrateError(ERROR_CODES.CONNECTION_LOST, `The ${side} could not be reached again: ${(err as Error)?.message ?? String(err)}`, { scope: 'mailbox', cause: err });
        }
        log?.warn({ side, attempt, err: e.message }, 'reconnect failed; trying again');
      }
    }
  };

  try {
    const first = await openLane();
    emit({ type: 'connected', side: 'source', capabilities: capsList(first.source) });
    emit({ type: 'connected', side: 'destination', capabilities: capsList(first.dest) });

    const [sourceListing, destListing] = await Promise.all([first.source.listFolders({ otherNamespaces: rules.includeOtherNamespaces }), first.dest.listFolders()]);
    const [sourceFolders, destFolders] = [sourceListing.folders, destListing.folders];
    const plan = planFolders(sourceFolders, destFolders, first.dest.namespace(), { separatorSubstitute: substitute, rules, reservedNames: first.dest.caps().reservedNames, mailOrChildren: first.dest.caps().mailOrChildren });
    // Keys the source refuses stop the mailbox here, before any folder is looked at, created or copied.
    if (options.messageFilter?.search !== undefined) await trySearch(first.source, plan.entries, options.messageFilter.search, signal);
    report.collisions = plan.collisions.map((c) => ({ destination: c.destName, sources: c.sourceNames }));
    report.excluded = plan.excluded.map((e) => ({ source: e.sourceName, reason: e.reason }));
    if (plan.unmatchedIncludes.length > 0) report.unmatchedIncludes = plan.unmatchedIncludes;
    // Namespaces not listed at all are still named, so that the administrator knows they exist.
    if (!rules.includeOtherNamespaces) for (const prefix of sourceListing.otherNamespaces) report.excluded.push({ source: prefix, reason: 'other-namespace' });
    emit({ type: 'planned', folders: plan.entries.length, toCreate: plan.entries.filter((e) => e.create).length, collisions: plan.collisions.length });
    report.folders = plan.entries.map(emptyFolderReport);
    // A source LIST line that could not be interpreted costs that folder, not the mailbox.
    for (const raw of sourceListing.unreadable) report.folders.push(unreadableFolderReport(raw));
    for (const r of plan.refused) report.folders.push({ ...unreadableFolderReport(r.sourceName), error: r.error.toJSON() });
    // A folder the source knows of but cannot read (a damaged archive) costs that folder.
    for (const b of sourceListing.broken ?? []) report.folders.push({ ...unreadableFolderReport(b.name), error: isMigrateError(b.error) ? b.error.toJSON() : { code: ERROR_CODES.FOLDER_FAILED, message: b.error.message } });
    if (sourceListing.leftOut?.length) report.leftOut = sourceListing.leftOut;
    if (destListing.unreadable.length > 0) {
      log?.warn({ lines: destListing.unreadable }, 'destination LIST lines could not be parsed');
    }
    // In a plan, `created` reads "would be created".
    if (options.dryRun) plan.entries.forEach((e, i) => (report.folders[i]!.created = e.create));
    if (plan.collisions.length > 0 && !options.mergeCollisions && !options.dryRun) {
      const list = plan.collisions.map((c) => `${c.sourceNames.map((s) => `"${s}"`).join(' and ')} -> "${c.destName}"`).join('; ');
      throw new MigrateError(ERROR_CODES.PLAN_COLLISION, `Source folders would be merged at the destination: ${list}. Nothing was copied. Rename one at the source, or pass --merge-collisions.`, { scope: 'mailbox' });
    }

    // The quarantine folder is where flagged messages go: a source folder mapped onto it would
    // mix the user's mail with them (and a rerun could not tell them apart).
    const quarantine = screen?.options.policy === 'quarantine' ? screen.options.quarantineFolder : undefined;
    const intoQuarantine = quarantine ? plan.entries.filter((e) => pathKey(e.destPath) === pathKey(quarantine.path)) : [];
    if (intoQuarantine.length > 0 && !options.mergeCollisions && !options.dryRun) {
      throw new MigrateError(
        ERROR_CODES.PLAN_COLLISION,
        `The source folder "${intoQuarantine[0]!.sourceName}" would be merged with the quarantine folder "${quarantine!.name}" at the destination. Nothing was copied. Pass another --quarantine-folder, or --merge-collisions to copy into it anyway.`,
        { scope: 'mailbox' },
      );
    }

    if (!options.dryRun) await createFolders(first.dest, plan, report.folders, emit, log);

    if (labels?.active) report.gmailLabels = labels.report();
    const survey = await surveyFolders(first.source, first.dest, plan, report.folders, ledgerState, signal, log);
    await copyAll(plan, report, {
      daily: held?.ledger ? dailyGate(held.ledger, options.budgets, report.source.url, report.destination.url) : undefined,
      survey,
      lanes,
      openLane,
      releaseLane,
      gates,
      reconnect,
      connections,
      options,
      retry,
      screen,
      state: ledgerState,
      signal,
      stop: (err) => stopper.abort(err),
      emit,
      log,
    });
  } catch (err) {
    const e = isMigrateError(err)
      ? err
      : options.signal?.aborted
        ? new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err })
        : new MigrateError(ERROR_CODES.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}`, { scope: 'mailbox', cause: err });
    report.error = e.toJSON();
    if (e.code === ERROR_CODES.PROVIDER_LIMIT && !report.error.resumeAt) {
      const resumeAt = new Date(Date.now() + (options.providerLimitParkMs ?? DAY_MS)).toISOString();
      report.error = { ...report.error, message: `${e.message}; the mailbox is parked until ${resumeAt}`, resumeAt };
    }
    if (report.error.resumeAt) log?.warn({ code: e.code, err: report.error.message, resumeAt: report.error.resumeAt }, 'mailbox parked');
    else log?.error({ code: e.code, err: e.message }, 'migration failed');
  } finally {
    await Promise.all([...lanes].map((l) => releaseLane(l)));
    if (!options.heldMailbox) await held?.release(log);
  }
  // Folders the run never reached (it failed or was stopped before them).
  if (!options.dryRun) for (const f of report.folders) if (!f.state && !f.noSelect) f.state = f.error ? 'failed' : 'not started';
  if (screen && report.scan) Object.assign(report.scan, screen.stats);
  const finished = Date.now();
  report.finishedAt = new Date(finished).toISOString();
  report.totals = totalsOf(report.folders, Math.round((finished - started) / 10) / 100, report.items, report.scan);
  if (report.leftOut?.length) report.totals.leftOut = report.leftOut.reduce<Record<string, number>>((by, l) => ({ ...by, [l.kind]: (by[l.kind] ?? 0) + l.count }), {});
  report.status = statusOf(report);
  // A run that was stopped has no verdict yet: the rerun that finishes it gives one.
  if (report.status !== 'interrupted' && report.status !== 'waiting') report.verdict = verdictOf(report);
  return report;
}

function capsList(store: MailStore): string[] {
  return Object.entries(store.caps())
    .filter(([, v]) => v !== false && v !== undefined && !Array.isArray(v))
    .map(([k, v]) => (v === true ? k : `${k}=${v}`));
}

function emptyFolderReport(e: Pick<FolderPlanEntry, 'sourceName' | 'destName' | 'renamed' | 'noSelect' | 'mappedBy' | 'implicit'> & { renameReasons?: string[] }): FolderReport {
  return {
    source: e.sourceName,
    destination: e.destName,
    sourceCount: 0,
    sourceBytes: 0,
    copied: 0,
    copiedBytes: 0,
    alreadyPresent: 0,
    skipped: 0,
    vanished: 0,
    created: false,
    renamed: e.renamed,
    ...(e.renameReasons?.length ? { renameReasons: e.renameReasons } : {}),
    noSelect: e.noSelect,
    ...(e.mappedBy ? { mappedBy: e.mappedBy } : {}),
    ...(e.implicit ? { implicit: true as const } : {}),
  };
}

/** The report entry of a source folder whose LIST line could not be interpreted. */
function unreadableFolderReport(raw: string): FolderReport {
  return {
    ...emptyFolderReport({ sourceName: raw, destName: '', renamed: false, noSelect: false, mappedBy: undefined, implicit: false }),
    error: { code: ERROR_CODES.LIST_UNPARSED, message: `The source listed a folder in a form that could not be parsed; it was not copied: ${raw}`, serverResponse: raw },
  };
}


/**
 * Opens the ledger (unless the caller passes one) and locks the mailbox, before anything
 * connects: a second run on the same mailbox, or a state file from a newer version, changes
 * nothing. Without a ledger (--no-state) the machine's lock files alone keep a second run off.
 * `migrate` does this for itself; a caller that runs passes one after another (--watch) holds the
 * mailbox once for all of them (MigrateOptions.heldMailbox), so no other run slips in between.
 */
export async function holdMailbox(options: Pick<MigrateOptions, 'from' | 'to' | 'statePath' | 'stateStore'>, from?: Endpoint, to?: Endpoint): Promise<HeldMailbox> {
  const f = from ?? (typeof options.from.url === 'string' ? parseEndpoint(options.from.url, 'from') : options.from.url);
  const t = to ?? (typeof options.to.url === 'string' ? parseEndpoint(options.to.url, 'to') : options.to.url);
  const ownLedger = !options.stateStore && options.statePath ? await openState(options.statePath) : undefined;
  const ledger = options.stateStore ?? ownLedger;
  const source = mailboxName(f.display, options.from.authzid);
  const destination = mailboxName(t.display, options.to.authzid);
  let state: MailboxRecord | undefined;
  let lockFiles: MailboxLock | undefined;
  try {
    const locked = await ledger?.lockMailbox(source, destination);
    state = locked && guardMailbox(locked, ledger!.location);
    if (!ledger) lockFiles = lockMailboxFiles(await mailboxIdentities(source, destination), `${source} -> ${destination}`);
  } catch (err) {
    await ownLedger?.close();
    throw err;
  }
  return {
    state,
    ledger,
    async release(log?: Logger) {
      await Promise.resolve(state?.release()).catch((err: unknown) => log?.warn({ err: (err as Error).message }, 'the mailbox lock could not be given back'));
      lockFiles?.release();
      await Promise.resolve(ownLedger?.close()).catch(() => undefined);
    },
  };
}

/** A mailbox's name in reports and the ledger: the URL, and the user acted as when it is not the URL's. */
export function mailboxName(display: string, authzid: string | undefined): string {
  return authzid ? `${display} (as ${authzid})` : display;
}

/** The retry policy from the caller's partial one, checked. */
function retryPolicy(given: Partial<RetryPolicy> | undefined): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...given };
  if (!Number.isInteger(p.attempts) || p.attempts < 1 || p.attempts > 20) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `Retries must be a whole number from 1 to 20 (got ${p.attempts}).`, { scope: 'config' });
  }
  if (!(p.baseDelayMs >= 0) || !(p.maxDelayMs >= p.baseDelayMs)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The retry delay must be 0 or more and not above its maximum (got ${p.baseDelayMs} ms).`, { scope: 'config' });
  }
  return p;
}

/** The scanning screen from the scan options, checked before anything connects. */
function buildScreen(scan: ScanOptions, retry: RetryPolicy, logger: Logger | undefined): ContentScreen {
  const policy = scan.policy ?? 'quarantine';
  if (!['quarantine', 'skip', 'report'].includes(policy)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The scan policy must be quarantine, skip or report (got "${policy}").`, { scope: 'config' });
  }
  if (scan.quarantineDir !== undefined && policy !== 'skip') {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `A quarantine directory is for --scan-policy skip (the policy is "${policy}").`, { scope: 'config' });
  }
  const unscanned = scan.unscanned ?? 'hold';
  if (!['hold', 'deliver'].includes(unscanned)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The action for unscanned messages must be hold or deliver (got "${unscanned}").`, { scope: 'config' });
  }
  const timeout = scan.timeoutSeconds ?? 30;
  if (!(timeout > 0)) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The scan timeout must be more than 0 seconds (got ${timeout}).`, { scope: 'config' });
  let engine: ScanEngine;
  if (typeof scan.scanner === 'object' && 'scan' in scan.scanner) {
    engine = scan.scanner;
  } else {
    const address = typeof scan.scanner === 'string' ? parseScanUrl(scan.scanner) : scan.scanner;
    const client = new ClamdClient(address, { timeoutMs: timeout * 1000 });
    engine = { description: describeAddress(address), scan: (body, s) => client.scan(body, s) };
  }
  return new ContentScreen({
    engine,
    policy,
    failOpen: !!scan.failOpen,
    unscanned,
    quarantineFolder: new QuarantineFolder(scan.quarantineFolder ?? 'Quarantine'),
    quarantineDir: scan.quarantineDir !== undefined ? new QuarantineDir(scan.quarantineDir) : undefined,
    retry,
    ...(scan.attempts !== undefined ? { attempts: scan.attempts } : {}),
    logger,
  });
}

function budgetsSet(b: DailyBudgets | undefined): boolean {
  return [b?.source, b?.destination].some((l) => l?.maxBytes !== undefined || l?.maxMessages !== undefined);
}
