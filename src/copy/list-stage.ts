/**
 * The list stage of a folder copy: what the source holds, what the destination holds, and what
 * the ledger says may be skipped. Its result is the input of the pure message plan.
 *
 * With a state ledger whose record of this folder is complete and still true at both sides (same
 * UIDVALIDITY; the destination's UIDNEXT and count as left by the last pass), only the source's
 * new messages and the ones skipped last time are looked at: no listing of either side in full.
 * Anything else (a new folder, a killed run's intents, a destination changed behind our back) is
 * planned in full from both listings, by content identity.
 */
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import type { SkippedItem } from '../job/report.js';
import type { FolderMarks } from '../state/store.js';
import type { MessageListing, MessageMeta } from '../stores/mail-store.js';
import { MAX_LOSSES_IN_A_ROW, brokeConnection, isLoss, type FolderRun } from './folder-run.js';
import { isolateLosses } from './isolate.js';
import { applyFilter } from '../plan/message-filter.js';

/** UIDs described per command when a listing is taken again after a lost connection. */
const LIST_CHUNK = 200;

/** What the list stage found. */
export interface Listed {
  incremental: boolean;
  marks: FolderMarks | undefined;
  /** Source messages to plan (all of them, or in an incremental pass the new and the retried). */
  sourceMetas: MessageMeta[];
  /** Source messages the server would not describe: skipped and reported. */
  unreadable: SkippedItem[];
  /** Destination messages (empty in an incremental pass). */
  destMetas: MessageMeta[];
  /** Flag changes to carry over, found from the ledger in an incremental pass. */
  flagUpdates: { sourceUid: number; destUid: number; flags: string[] }[];
  /** Copies whose source message is gone (--sync-deletions), found from the ledger. */
  gone: { sourceUid: number; destUid: number }[];
  /** The ledger's copies of this folder, when there is a ledger. */
  known: Awaited<ReturnType<NonNullable<FolderRun['state']>['copies']>> | undefined;
}

/**
 * Lists the source folder. If the connection drops while it is described (a message the server
 * cannot read, or the network), the listing is taken again in chunks on new connections and the
 * message that breaks it is isolated and reported.
 */
export async function listSource(run: FolderRun): Promise<MessageListing> {
  const { signal } = run;
  try {
    return await run.lane.source.listMessages(signal);
  } catch (err) {
    if (!isLoss(err, signal)) throw err;
    await run.reopenSource(err);
  }
  const uids = await run.lane.source.listUids(signal);
  const listing: MessageListing = { messages: [], failures: [] };
  const done = new Set<number>();
  for (let i = 0; i < uids.length; i += LIST_CHUNK) {
    await isolateLosses(uids.slice(i, i + LIST_CHUNK), {
      done,
      step: async (part) => {
        const l = await run.lane.source.listMessages(signal, { uids: part });
        listing.messages.push(...l.messages);
        listing.failures.push(...l.failures);
        for (const uid of part) done.add(uid);
      },
      isLoss: (err) => isLoss(err, signal) || isOversized(err),
      recover: (err) => run.reopenSource(err),
      giveUp: (uid, err, n) => {
        listing.failures.push({ uid, error: brokeConnection('described', uid, err, n) });
        done.add(uid);
      },
      suspectLimit: run.ctx.retry.attempts,
      maxLossesInARow: MAX_LOSSES_IN_A_ROW,
    });
  }
  return listing;
}

