/**
 * The migration facade: connect, plan, create folders, copy folders on a few parallel lanes,
 * report. It wires the parts together and holds no protocol or planning logic of its own.
 */
import type { MessageFilter } from './plan/message-filter.js';
import type { Logger } from 'pino';
import { parseEndpoint, type Endpoint } from './core/endpoint.js';
import { registerSecret } from './core/redact.js';
import { pathKey } from './core/mailbox-path.js';
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode } from './core/errors.js';
import { ByteBudget } from './copy/byte-budget.js';
import { copyFolder, type Lane } from './copy/folder-copy.js';
import { FOLDER_RECONNECTS } from './copy/folder-run.js';
import { SizeTrust } from './copy/size-trust.js';
import { DEFAULT_RETRY, ServerGate, backoffDelay, type RetryPolicy, type ServerLimits } from './copy/retry-policy.js';
import { sleep } from './core/sleep.js';
import { ClamdClient, describeAddress, parseScanUrl, type ClamdAddress } from './scan/clamd.js';
import { ContentScreen, type ScanEngine, type ScanPolicy } from './scan/content-screen.js';
import { QuarantineDir, QuarantineFolder } from './scan/quarantine.js';
import { guardMailbox, openState, type MailboxRecord, type StateStore } from './state/store.js';
import { mailboxIdentities } from './state/mailbox-key.js';
import { lockMailboxFiles, type MailboxLock } from './state/mailbox-lock.js';
import type { EventListener, MigrationEvent, ProgressCounters } from './events.js';
import { createBelow, planFolders, type FolderPlan, type FolderPlanEntry } from './plan/folder-plan.js';
import { parseFolderRules, type FolderRuleOptions } from './plan/folder-rules.js';
import { statusOf, totalsOf, verdictOf, type FolderReport, type MigrationReport, type ScanVerdictRecord, type SkippedItem } from './report.js';
import { storeFactory } from './stores/imap/open.js';
import type { MailStore, MessageMeta } from './stores/mail-store.js';
import { VERSION } from './version.js';

