/**
 * `mailmover verify`: compares a source mailbox with its destination, folder by folder, without
 * changing either. Folders are paired by the same plan a migration uses (rules included), and
 * messages by the same content identity, as multisets:
 * - a source message with no counterpart is missing; a destination message with none is extra;
 * - a pair matched by identity but not by size is changed;
 * - a pair whose flags or INTERNALDATE differ is reported as such;
 * - with `deep`, the SHA-256 of every pair's full bytes is compared too.
 * Nothing is written anywhere; both sides are opened read-only (EXAMINE).
 */
import { applyFilter, type MessageFilter } from './plan/message-filter.js';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { parseEndpoint, type Endpoint } from './core/endpoint.js';
import { ERROR_CODES, MigrateError, isMigrateError } from './core/errors.js';
import { flagsToCopy } from './core/flags.js';
import type { EndpointOptions } from './migrate.js';
import { planFolders, type FolderPlanEntry } from './plan/folder-plan.js';
import { parseFolderRules, type FolderRuleOptions } from './plan/folder-rules.js';
import { checkSearchKeys, requireSearchableSides, storeDependentKeys } from './plan/search-keys.js';
import { batchMessages, matchMessages } from './plan/message-plan.js';
import { storeFactory } from './stores/imap/open.js';
import type { MailStore, MessageMeta } from './stores/mail-store.js';
import { VERSION } from './version.js';

