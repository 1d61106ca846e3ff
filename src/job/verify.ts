/**
 * `mailmover verify`: compares a source mailbox with its destination, folder by folder, without
 * changing either. Folders are paired by the same plan a migration uses (rules included), and
 * messages by the same content identity, as multisets (see verify-compare.ts):
 * - a source message with no counterpart is missing; a destination message with none is extra;
 * - a pair matched by identity but not by size is changed;
 * - a pair whose flags or INTERNALDATE differ is reported as such;
 * - with `deep`, the SHA-256 of every pair's full bytes is compared too;
 * - destination folders that no source folder maps to are listed (destination only);
 * - with `strict`, those folders and each pair's subscription state are differences too.
 * The mode (`finished`) decides which of these count; the verdict sums it up.
 * Nothing is written anywhere; both sides are opened read-only (EXAMINE).
 */
import type { Logger } from 'pino';
import { parseEndpoint, type Endpoint } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import type { EndpointOptions } from './options.js';
import type { MessageFilter } from '../plan/message-filter.js';
import { normaliseName, planFolders, type FolderPlan } from '../plan/folder-plan.js';
import { parseFolderRules, type FolderRuleOptions } from '../plan/folder-rules.js';
import { checkSearchKeys, requireSearchableSides, storeDependentKeys } from '../plan/search-keys.js';
import type { Verdict } from './report.js';
import { storeFactory } from '../stores/imap/open.js';
import { labelRunFor } from '../stores/gmail/label-run.js';
import { withLabels } from '../stores/gmail/label-view.js';
import type { FolderInfo, MailStore } from '../stores/mail-store.js';
import { compareFolder, countedDifferences, type VerifyFolderReport, type VerifyMode } from './verify-compare.js';
import { VERSION } from '../version.js';

export type { VerifyDifference, VerifyFolderReport, VerifyMode } from './verify-compare.js';

/** Options of {@link verify}. */
export interface VerifyOptions {
  from: EndpointOptions;
  to: EndpointOptions;
  /** A Gmail source's labels, as migrate's option of the same name (default `folders`). */
  gmailLabels?: string;
  /** With `gmailLabels: 'first'`: as migrate's. */
  labelPriority?: string;
  /** Also compare the SHA-256 of every message's full bytes (reads every body on both sides). */
  deep?: boolean;
  /**
   * Destination-only folders and subscription states are differences too (not only information).
   * Not with `finished`: a destination in use has folders and subscriptions of its own.
   */
  strict?: boolean;
  /**
   * The move is over and the destination is in use: new messages there and flags or dates
   * changed there are expected; only missing (and changed) source messages count.
   */
  finished?: boolean;
  /** The same folder rules the migration used, so that folders pair up the same way. */
  folders?: FolderRuleOptions;
  separatorSubstitute?: string;
  connectTimeoutSeconds?: number;
  /** Compare only the messages this lets in, at both sides (the filter the migration ran with). */
  messageFilter?: MessageFilter;
  signal?: AbortSignal;
  /** Called when a folder has been compared. */
  onFolder?: (folder: VerifyFolderReport) => void;
  logger?: Logger;
}

/** A destination folder that no source folder maps to. */
export interface DestinationOnlyFolder {
  name: string;
  /** Its message count (all messages, filters aside); absent when it holds none by nature (\Noselect) or the server did not say. */
  messages?: number;
}

/** The verify report (`--report FILE`, `--json`). */
export interface VerifyReport {
  version: 1;
  kind: 'verify';
  tool: string;
  /** 'match' when the verdict is perfect or good, 'differ' when investigate, 'failed' when poor. */
  status: 'match' | 'differ' | 'failed';
  /** perfect: all compared and equal; good: only what the mode allows; investigate: differences; poor: not all compared. */
  verdict: Verdict;
  /** Which differences count (see VerifyMode). */
  mode: VerifyMode;
  strict: boolean;
  deep: boolean;
  startedAt: string;
  finishedAt: string;
  source: { url: string };
  destination: { url: string };
  totals: {
    folders: number;
    sourceMessages: number;
    destMessages: number;
    missing: number;
    extra: number;
    changed: number;
    flagsDiffer: number;
    datesDiffer: number;
    bodiesDiffer: number;
    /** Only with strict: folder pairs whose subscription states differ. */
    subscriptionsDiffer?: number;
    destinationOnly: number;
  };
  folders: VerifyFolderReport[];
  /** Destination folders no source folder maps to: information, or with strict differences. */
  destinationOnly: DestinationOnlyFolder[];
  error?: { code: string; message: string };
}