/** One side of a migration. */
export interface EndpointOptions {
  /** `imap://USER@HOST[:PORT]` or `imaps://USER@HOST[:PORT]`, or an already parsed endpoint. */
  url: string | Endpoint;
  password: string;
  /**
   * Log in with the URL's user and password (an admin or proxy account) and act as this user:
   * SASL PLAIN with an authorization identity (Dovecot master users, Cyrus admins).
   */
  authzid?: string;
  /**
   * Log in with OAuth 2.0 access tokens (XOAUTH2/OAUTHBEARER, as Gmail and Microsoft 365 want):
   * a function giving a token, asked for a fresh one when the server refuses it (see
   * tokenFromFile, tokenFromCommand). The password is then not used.
   */
  accessToken?: (fresh: boolean) => Promise<string>;
  /** Do not verify the server's certificate (test servers only). */
  tlsInsecure?: boolean;
  /** Allow the password to travel unencrypted to a host that is not loopback. */
  allowPlaintext?: boolean;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  from: EndpointOptions;
  to: EndpointOptions;
  /** Plan and count only; change nothing at the destination. */
  dryRun?: boolean;
  /** Folders copied at once, each with its own pair of connections (default 2). */
  connections?: number;
  /** Bytes of message bodies per batch (default 4 MiB; a larger message is sent alone). */
  batchBytes?: number;
  /**
   * Bytes of message bodies held in memory at once, over all connections (default 16 MiB).
   * Peak memory follows this, not the size of folders; a message larger than it travels alone.
   */
  memoryBudgetBytes?: number;
  /** Messages per batch (default 100). */
  batchMessages?: number;
  /** Copy even when two source folders map to one destination folder (they are merged). */
  mergeCollisions?: boolean;
  /** Which folders to copy and where to put them (include/exclude, map, rename, prefix, automap). */
  folders?: FolderRuleOptions;
  /** Replaces the destination's separator inside a folder name (default '_'). */
  separatorSubstitute?: string;
  /** Seconds to wait for a server to accept and greet (default 20). */
  connectTimeoutSeconds?: number;
  /** Seconds of silence on an open connection before it is taken as lost and rebuilt (default 300). */
  idleTimeoutSeconds?: number;
  /** How items that fail for a temporary reason are tried again (default: 3 tries a pass, 1 s doubling). */
  retry?: Partial<RetryPolicy>;
  /** The mailbox fails (status 'failed') as soon as more than this many items are skipped (default: no limit). */
  badItemLimit?: number;
  /** Messages larger than this many bytes are not copied; they are skipped and reported. */
  maxMessageSize?: number;
  /** Scan every message in transit before it is appended. */
  scan?: ScanOptions;
  /**
   * The state ledger: a SQLite file, or a PostgreSQL URL (shared by many machines). Reruns look
   * only at what changed, crashes are recovered exactly, skipped items are kept as an audit
   * trail. Without it (the library's default) every run plans each folder from both listings.
   * The CLI uses defaultStatePath() unless --no-state.
   */
  statePath?: string;
  /** An open ledger to use instead of opening `statePath` (batches share one); left open. */
  stateStore?: StateStore;
  /**
   * Pauses shared by everything that talks to the same servers: a throttling answer to one
   * mailbox of a batch slows every mailbox on that server (default: this migration's own).
   */
  serverGates?: { source: ServerGate; destination: ServerGate };
  /** Limits for both servers of this migration (ignored when serverGates is given). */
  limits?: ServerLimits;
  /** Remove at the destination what was deleted at the source since the last pass (uses the ledger; default off). */
  syncDeletions?: boolean;
  /** A move: remove each source message once its exact copy (size and SHA-256) is proven at the destination (default off). */
  deleteSource?: boolean;
  /**
   * Copy a fetched body whose size differs from the size the source listed (default off: such a
   * body is taken as cut short or not the listed message, and skipped with MM-FETCH-MISMATCH).
   * For servers known to report RFC822.SIZE inexactly; the identity check still applies.
   */
  acceptSizeMismatch?: boolean;
  /** Copy only the source messages this lets in (dates, sizes, or none: the folder tree only); see plan/message-filter.ts. */
  messageFilter?: MessageFilter;
  signal?: AbortSignal;
  onEvent?: EventListener;
  logger?: Logger;
}