/** Options of {@link verify}. */
export interface VerifyOptions {
  from: EndpointOptions;
  to: EndpointOptions;
  /** Also compare the SHA-256 of every message's full bytes (reads every body on both sides). */
  deep?: boolean;
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

/** One difference, for the administrator to look at. */
export interface VerifyDifference {
  kind: 'missing' | 'extra' | 'changed' | 'flags' | 'date' | 'body';
  sourceUid?: number;
  destUid?: number;
  messageId?: string;
  /** What differs, e.g. "source \\Seen, destination (none)". */
  detail?: string;
}

/** One folder pair and how it compares. */
export interface VerifyFolderReport {
  source: string;
  destination: string;
  sourceCount: number;
  destCount: number;
  matched: number;
  missing: number;
  extra: number;
  changed: number;
  flagsDiffer: number;
  datesDiffer: number;
  /** Only with deep: pairs whose bytes differ. */
  bodiesDiffer?: number;
  state: 'match' | 'differ' | 'error';
  /** The first differences (at most {@link MAX_LISTED} per folder). */
  differences: VerifyDifference[];
  error?: { code: string; message: string };
}

/** The verify report (`--report FILE`, `--json`). */
export interface VerifyReport {
  version: 1;
  kind: 'verify';
  tool: string;
  /** 'match' only when every folder matches. */
  status: 'match' | 'differ' | 'failed';
  deep: boolean;
  startedAt: string;
  finishedAt: string;
  source: { url: string };
  destination: { url: string };
  totals: { folders: number; sourceMessages: number; destMessages: number; missing: number; extra: number; changed: number; flagsDiffer: number; datesDiffer: number; bodiesDiffer: number };
  folders: VerifyFolderReport[];
  error?: { code: string; message: string };
}

/** Differences listed per folder; the counts are always complete. */
const MAX_LISTED = 50;

/** Compares source and destination. Resolves with the report; bad options throw (scope 'config'). */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const from = typeof options.from.url === 'string' ? parseEndpoint(options.from.url, 'from') : options.from.url;
  const to = typeof options.to.url === 'string' ? parseEndpoint(options.to.url, 'to') : options.to.url;
  const rules = parseFolderRules(options.folders);
  const substitute = options.separatorSubstitute ?? '_';
  if (options.messageFilter?.search !== undefined) checkVerifySearch(options.messageFilter.search, from, to);
  const started = Date.now();
  const report: VerifyReport = {
    version: 1,
    kind: 'verify',
    tool: `mailmover ${VERSION}`,
    status: 'failed',
    deep: !!options.deep,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    source: { url: from.display },
    destination: { url: to.display },
    totals: { folders: 0, sourceMessages: 0, destMessages: 0, missing: 0, extra: 0, changed: 0, flagsDiffer: 0, datesDiffer: 0, bodiesDiffer: 0 },
    folders: [],
  };
  const store = storeFactory({ ...options.from, endpoint: from }, { ...options.to, endpoint: to }, {
    connectTimeoutSeconds: options.connectTimeoutSeconds,
    separatorSubstitute: substitute,
    logger: options.logger,
  });
  const source = store('source');
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
    const plan = planFolders(sourceListing.folders, destListing.folders, dest.namespace(), { separatorSubstitute: substitute, rules, reservedNames: dest.caps().reservedNames });
    const existing = new Set(destListing.folders.map((f) => f.path.join('\u0000')));
    for (const entry of plan.entries) {
      if (entry.noSelect) continue;
      options.signal?.throwIfAborted();
      const folder = await compareFolder(source, dest, entry, existing.has(entry.destPath.join('\u0000')), !!options.deep, options.signal, options.messageFilter);
      report.folders.push(folder);
      options.onFolder?.(folder);
    }
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
    };
    report.status = report.folders.some((f) => f.state === 'error') ? 'failed' : report.folders.every((f) => f.state === 'match') ? 'match' : 'differ';
  } catch (err) {
    const e = isMigrateError(err)
      ? err
      : options.signal?.aborted
        ? new MigrateError(ERROR_CODES.ABORTED, 'The verification was stopped.', { scope: 'mailbox', cause: err })
        : new MigrateError(ERROR_CODES.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}`, { scope: 'mailbox', cause: err });
    report.error = { code: e.code, message: e.message };
    report.status = 'failed';
  } finally {
    await Promise.allSettled([source.close(), dest.close()]);
  }
  report.finishedAt = new Date().toISOString();
  return report;
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

async function compareFolder(source: MailStore, dest: MailStore, entry: FolderPlanEntry, destExists: boolean, deep: boolean, signal?: AbortSignal, filter?: MessageFilter): Promise<VerifyFolderReport> {
  const out: VerifyFolderReport = {
    source: entry.sourceName,
    destination: entry.destName,
    sourceCount: 0,
    destCount: 0,
    matched: 0,
    missing: 0,
    extra: 0,
    changed: 0,
    flagsDiffer: 0,
    datesDiffer: 0,
    ...(deep ? { bodiesDiffer: 0 } : {}),
    state: 'match',
    differences: [],
  };
  const note = (d: VerifyDifference) => {
    if (out.differences.length < MAX_LISTED) out.differences.push(d);
  };
  try {
    await source.openFolder(entry.sourcePath, true, entry.sourceName);
    const s = await source.listMessages(signal);
    let d: { messages: MessageMeta[]; failures: { uid: number; error: Error }[] } = { messages: [], failures: [] };
    if (destExists) {
      await dest.openFolder(entry.destPath, true);
      d = await dest.listMessages(signal);
    }
    const unreadable = s.failures.length + d.failures.length;
    if (unreadable > 0) {
      const first = s.failures[0] ?? d.failures[0]!;
      throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `${unreadable} message(s) could not be described (first: UID ${first.uid}: ${first.error.message}); the folder cannot be compared`, { scope: 'folder' });
    }
    // With a filter, both sides are cut down alike (INTERNALDATE and size are copied unchanged;
    // --search keys run at each side, on contents, flags and dates that were copied too).
    const keys = filter?.search;
    const sourceFound = keys !== undefined ? new Set(await source.searchUids(keys, signal)) : undefined;
    const destFound = keys !== undefined && destExists ? new Set(await dest.searchUids(keys, signal)) : undefined;
    s.messages = applyFilter(filter, s.messages, sourceFound);
    d.messages = applyFilter(filter, d.messages, destFound);
    out.sourceCount = s.messages.length;
    out.destCount = d.messages.length;
    const m = matchMessages(s.messages, d.messages);
    out.matched = m.pairs.length;
    out.missing = m.missing.length;
    out.extra = m.extra.length;
    for (const x of m.missing) note({ kind: 'missing', sourceUid: x.uid, ...(x.messageId ? { messageId: x.messageId } : {}) });
    for (const x of m.extra) note({ kind: 'extra', destUid: x.uid, ...(x.messageId ? { messageId: x.messageId } : {}) });
    for (const p of m.pairs) {
      const ids = { sourceUid: p.source.uid, destUid: p.dest.uid, ...(p.source.messageId ? { messageId: p.source.messageId } : {}) };
      if (p.pass === 'identity') {
        out.changed++;
        note({ kind: 'changed', ...ids, detail: `size ${p.source.size} at the source, ${p.dest.size} at the destination` });
      }
      const sf = flagsToCopy(p.source.flags).join(' ');
      const df = flagsToCopy(p.dest.flags).join(' ');
      if (sf !== df) {
        out.flagsDiffer++;
        note({ kind: 'flags', ...ids, detail: `source (${sf}), destination (${df})` });
      }
      const sd = p.source.internalDate ? Math.floor(p.source.internalDate.getTime() / 1000) : undefined;
      const dd = p.dest.internalDate ? Math.floor(p.dest.internalDate.getTime() / 1000) : undefined;
      if (sd !== dd) {
        out.datesDiffer++;
        note({ kind: 'date', ...ids, detail: `source ${p.source.internalDate?.toISOString()}, destination ${p.dest.internalDate?.toISOString()}` });
      }
    }
    if (deep && m.pairs.length > 0) {
      const sourceSha = await digests(source, m.pairs.map((p) => p.source), signal);
      await source.closeFolder();
      const destSha = await digests(dest, m.pairs.map((p) => p.dest), signal);
      for (const p of m.pairs) {
        if (sourceSha.get(p.source.uid) !== destSha.get(p.dest.uid)) {
          out.bodiesDiffer!++;
          note({ kind: 'body', sourceUid: p.source.uid, destUid: p.dest.uid, ...(p.source.messageId ? { messageId: p.source.messageId } : {}), detail: 'the bytes differ (SHA-256)' });
        }
      }
    }
    const differs = out.missing + out.extra + out.changed + out.flagsDiffer + out.datesDiffer + (out.bodiesDiffer ?? 0);
    out.state = differs > 0 ? 'differ' : 'match';
  } catch (err) {
    if (signal?.aborted || (isMigrateError(err) && err.scope === 'mailbox')) throw err;
    const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.FOLDER_FAILED, String((err as Error)?.message ?? err), { scope: 'folder', cause: err });
    out.state = 'error';
    out.error = { code: e.code, message: e.message };
  } finally {
    if (source.isUsable()) await source.closeFolder().catch(() => undefined);
    if (dest.isUsable()) await dest.closeFolder().catch(() => undefined);
  }
  return out;
}

/** SHA-256 of the full bytes of `metas` in the open folder, read in bounded batches. */
async function digests(store: MailStore, metas: readonly MessageMeta[], signal?: AbortSignal): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const batch of batchMessages(metas, { maxBytes: 8 * 1024 * 1024, maxMessages: 100 })) {
    for await (const o of store.fetchBodies(batch.map((m) => m.uid), signal)) {
      out.set(o.uid, 'body' in o ? createHash('sha256').update(o.body).digest('hex') : `unreadable:${'error' in o ? o.error.message : 'vanished'}`);
    }
  }
  return out;
}