/** Both listings, or the ledger's shortcut (see the module comment). */
export async function listBothSides(run: FolderRun): Promise<Listed> {
  const { ctx, entry, report, signal, state, sourceStatus, lane } = run;
  const marks = await state?.trusted();
  let incremental = false;
  // A move proves every message at the destination from a fresh listing: never incremental.
  // A filtered pass (--search too) lists the folder in full: the ledger's marks speak for every message.
  // CONDSTORE at the destination, with the same HIGHESTMODSEQ as the last pass left: not even a flag changed there.
  let destUnchanged = false;
  if (marks && !ctx.deleteSource && !ctx.messageFilter && !entry.create && marks.sourceUidValidity === sourceStatus.uidValidity && sourceStatus.uidNext !== undefined) {
    const d = await lane.dest.folderStatus(entry.destPath);
    incremental = !!d && d.uidValidity === marks.destUidValidity && d.uidNext === marks.destUidNext && d.exists === marks.destCount;
    destUnchanged = incremental && marks.destModseq !== undefined && d!.highestModseq === marks.destModseq;
    run.destModseq = d?.highestModseq;
  }
  // CONDSTORE: only what changed since the last pass's HIGHESTMODSEQ; otherwise every message's flags (no headers: cheap).
  const unchanged = incremental && marks!.sourceModseq !== undefined && sourceStatus.highestModseq !== undefined && sourceStatus.highestModseq === marks!.sourceModseq;
  // Flag changes and deletions at the source since the last pass, from the ledger's rows. An
  // incremental pass reads those rows only when something needs them (a folder of 200,000
  // messages has as many): a flag changed at the source on a message copied before, flags to
  // check at the destination, deletions to carry over. New messages alone do not.
  let known: Listed['known'] = !incremental || ctx.syncDeletions ? await state?.copies() : undefined;
  const ledgerRows = async () => (known ??= await state!.copies());
  const flagUpdates: Listed['flagUpdates'] = [];
  const gone: Listed['gone'] = [];
  if (incremental) {
    if (!unchanged) {
      const since = marks!.sourceModseq !== undefined && sourceStatus.highestModseq !== undefined ? marks!.sourceModseq : undefined;
      // Messages from the last pass's UIDNEXT on are new (planned below), not changed copies.
      const changed = (await lane.source.listFlags(signal, since !== undefined ? { changedSince: since } : {})).filter((f) => f.uid < marks!.sourceUidNext);
      const rows = changed.length > 0 ? new Map((await ledgerRows()).rows.map((r) => [r.sourceUid, r])) : new Map();
      for (const f of changed) {
        const row = rows.get(f.uid);
        const flags = flagsToCopy(f.flags);
        if (!row || row.flags.join(' ') === flags.join(' ')) continue;
        // A copy without a known destination UID (no UIDPLUS) cannot be updated in place: plan in full.
        if (row.destUid === undefined) incremental = false;
        else flagUpdates.push({ sourceUid: row.sourceUid, destUid: row.destUid, flags });
      }
    }
    // Flags changed at the destination behind our back (a user, a filter): the source's flags
    // as the ledger recorded them win, as in a full pass. The destination's UIDNEXT and count
    // do not see such a change, so its flags are read (one FETCH FLAGS, no headers), unless its
    // HIGHESTMODSEQ is still the one the last pass left (CONDSTORE).
    if (incremental && !destUnchanged && (await ledgerRows()).rows.length > 0) {
      const byDest = new Map(known!.rows.flatMap((r) => (r.destUid === undefined ? [] : [[r.destUid, r] as const])));
      const queued = new Set(flagUpdates.map((u) => u.sourceUid));
      for (const f of await destFlags(run)) {
        const row = byDest.get(f.uid);
        if (!row || queued.has(row.sourceUid) || sameFlags(flagsToCopy(f.flags), row.flags)) continue;
        flagUpdates.push({ sourceUid: row.sourceUid, destUid: f.uid, flags: row.flags });
      }
    }
    // Copies whose source UID is gone (one UID SEARCH: no message is read).
    if (incremental && ctx.syncDeletions) {
      const present = new Set(await lane.source.listUids(signal));
      for (const r of (await ledgerRows()).rows) if (!present.has(r.sourceUid) && r.destUid !== undefined) gone.push({ sourceUid: r.sourceUid, destUid: r.destUid });
    }
  }
  // A pass that turned out not to be incremental plans in full, with the ledger's rows.
  if (!incremental && state) await ledgerRows();
  if (incremental) {
    await state!.unmark();
    report.incremental = true;
  } else {
    await state?.reset();
    flagUpdates.length = 0;
  }
  let sourceListing: MessageListing;
  if (incremental) {
    const fresh = sourceStatus.uidNext! > marks!.sourceUidNext ? await lane.source.listMessages(signal, { sinceUid: marks!.sourceUidNext }) : { messages: [], failures: [] };
    const again = await state!.skippedUids();
    const retried = again.length > 0 ? await lane.source.listMessages(signal, { uids: again }) : { messages: [], failures: [] };
    sourceListing = { messages: [...retried.messages, ...fresh.messages], failures: [...retried.failures, ...fresh.failures] };
  } else {
    sourceListing = await listSource(run);
  }
  // --search: the source's own UID SEARCH names the messages, in the folder as it was just listed.
  // A filtered pass is never incremental (above), so the search always covers the whole folder.
  const searched = ctx.messageFilter?.search !== undefined ? await searchSource(run, ctx.messageFilter.search) : undefined;
  // --since/--before/--max-age/--min-age/--min-size/--just-folders/--search: only matching messages are planned (and counted).
  const sourceMetas = applyFilter(ctx.messageFilter, sourceListing.messages, searched);
  // A message the search left out is not the run's business even when it could not be described.
  const failures = searched ? sourceListing.failures.filter((f) => searched.has(f.uid)) : sourceListing.failures;
  const newBytes = sourceMetas.reduce((n, m) => n + m.size, 0);
  report.sourceCount = incremental ? sourceStatus.exists : sourceMetas.length + failures.length;
  report.sourceBytes = incremental ? marks!.sourceBytes + newBytes : newBytes;
  // A message the source will not even describe cannot be copied: it is skipped and reported.
  const unreadable: SkippedItem[] = failures.map(({ uid, error }) => ({
    folder: entry.sourceName,
    uid,
    size: 0,
    code: isMigrateError(error) ? error.code : ERROR_CODES.FETCH_FAILED,
    reason: error.message,
  }));

  let destMetas: MessageMeta[] = [];
  run.destValidity = incremental ? marks!.destUidValidity : undefined;
  run.destMark = incremental ? marks!.destUidNext : 1;
  if (!incremental && !(ctx.dryRun && entry.create)) {
    const status = await lane.dest.openFolder(entry.destPath, true);
    run.destValidity = status.uidValidity;
    run.destMark = status.uidNext ?? 1;
    const destListing = await lane.dest.listMessages(signal);
    await lane.dest.closeFolder();
    if (destListing.failures.length > 0) {
      // Without knowing what those messages are, copying could duplicate them: leave the folder.
      const first = destListing.failures[0]!;
      throw new MigrateError(
        ERROR_CODES.FOLDER_FAILED,
        `${destListing.failures.length} message(s) in destination folder "${entry.destName}" cannot be read (first: UID ${first.uid}: ${first.error.message}); the folder is left alone so that nothing is duplicated`,
        { scope: 'folder' },
      );
    }
    destMetas = destListing.messages;
    // Without UIDNEXT, everything the folder holds is looked at after a lost APPEND.
    if (status.uidNext === undefined) run.destMark = 1;
  }
  return { incremental, marks, sourceMetas, unreadable, destMetas, flagUpdates, gone, known };
}

/** The UIDs of the open source folder that the --search keys select. */
async function searchSource(run: FolderRun, keys: string): Promise<Set<number>> {
  // migrate() refuses --search for such a source before connecting; a library caller's store may still lack it.
  if (!run.lane.source.caps().search) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'The source store has no IMAP SEARCH: --search cannot select its messages.', { scope: 'mailbox' });
  }
  return new Set(await run.lane.source.searchUids(keys, run.signal));
}

/** Flags compared as sets (servers answer in their own order). */
function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  return [...a].sort().join(' ') === [...b].sort().join(' ');
}

/** The destination folder's flags by UID (opened read-only, so nothing is expunged or marked). */
async function destFlags(run: FolderRun): Promise<{ uid: number; flags: string[] }[]> {
  const { lane, entry, signal } = run;
  await lane.dest.openFolder(entry.destPath, true);
  try {
    return await lane.dest.listFlags(signal);
  } finally {
    await lane.dest.closeFolder();
  }
}

/** A store's refusal of an answer larger than allowed: the connection was closed, so it is handled like a loss. */
export function isOversized(err: unknown): boolean {
  return isMigrateError(err) && err.code === ERROR_CODES.RESPONSE_TOO_LARGE;
}