/** Scanning in transit (see src/scan/content-screen.ts). */
export interface ScanOptions {
  /** `clamd://HOST:PORT` or `clamd:///path/to/clamd.sock`, or an engine of the caller's own. */
  scanner: string | ClamdAddress | ScanEngine;
  /** What happens to a flagged message (default 'quarantine'). */
  policy?: ScanPolicy;
  /** Quarantine folder at the destination, '/' between levels (default 'Quarantine'). */
  quarantineFolder?: string;
  /** Directory where withheld messages are saved as .eml (policy 'skip'). */
  quarantineDir?: string;
  /** Deliver unscanned when the scanner is unavailable, instead of stopping. */
  failOpen?: boolean;
  /** Seconds one scan may stay silent before it counts as failed (default 30). */
  timeoutSeconds?: number;
  /** Tries of one scan before the scanner counts as unavailable (default 6). */
  attempts?: number;
}

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
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, '--sync-deletions cannot be combined with message filters (--since, --before, --max-age, --min-age, --min-size, --just-folders): messages the filter leaves out would look deleted.', { scope: 'config' });
  }
  if (options.syncDeletions && !options.statePath && !options.stateStore) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'Deletions are synced from the state ledger (what was copied, and is gone at the source now): --sync-deletions needs a state file.', { scope: 'config' });
  }
  // The ledger is opened and the mailbox locked before anything connects: a second run on the
  // same mailbox, or a state file from a newer version, changes nothing.
  const ownLedger = !options.stateStore && options.statePath && !options.dryRun ? await openState(options.statePath) : undefined;
  const ledger = options.dryRun ? undefined : (options.stateStore ?? ownLedger);
  let mailboxState: MailboxRecord | undefined;
  // Without a ledger (--no-state), the machine's lock files alone keep a second run off the mailbox.
  let lockFiles: MailboxLock | undefined;
  try {
    const source = mailboxName(from.display, options.from.authzid);
    const destination = mailboxName(to.display, options.to.authzid);
    const locked = await ledger?.lockMailbox(source, destination);
    mailboxState = locked && guardMailbox(locked, ledger!.location);
    if (!ledger && !options.dryRun) lockFiles = lockMailboxFiles(await mailboxIdentities(source, destination), `${source} -> ${destination}`);
  } catch (err) {
    await ownLedger?.close();
    throw err;
  }
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
    report.scan = { engine: screen.options.engine.description, policy: screen.options.policy, failOpen: screen.options.failOpen, ...screen.stats, verdicts: [] };
  }
  const makeStore = storeFactory({ ...options.from, endpoint: from }, { ...options.to, endpoint: to }, {
    connectTimeoutSeconds: options.connectTimeoutSeconds,
    idleTimeoutSeconds: options.idleTimeoutSeconds,
    separatorSubstitute: substitute,
    logger: log,
  });
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
    const plan = planFolders(sourceFolders, destFolders, first.dest.namespace(), { separatorSubstitute: substitute, rules, reservedNames: first.dest.caps().reservedNames });
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

    await copyAll(plan, report, {
      lanes,
      openLane,
      releaseLane,
      gates,
      reconnect,
      connections,
      options,
      retry,
      screen,
      state: mailboxState,
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
    log?.error({ code: e.code, err: e.message }, 'migration failed');
  } finally {
    await Promise.all([...lanes].map((l) => releaseLane(l)));
    await Promise.resolve(mailboxState?.release()).catch((err: unknown) => log?.warn({ err: (err as Error).message }, 'the mailbox lock could not be given back'));
    lockFiles?.release();
    await Promise.resolve(ownLedger?.close()).catch(() => undefined);
  }
  if (screen && report.scan) Object.assign(report.scan, screen.stats);
  const finished = Date.now();
  report.finishedAt = new Date(finished).toISOString();
  report.totals = totalsOf(report.folders, Math.round((finished - started) / 10) / 100, report.items, report.scan);
  report.status = statusOf(report);
  report.verdict = verdictOf(report);
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
 * Creates missing folders top-down and mirrors subscriptions; a failure costs that folder only.
 *
 * A source parent that cannot hold messages (\Noselect) is not created on its own when a child
 * below it is created: RFC 3501 §6.3.3 says a server SHOULD create the superiors a CREATE needs,
 * and then the parent stays a placeholder as it was at the source. Only if the child's CREATE
 * fails are its missing parents created explicitly, and the child tried again.
 */
async function createFolders(dest: MailStore, plan: FolderPlan, reports: FolderReport[], emit: (e: MigrationEvent) => void, log: Logger | undefined): Promise<void> {
  const isBelow = (child: readonly string[], parent: readonly string[]) => child.length > parent.length && parent.every((s, i) => child[i] === s);
  // A placeholder parent with a folder to create below it: created by the server with its child (one pass over the plan).
  const below = createBelow(plan.entries);
  const implicit = (k: number) => plan.entries[k]!.noSelect && below[k]!;
  const create = async (entry: FolderPlanEntry, report: FolderReport) => {
    const res = await dest.createFolder(entry.destPath);
    report.created = res.created;
    if (res.created) emit({ type: 'folder-created', folder: entry.destName });
  };
  for (const [i, entry] of plan.entries.entries()) {
    const report = reports[i]!;
    try {
      if (entry.create && !implicit(i)) {
        try {
          await create(entry, report);
        } catch (err) {
          const parents = plan.entries.map((p, k) => ({ p, k })).filter(({ p, k }) => p.create && implicit(k) && isBelow(entry.destPath, p.destPath));
          if (parents.length === 0 || !dest.isUsable()) throw err;
          for (const { p, k } of parents) await create(p, reports[k]!);
          await create(entry, report);
        }
      }
    } catch (err) {
      if (isMigrateError(err) && err.scope === 'mailbox') throw err;
      const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, String(err), { scope: 'folder' });
      report.error = e.toJSON();
      log?.warn({ folder: entry.destName, code: e.code, err: e.message }, 'folder not created');
      if (!dest.isUsable()) throw e;
    }
  }
  // Subscriptions last, once the whole tree exists: a parent that the server creates implicitly
  // with its child cannot be subscribed before, and a rerun must not subscribe what the first run
  // could not.
  for (const [i, entry] of plan.entries.entries()) {
    if (!entry.subscribe || reports[i]!.error) continue;
    await dest.subscribe(entry.destPath);
  }
}