/** Compares source and destination. Resolves with the report; bad options throw (scope 'config'). */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  checkVerifyModes(options);
  const from = typeof options.from.url === 'string' ? parseEndpoint(options.from.url, 'from') : options.from.url;
  const to = typeof options.to.url === 'string' ? parseEndpoint(options.to.url, 'to') : options.to.url;
  const rules = parseFolderRules(options.folders);
  const substitute = options.separatorSubstitute ?? '_';
  if (options.messageFilter?.search !== undefined) checkVerifySearch(options.messageFilter.search, from, to);
  const mode: VerifyMode = options.finished ? 'finished' : 'exact';
  const strict = !!options.strict;
  const started = Date.now();
  const report: VerifyReport = {
    version: 1,
    kind: 'verify',
    tool: `mailmover ${VERSION}`,
    status: 'failed',
    verdict: 'poor',
    mode,
    strict,
    deep: !!options.deep,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    source: { url: from.display },
    destination: { url: to.display },
    totals: { folders: 0, sourceMessages: 0, destMessages: 0, missing: 0, extra: 0, changed: 0, flagsDiffer: 0, datesDiffer: 0, bodiesDiffer: 0, ...(strict ? { subscriptionsDiffer: 0 } : {}), destinationOnly: 0 },
    folders: [],
    destinationOnly: [],
  };
  const store = await storeFactory({ ...options.from, endpoint: from }, { ...options.to, endpoint: to }, {
    connectTimeoutSeconds: options.connectTimeoutSeconds,
    separatorSubstitute: substitute,
    logger: options.logger,
  });
  // A Gmail source is compared as migrate placed it: by its labels, in the same mode.
  const labels = labelRunFor(options);
  labels?.attachState(undefined);
  const source = labels ? withLabels(store('source'), labels) : store('source');
  const dest = store('destination');
  // When one side fails to connect, the other's attempt is stopped (not left to finish and hold a
  // connection open until the server's idle timeout), and both are closed only once settled.
  const connecting = new AbortController();
  const connectSignal = options.signal ? AbortSignal.any([options.signal, connecting.signal]) : connecting.signal;
  try {
    await settleBoth(
      source.connect(connectSignal).catch((err: unknown) => { connecting.abort(); throw err; }),
      dest.connect(connectSignal).catch((err: unknown) => { connecting.abort(); throw err; }),
    );
    const [sourceListing, destListing] = await settleBoth(source.listFolders({ otherNamespaces: rules.includeOtherNamespaces }), dest.listFolders());
    const plan = planFolders(sourceListing.folders, destListing.folders, dest.namespace(), { separatorSubstitute: substitute, rules, reservedNames: dest.caps().reservedNames, mailOrChildren: dest.caps().mailOrChildren });
    // A destination folder is found by its server name, as the planner finds it: its path in the
    // listing has the namespace prefix removed, which a planned path below INBOX keeps
    // ("INBOX/Newsletter" is planned as ['INBOX', 'Newsletter'], listed as ['Newsletter']).
    const sourceByPath = new Map(sourceListing.folders.map((f) => [f.path.join('\u0000'), f]));
    const destByName = new Map(destListing.folders.filter((f) => !f.outside).map((f) => [normaliseName(f.name), f]));
    for (const entry of plan.entries) {
      if (entry.noSelect) continue;
      options.signal?.throwIfAborted();
      const destFolder = destByName.get(normaliseName(entry.destName));
      // What migrate mirrors: subscribed at the source (or from another namespace, which a
      // migration subscribes so that clients show it) means subscribed at the destination.
      const s = sourceByPath.get(entry.sourcePath.join('\u0000'));
      const subscribed = strict ? { source: !!s && (s.subscribed || !!s.outside), destination: !!destFolder?.subscribed } : undefined;
      const folder = await compareFolder(source, dest, entry, !!destFolder, { deep: !!options.deep, mode, ...(subscribed ? { subscribed } : {}), ...(options.messageFilter ? { filter: options.messageFilter } : {}), ...(options.signal ? { signal: options.signal } : {}) });
      report.folders.push(folder);
      options.onFolder?.(folder);
    }
    report.destinationOnly = await destinationOnly(dest, plan, destListing.folders, options.signal);
    const sum = (pick: (f: VerifyFolderReport) => number) => report.folders.reduce((n, f) => n + pick(f), 0);
    report.totals = {
      folders: report.folders.length,
      sourceMessages: sum((f) => f.sourceCount),
      destMessages: sum((f) => f.destCount),
      missing: sum((f) => f.missing),
      extra: sum((f) => f.extra),
      changed: sum((f) => f.changed),
      flagsDiffer: sum((f) => f.flagsDiffer),
      datesDiffer: sum((f) => f.datesDiffer),
      bodiesDiffer: sum((f) => f.bodiesDiffer ?? 0),
      ...(strict ? { subscriptionsDiffer: sum((f) => (f.subscribed && f.subscribed.source !== f.subscribed.destination ? 1 : 0)) } : {}),
      destinationOnly: report.destinationOnly.length,
    };
  } catch (err) {
    const e = isMigrateError(err)
      ? err
      : options.signal?.aborted
        ? new MigrateError(ERROR_CODES.ABORTED, 'The verification was stopped.', { scope: 'mailbox', cause: err })
        : new MigrateError(ERROR_CODES.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}`, { scope: 'mailbox', cause: err });
    report.error = { code: e.code, message: e.message };
  } finally {
    await Promise.allSettled([source.close(), dest.close()]);
  }
  report.verdict = verifyVerdict(report);
  report.status = report.verdict === 'poor' ? 'failed' : report.verdict === 'investigate' ? 'differ' : 'match';
  report.finishedAt = new Date().toISOString();
  return report;
}

/** Refuses modes that contradict each other (MM-CONFIG-OPTION, scope 'config'). */
export function checkVerifyModes(options: Pick<VerifyOptions, 'strict' | 'finished'>): void {
  if (options.strict && options.finished) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, '--strict and --finished contradict each other: --finished expects a destination in use, with folders and subscriptions of its own, which --strict counts as differences. Use one of them.', { scope: 'config' });
  }
}

/**
 * The verdict of a verify report:
 * - poor: the run failed, or a folder could not be compared;
 * - investigate: something the mode counts differs (missing, changed, other bytes; in the exact
 *   mode also extra, other flags, other dates; with strict also destination-only folders and
 *   subscriptions);
 * - good: nothing counted differs, but there is something to know: destination-only folders
 *   (without strict), or in the finished mode new messages, flags or dates changed at the destination;
 * - perfect: everything compared is equal, and nothing else is there.
 */
export function verifyVerdict(report: Pick<VerifyReport, 'error' | 'folders' | 'destinationOnly' | 'mode' | 'strict'>): Verdict {
  if (report.error || report.folders.some((f) => f.state === 'error')) return 'poor';
  const counted = report.folders.reduce((n, f) => n + countedDifferences(f, report.mode), 0) + (report.strict ? report.destinationOnly.length : 0);
  if (counted > 0) return 'investigate';
  const seen = report.folders.some((f) => f.extra + f.flagsDiffer + f.datesDiffer > 0) || report.destinationOnly.length > 0;
  return seen ? 'good' : 'perfect';
}

/**
 * The destination folders that no planned folder (compared, \Noselect or a parent the plan adds)
 * lands in, with their message counts (STATUS, no folder is selected).
 */
async function destinationOnly(dest: MailStore, plan: FolderPlan, folders: readonly FolderInfo[], signal?: AbortSignal): Promise<VerifyReport['destinationOnly']> {
  const planned = new Set(plan.entries.map((e) => normaliseName(e.destName)));
  const out: VerifyReport['destinationOnly'] = [];
  for (const f of folders) {
    if (f.outside || planned.has(normaliseName(f.name))) continue;
    signal?.throwIfAborted();
    let messages: number | undefined;
    if (!f.noSelect) {
      try {
        messages = (await dest.folderStatus(f.path))?.exists;
      } catch (err) {
        if (isMigrateError(err) && err.scope === 'mailbox') throw err;
        // The count is then not known, and not shown; the folder is listed all the same.
      }
    }
    out.push({ name: f.name, ...(messages !== undefined ? { messages } : {}) });
  }
  return out;
}

/**
 * `--search` for verify: checked keys, IMAP at both sides (the keys run at each), and no key that
 * selects by where a message is stored (it would pick other messages at the destination).
 */
function checkVerifySearch(keys: string, from: Endpoint, to: Endpoint): void {
  checkSearchKeys(keys);
  requireSearchableSides([{ flag: '--from', endpoint: from }, { flag: '--to', endpoint: to }]);
  const bound = storeDependentKeys(keys);
  if (bound.length > 0) {
    throw new MigrateError(
      ERROR_CODES.CONFIG_OPTION,
      `--search: verify runs the keys at both sides, and ${bound.join(', ')} select${bound.length === 1 ? 's' : ''} by where a message is stored (UIDs, message numbers, mod-sequences, save dates, \\Recent, server ids), so the destination would answer for other messages. Verify with keys on content, flags or dates (FROM, SUBJECT, SINCE, FLAGGED, ...), or without --search.`,
      { scope: 'config' },
    );
  }
}

/**
 * Both results, after both have settled: the failure that came first is thrown (the other side's
 * is often only the consequence of being stopped), but only once the other operation has
 * finished too, so nothing is left running on a connection that is about to be closed.
 */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const failures: unknown[] = [];
  const note = <T>(p: Promise<T>) => p.catch((err: unknown) => { failures.push(err); throw err; });
  const [ra, rb] = await Promise.allSettled([note(a), note(b)]);
  if (ra.status === 'fulfilled' && rb.status === 'fulfilled') return [ra.value, rb.value];
  throw failures[0];
}
