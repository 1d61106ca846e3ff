/**
 * One folder pair of `mailmover verify`: both listings taken read-only (EXAMINE), cut down by the
 * message filter alike, matched as multisets by content identity, and counted. What counts as a
 * difference depends on the mode (see {@link VerifyMode}); the counts themselves are always
 * complete, so that a report shows what was seen even where the mode allows it.
 */
import { createHash } from 'node:crypto';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import { applyFilter, type MessageFilter } from '../plan/message-filter.js';
import type { FolderPlanEntry } from '../plan/folder-plan.js';
import { batchMessages, matchMessages } from '../plan/message-plan.js';
import type { MailStore, MessageMeta } from '../stores/mail-store.js';
import { dateOf } from '../core/internal-date.js';

/**
 * What verify holds the destination to:
 * - 'exact': a copy that nobody has used yet. Missing, extra, changed, other flags, other dates
 *   (and with deep, other bytes) are differences.
 * - 'finished': a move that is over and whose destination is in use. New messages there, and flags
 *   or dates changed there, are expected; only source messages missing at the destination,
 *   changed ones (same identity, other size) and with deep other bytes are differences.
 */
export type VerifyMode = 'exact' | 'finished';

/** One difference, for the administrator to look at. */
export interface VerifyDifference {
  kind: 'missing' | 'extra' | 'changed' | 'flags' | 'date' | 'body' | 'subscription';
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
  /** Only with strict: whether each side is subscribed (a difference when they disagree). */
  subscribed?: { source: boolean; destination: boolean };
  /** 'differ' when something the mode counts differs; what the mode allows leaves it 'match'. */
  state: 'match' | 'differ' | 'error';
  /** The first differences the mode counts (at most {@link MAX_LISTED} per folder). */
  differences: VerifyDifference[];
  error?: { code: string; message: string };
}

/** Differences listed per folder; the counts are always complete. */
const MAX_LISTED = 50;

/** How one folder pair is compared. */
export interface CompareOptions {
  deep: boolean;
  mode: VerifyMode;
  /** With strict: the subscription each side should have (source) and has (destination). */
  subscribed?: { source: boolean; destination: boolean };
  filter?: MessageFilter;
  signal?: AbortSignal;
}

/** Compares one planned folder pair; a failure costs this folder only (state 'error'). */
export async function compareFolder(source: MailStore, dest: MailStore, entry: FolderPlanEntry, destExists: boolean, o: CompareOptions): Promise<VerifyFolderReport> {
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
    ...(o.deep ? { bodiesDiffer: 0 } : {}),
    ...(o.subscribed ? { subscribed: o.subscribed } : {}),
    state: 'match',
    differences: [],
  };
  // In 'finished' mode what happens at a destination in use is not listed: it would crowd out
  // the missing messages the administrator has to see.
  const counts = (kind: VerifyDifference['kind']) => o.mode === 'exact' || !(kind === 'extra' || kind === 'flags' || kind === 'date');
  const note = (d: VerifyDifference) => {
    if (counts(d.kind) && out.differences.length < MAX_LISTED) out.differences.push(d);
  };
  if (o.subscribed && o.subscribed.source !== o.subscribed.destination) {
    const say = (b: boolean) => (b ? 'subscribed' : 'not subscribed');
    note({ kind: 'subscription', detail: `${say(o.subscribed.source)} at the source, ${say(o.subscribed.destination)} at the destination` });
  }
  const signal = o.signal;
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
    const keys = o.filter?.search;
    const sourceFound = keys !== undefined ? new Set(await source.searchUids(keys, signal)) : undefined;
    const destFound = keys !== undefined && destExists ? new Set(await dest.searchUids(keys, signal)) : undefined;
    s.messages = applyFilter(o.filter, s.messages, sourceFound);
    d.messages = applyFilter(o.filter, d.messages, destFound);
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
      const sd = p.source.internalDate !== undefined ? Math.floor(p.source.internalDate / 1000) : undefined;
      const dd = p.dest.internalDate !== undefined ? Math.floor(p.dest.internalDate / 1000) : undefined;
      if (sd !== dd) {
        out.datesDiffer++;
        note({ kind: 'date', ...ids, detail: `source ${dateOf(p.source.internalDate)?.toISOString()}, destination ${dateOf(p.dest.internalDate)?.toISOString()}` });
      }
    }
    if (o.deep && m.pairs.length > 0) {
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
    out.state = countedDifferences(out, o.mode) > 0 ? 'differ' : 'match';
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

/** The differences of a folder pair that `mode` counts (subscriptions only when compared). */
export function countedDifferences(f: VerifyFolderReport, mode: VerifyMode): number {
  const subscription = f.subscribed && f.subscribed.source !== f.subscribed.destination ? 1 : 0;
  const always = f.missing + f.changed + (f.bodiesDiffer ?? 0) + subscription;
  return mode === 'finished' ? always : always + f.extra + f.flagsDiffer + f.datesDiffer;
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