/** How long the first lane works alone before extra lanes are opened. */
const EXTRA_LANE_AFTER_MS = 150;

/** How often a folder is planned again from scratch (its connection was lost while it was listed, or it was recreated). */
const MAX_FOLDER_ATTEMPTS = 3;

interface CopyAllContext {
  lanes: Lane[];
  openLane: (optional?: boolean) => Promise<Lane>;
  releaseLane: (lane: Lane) => Promise<void>;
  gates: { source: ServerGate; destination: ServerGate };
  reconnect: (lane: Lane, side: 'source' | 'destination') => Promise<void>;
  connections: number;
  options: MigrateOptions;
  retry: RetryPolicy;
  screen: ContentScreen | undefined;
  state: MailboxRecord | undefined;
  signal: AbortSignal;
  /** Ends the mailbox: every lane stops after the command in flight. */
  stop: (err: MigrateError) => void;
  emit: (e: MigrationEvent) => void;
  log: Logger | undefined;
}

/** Copies every folder, `connections` at a time, largest work spread by a shared queue. */
async function copyAll(plan: FolderPlan, report: MigrationReport, ctx: CopyAllContext): Promise<void> {
  const { options, emit, log, signal } = ctx;
  const counters: ProgressCounters = {
    foldersTotal: plan.entries.length,
    foldersDone: 0,
    toCopy: 0,
    toCopyBytes: 0,
    copied: 0,
    copiedBytes: 0,
    alreadyPresent: 0,
    skipped: 0,
  };
  const queue = plan.entries.map((entry, i) => ({ entry, folder: report.folders[i]! })).filter(({ folder }) => !folder.error);
  counters.foldersDone = plan.entries.length - queue.length;
  const limits = { maxBytes: options.batchBytes ?? 4 * 1024 * 1024, maxMessages: options.batchMessages ?? 100 };
  const budget = new ByteBudget(Math.max(options.memoryBudgetBytes ?? 16 * 1024 * 1024, limits.maxBytes));
  // Shared with other mailboxes on the same servers when the caller passes them (batches).
  const gates = ctx.gates;
  const verdicts = report.scan?.verdicts;
  let mailboxError: MigrateError | undefined;
  const endMailbox = (err: MigrateError) => {
    mailboxError ??= err;
    queue.length = 0;
    ctx.stop(err);
  };

  // One judgement of the source's listed sizes for the whole mailbox (see copy/size-trust.ts).
  const sizes = new SizeTrust(!!options.acceptSizeMismatch, () => {
    report.sourceSizes = 'estimates';
    log?.warn({}, "the source's RFC822.SIZE differs from the bytes it sends for every message: sizes are taken as estimates from now on (the identity check still applies)");
  });
  const runLane = async (start: Lane | undefined): Promise<void> => {
    let lane = start;
    for (let job = queue.shift(); job; job = queue.shift()) {
      signal.throwIfAborted();
      const { entry, folder } = job;
      // Per-folder bookkeeping across attempts: what earlier attempts copied stays copied, and
      // the counters only ever hold the latest attempt's plan.
      let copiedBefore = 0;
      let copiedBytesBefore = 0;
      let planned = { toCopy: 0, bytes: 0, present: 0 };
      // One budget of reconnects for the folder over all its attempts (see copy/folder-run.ts).
      const lossBudget = { left: FOLDER_RECONNECTS };
      for (let attempt = 1; ; attempt++) {
        const attemptItems: SkippedItem[] = [];
        const attemptVerdicts: ScanVerdictRecord[] = [];
        try {
          if (!lane || !lane.source.isUsable() || !lane.dest.isUsable()) {
            // A broken lane gives its connection slots back before a new one takes them.
            if (lane) await ctx.releaseLane(lane);
            lane = await ctx.openLane();
          }
          const current: Lane = lane;
          await copyFolder({
            lane: current,
            reconnect: async (side) => {
              await ctx.reconnect(current, side);
              emit({ type: 'reconnected', side, folder: entry.sourceName });
            },
            entry,
            report: folder,
            limits,
            budget,
            retry: ctx.retry,
            gates,
            precheck: (meta) => precheck(meta, options.maxMessageSize, current.dest.caps().appendLimit),
            screen: ctx.screen,
            log,
            state: await ctx.state?.folder(entry.sourceName, entry.destName),
            syncDeletions: !!options.syncDeletions,
            deleteSource: !!options.deleteSource,
            sizes,
            ...(options.messageFilter ? { messageFilter: options.messageFilter } : {}),
            lossBudget,
            dryRun: !!options.dryRun,
            signal,
            onPlanned(toCopy, toCopyBytes, alreadyPresent) {
              // Messages an earlier attempt copied are found again as already present: count them as copied.
              folder.alreadyPresent = Math.max(0, alreadyPresent - copiedBefore);
              const now = { toCopy: toCopy + copiedBefore, bytes: toCopyBytes + copiedBytesBefore, present: folder.alreadyPresent };
              counters.toCopy += now.toCopy - planned.toCopy;
              counters.toCopyBytes += now.bytes - planned.bytes;
              counters.alreadyPresent += now.present - planned.present;
              planned = now;
              emit({ type: 'folder-start', folder: entry.sourceName, toCopy, toCopyBytes, alreadyPresent: folder.alreadyPresent });
              emit({ type: 'progress', counters: { ...counters } });
            },
            onBatch(copied, copiedBytes, skipped, found) {
              counters.copied += copied;
              counters.copiedBytes += copiedBytes;
              counters.skipped += skipped.length;
              for (const item of skipped) {
                attemptItems.push(item);
                report.items.push(item);
                emit({ type: 'item-skipped', item });
                log?.warn({ folder: item.folder, uid: item.uid, code: item.code, reason: item.reason }, 'message skipped');
              }
              for (const v of found) {
                attemptVerdicts.push(v);
                verdicts?.push(v);
                emit({ type: 'scan-verdict', verdict: v });
                log?.warn({ folder: v.folder, uid: v.uid, verdict: v.verdict, signature: v.signature, action: v.action }, 'scan verdict');
              }
              emit({ type: 'progress', counters: { ...counters } });
              if (options.badItemLimit !== undefined && report.items.length > options.badItemLimit) {
                throw new MigrateError(
                  ERROR_CODES.BAD_ITEM_LIMIT,
                  `${report.items.length} items were skipped, more than the limit of ${options.badItemLimit} (--bad-item-limit); the mailbox was stopped. The skipped items are listed in the report.`,
                  { scope: 'mailbox' },
                );
              }
            },
          });
        } catch (err) {
          if (isMigrateError(err) && err.scope === 'mailbox' && err.code !== ERROR_CODES.ABORTED) {
            // The mailbox is over: the other lanes stop after their command in flight.
            endMailbox(err);
            throw err;
          }
          if (signal.aborted) throw isMigrateError(err) ? err : new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
          if (isMigrateError(err) && err.code === ERROR_CODES.CONNECTION_LOST && attempt < MAX_FOLDER_ATTEMPTS) {
            // Lost while the folder was being listed, or the folder was recreated: plan it again
            // on new connections. Nothing is copied twice: the destination is listed again.
            log?.warn({ folder: entry.sourceName, attempt, err: err.message }, 'planning the folder again');
            copiedBefore = folder.copied;
            copiedBytesBefore = folder.copiedBytes;
            for (const item of attemptItems) report.items.splice(report.items.indexOf(item), 1);
            for (const v of attemptVerdicts) verdicts?.splice(verdicts.indexOf(v), 1);
            counters.skipped -= attemptItems.length;
            folder.skipped = 0;
            folder.vanished = 0;
            if (folder.quarantined !== undefined) folder.quarantined = 0;
            if (folder.withheld !== undefined) folder.withheld = 0;
            if (lane) await ctx.releaseLane(lane);
            lane = undefined;
            continue;
          }
          const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.FOLDER_FAILED, `Folder "${entry.sourceName}": ${(err as Error)?.message ?? String(err)}`, { scope: 'folder', cause: err });
          folder.error = e.toJSON();
          log?.warn({ folder: entry.sourceName, code: e.code, err: e.message }, 'folder failed');
        }
        break;
      }
      counters.foldersDone++;
      emit({ type: 'folder-done', folder });
      emit({ type: 'progress', counters: { ...counters } });
    }
  };

  // Extra lanes are a speed-up, not a requirement: a server that refuses more connections
  // leaves us with the lanes we have. They are opened only when the first lane has been busy for
  // a moment with folders still waiting: a quiet rerun (a STATUS per folder) is over before that,
  // and does not pay for logins it has no use for.
  const first = runLane(ctx.lanes[0]);
  const extras: Promise<void>[] = [];
  const wanted = Math.max(0, Math.min(ctx.connections, queue.length) - 1);
  if (wanted > 0) {
    const firstDone = first.then(
      () => true,
      () => true,
    );
    const quick = await Promise.race([firstDone, sleep(EXTRA_LANE_AFTER_MS, signal).then(() => false, () => true)]);
    for (let i = 0; !quick && i < Math.min(wanted, queue.length); i++) {
      extras.push(
        ctx.openLane(true).then(
          (lane) => runLane(lane),
          (err: unknown) => log?.warn({ err: (err as Error)?.message }, 'could not open an extra connection pair; continuing with fewer'),
        ),
      );
    }
  }
  // Wait for every lane before reporting, so that no lane writes into a report already returned.
  const results = await Promise.allSettled([first, ...extras]);
  if (mailboxError) throw mailboxError;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A mailbox's name in reports and the ledger: the URL, and the user acted as when it is not the URL's. */
export function mailboxName(display: string, authzid: string | undefined): string {
  return authzid ? `${display} (as ${authzid})` : display;
}

/** Refuses a message before it is fetched when it is over a size limit. */
function precheck(meta: MessageMeta, maxMessageSize: number | undefined, appendLimit: number | undefined): { code: ErrorCode; reason: string } | undefined {
  if (maxMessageSize !== undefined && meta.size > maxMessageSize) {
    return { code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `The message is ${meta.size} bytes, more than --max-message-size ${maxMessageSize}` };
  }
  if (appendLimit !== undefined && meta.size > appendLimit) {
    return { code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `The message is ${meta.size} bytes, more than the destination accepts (APPENDLIMIT=${appendLimit})` };
  }
  return undefined;
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
    quarantineFolder: new QuarantineFolder(scan.quarantineFolder ?? 'Quarantine'),
    quarantineDir: scan.quarantineDir !== undefined ? new QuarantineDir(scan.quarantineDir) : undefined,
    retry,
    ...(scan.attempts !== undefined ? { attempts: scan.attempts } : {}),
    logger,
  });
}
