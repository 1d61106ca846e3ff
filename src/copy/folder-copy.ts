/**
 * Copies one folder: read both listings, plan what is missing, then stream bodies from the source
 * to the destination in bounded batches. Reading (and scanning) batch k+1 overlaps appending
 * batch k (they use different connections), so the slower side sets the pace and memory holds at
 * most two batches.
 *
 * Failures, by blast radius:
 * - An item error (the source will not give a message, the destination will not take it) costs
 *   that item only. A temporary one ([UNAVAILABLE] "being scanned", [INUSE], throttling) is tried
 *   again with backoff, then deferred to a second pass at the end of the folder, then reported
 *   with the server's own words.
 * - A lost connection is rebuilt where it broke: a new connection, the folder selected again, its
 *   UIDVALIDITY checked, and the copy goes on. After a lost APPEND the destination is asked what
 *   arrived (everything above the UIDNEXT seen when the folder was listed, matched by content), so
 *   nothing is appended twice. A message whose FETCH makes the source drop the connection each
 *   time is isolated and reported.
 * - A changed UIDVALIDITY, or a folder that cannot be opened, ends this attempt at the folder; the
 *   caller plans it again or reports it.
 * - An out-of-quota destination or an unavailable scanner ends the mailbox (thrown).
 */
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import type { FolderPlanEntry } from '../plan/folder-plan.js';
import { batchMessages, matchMessages, planMessages, type BatchLimits } from '../plan/message-plan.js';
import type { ByteBudget } from './byte-budget.js';
import { isolateLosses } from './isolate.js';
import { backoffDelay, type RetryPolicy, type ServerGate } from './retry-policy.js';
import { sleep } from '../core/sleep.js';
import type { FolderReport, ScanVerdictRecord, SkippedItem } from '../report.js';
import type { AppendItem, AppendOutcome, FetchOutcome, MailStore, MessageListing, MessageMeta } from '../stores/mail-store.js';
import type { ContentScreen, ScreenResult } from '../scan/content-screen.js';
import type { FolderRecord } from '../state/store.js';

/** A source and a destination connection that copy one folder at a time. */
export interface Lane {
  source: MailStore;
  dest: MailStore;
}

/** What a folder copy needs. */
export interface FolderCopyContext {
  lane: Lane;
  /** Replaces one side of the lane (its connection was lost) with a new, connected store. */
  reconnect(side: 'source' | 'destination'): Promise<void>;
  entry: FolderPlanEntry;
  report: FolderReport;
  limits: BatchLimits;
  /** Bytes of bodies that may be in memory at once, shared with the other lanes. */
  budget: ByteBudget;
  retry: RetryPolicy;
  /** Pauses shared by every lane that talks to the same server (throttling). */
  gates: { source: ServerGate; destination: ServerGate };
  /** Refuses an item before it is fetched (size limits); undefined lets it through. */
  precheck(meta: MessageMeta): { code: ErrorCode; reason: string } | undefined;
  /** Remove at the destination what was deleted at the source since the last pass (needs the ledger). */
  syncDeletions?: boolean;
  /** A move: remove each source message once a fresh destination listing shows it arrived. */
  deleteSource?: boolean;
  /** This folder's record in the state ledger, when there is one. */
  state?: FolderRecord | undefined;
  /** Scanning in transit, when asked for. */
  screen?: ContentScreen | undefined;
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  /** Called once the folder's plan is known. */
  onPlanned(toCopy: number, toCopyBytes: number, alreadyPresent: number): void;
  /** Called after each batch with what it added. */
  onBatch(copied: number, copiedBytes: number, skipped: SkippedItem[], verdicts: ScanVerdictRecord[]): void;
}

/** A fetched message on its way to the destination. */
interface Ready {
  meta: MessageMeta;
  body: Buffer;
  screen?: ScreenResult;
}

/** An item that failed in a pass, with the error of its last try. */
interface Failure {
  meta: MessageMeta;
  error: MigrateError;
  tries: number;
}

interface Fetched {
  ready: Ready[];
  failed: Failure[];
  vanished: number;
  held: number;
}

/** Losses in a row, with no progress in between, after which a folder attempt gives up. */
const MAX_LOSSES_IN_A_ROW = 6;
/** UIDs described per command when a listing is taken again after a lost connection. */
const LIST_CHUNK = 200;

/** Copies one folder, filling `ctx.report`. Throws only for folder- and mailbox-level failures. */
export async function copyFolder(ctx: FolderCopyContext): Promise<void> {
  const { lane, entry, report, signal } = ctx;
  if (entry.noSelect) {
    ctx.onPlanned(0, 0, 0);
    return;
  }
  // By the name the source listed: re-spelling it from its levels could change it (a name
  // with a control character or "..", made safe only for the destination).
  const sourceStatus = await lane.source.openFolder(entry.sourcePath, true, entry.sourceName);
  /** A side's connection was lost: build a new one, select the folder again, check it is the same folder. */
  const reopenSource = async () => {
    await ctx.reconnect('source');
    const status = await lane.source.openFolder(entry.sourcePath, true, entry.sourceName);
    if (status.uidValidity !== sourceStatus.uidValidity) throw validityChanged('source', entry.sourceName);
  };

  /**
   * Lists the source folder. If the connection drops while it is described (a message the server
   * cannot read, or the network), the listing is taken again in chunks on new connections and
   * the message that breaks it is isolated and reported.
   */
  const listSource = async (): Promise<MessageListing> => {
    try {
      return await lane.source.listMessages(signal);
    } catch (err) {
      if (!isLoss(err, signal)) throw err;
      await reopenSource();
    }
    const uids = await lane.source.listUids(signal);
    const listing: MessageListing = { messages: [], failures: [] };
    const done = new Set<number>();
    for (let i = 0; i < uids.length; i += LIST_CHUNK) {
      await isolateLosses(uids.slice(i, i + LIST_CHUNK), {
        done,
        step: async (part) => {
          const l = await lane.source.listMessages(signal, { uids: part });
          listing.messages.push(...l.messages);
          listing.failures.push(...l.failures);
          for (const uid of part) done.add(uid);
        },
        isLoss: (err) => isLoss(err, signal),
        recover: reopenSource,
        giveUp: (uid, err, n) => {
          listing.failures.push({ uid, error: brokeConnection(`The source closed the connection each time UID ${uid} was described (${n} times)`, err) });
          done.add(uid);
        },
        suspectLimit: ctx.retry.attempts,
        maxLossesInARow: MAX_LOSSES_IN_A_ROW,
      });
    }
    return listing;
  };
  // With a state ledger whose record of this folder is complete and still true at both sides
  // (same UIDVALIDITY; the destination's UIDNEXT and count as left by the last pass), only the
  // source's new messages and the ones skipped last time are looked at: no listing of either
  // side in full. Anything else (a new folder, a killed run's intents, a destination changed
  // behind our back) is planned in full from both listings, by content identity.
  const state = ctx.dryRun ? undefined : ctx.state;
  const marks = await state?.trusted();
  let incremental = false;
  // A move verifies every message at the destination from a fresh listing: never incremental.
  if (marks && !ctx.deleteSource && !entry.create && marks.sourceUidValidity === sourceStatus.uidValidity && sourceStatus.uidNext !== undefined) {
    const d = await lane.dest.folderStatus(entry.destPath);
    incremental = !!d && d.uidValidity === marks.destUidValidity && d.uidNext === marks.destUidNext && d.exists === marks.destCount;
  }
  // Flag changes and deletions at the source since the last pass, from the ledger's rows.
  const known = await state?.copies();
  const flagUpdates: { sourceUid: number; destUid: number; flags: string[] }[] = [];
  const gone: { sourceUid: number; destUid: number }[] = [];
  if (incremental) {
    const rows = new Map(known!.rows.map((r) => [r.sourceUid, r]));
    // CONDSTORE: only what changed since the last pass's HIGHESTMODSEQ; otherwise every message's flags (no headers: cheap).
    const unchanged = marks!.sourceModseq !== undefined && sourceStatus.highestModseq !== undefined && sourceStatus.highestModseq === marks!.sourceModseq;
    if (!unchanged) {
      const since = marks!.sourceModseq !== undefined && sourceStatus.highestModseq !== undefined ? marks!.sourceModseq : undefined;
      for (const f of await lane.source.listFlags(signal, since !== undefined ? { changedSince: since } : {})) {
        const row = rows.get(f.uid);
        const flags = flagsToCopy(f.flags);
        if (!row || row.flags.join(' ') === flags.join(' ')) continue;
        // A copy without a known destination UID (no UIDPLUS) cannot be updated in place: plan in full.
        if (row.destUid === undefined) incremental = false;
        else flagUpdates.push({ sourceUid: row.sourceUid, destUid: row.destUid, flags });
      }
    }
    // Copies whose source UID is gone (one UID SEARCH: no message is read).
    if (incremental && ctx.syncDeletions) {
      const present = new Set(await lane.source.listUids(signal));
      for (const r of known!.rows) if (!present.has(r.sourceUid) && r.destUid !== undefined) gone.push({ sourceUid: r.sourceUid, destUid: r.destUid });
    }
  }
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
    sourceListing = await listSource();
  }
  const sourceMetas = sourceListing.messages;
  const newBytes = sourceMetas.reduce((n, m) => n + m.size, 0);
  report.sourceCount = incremental ? sourceStatus.exists : sourceMetas.length + sourceListing.failures.length;
  report.sourceBytes = incremental ? marks!.sourceBytes + newBytes : newBytes;
  // A message the source will not even describe cannot be copied: it is skipped and reported.
  const unreadable: SkippedItem[] = sourceListing.failures.map(({ uid, error }) => ({
    folder: entry.sourceName,
    uid,
    size: 0,
    code: isMigrateError(error) ? error.code : ERROR_CODES.FETCH_FAILED,
    reason: error.message,
  }));

  let destMetas: MessageMeta[] = [];
  let destValidity: bigint | undefined = incremental ? marks!.destUidValidity : undefined;
  let destMark = incremental ? marks!.destUidNext : 1;
  if (!incremental && !(ctx.dryRun && entry.create)) {
    const status = await lane.dest.openFolder(entry.destPath, true);
    destValidity = status.uidValidity;
    destMark = status.uidNext ?? 1;
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
    if (status.uidNext === undefined) destMark = 1;
  }
  if (unreadable.length > 0) {
    report.skipped += unreadable.length;
    for (const u of unreadable) await state?.skip(u.uid, u.code, u.reason, undefined);
    ctx.onBatch(0, 0, unreadable, []);
  }
  const match = matchMessages(sourceMetas, destMetas);
  if (!incremental) {
    // Same message, other flags: the source's flags win (the destination is a copy until cutover).
    for (const p of match.pairs) {
      const flags = flagsToCopy(p.source.flags);
      if (flags.join(' ') !== flagsToCopy(p.dest.flags).join(' ')) flagUpdates.push({ sourceUid: p.source.uid, destUid: p.dest.uid, flags });
    }
    // Deleted at the source: destination messages this ledger recorded as copies (same
    // destination UIDVALIDITY) that match no source message any more.
    if (ctx.syncDeletions && known && destValidity !== undefined && known.destUidValidity === destValidity) {
      const copied = new Set(known.rows.flatMap((r) => (r.destUid === undefined ? [] : [r.destUid])));
      for (const x of match.extra) if (copied.has(x.uid)) gone.push({ sourceUid: -1, destUid: x.uid });
    }
    await state?.recordPresent(match.pairs.map((p) => ({ source: { ...p.source, flags: flagsToCopy(p.source.flags) }, destUid: p.dest.uid })));
  }
  if (!ctx.dryRun && flagUpdates.length > 0) {
    await lane.dest.setFlags(entry.destPath, flagUpdates.map((u) => ({ uid: u.destUid, flags: u.flags })));
    await state?.updateFlags(flagUpdates);
    report.flagsUpdated = flagUpdates.length;
  }
  if (!ctx.dryRun && gone.length > 0) {
    await lane.dest.deleteMessages(entry.destPath, gone.map((g) => g.destUid));
    await state?.forget(gone.filter((g) => g.sourceUid >= 0).map((g) => g.sourceUid));
    report.deleted = gone.length;
  }
  const plan = { toCopy: match.missing, alreadyPresent: incremental ? Math.max(0, sourceStatus.exists - sourceMetas.length - sourceListing.failures.length) : match.pairs.length };
  report.alreadyPresent = plan.alreadyPresent;
  const toCopyBytes = plan.toCopy.reduce((n, m) => n + m.size, 0);
  ctx.onPlanned(plan.toCopy.length, toCopyBytes, plan.alreadyPresent);
  /** Records the pass as complete: a rerun may trust it. */
  const finish = async () => {
    if (!state || destValidity === undefined) return;
    // Nothing appended in an incremental pass: the destination is as the marks say (no STATUS needed).
    const d = incremental && report.copied === 0 && !report.flagsUpdated && !report.deleted ? { uidValidity: marks!.destUidValidity, uidNext: marks!.destUidNext, exists: marks!.destCount } : await lane.dest.folderStatus(entry.destPath);
    if (!d || d.uidValidity !== destValidity) return;
    await state.markSynced({
      sourceUidValidity: sourceStatus.uidValidity,
      // Messages that arrive at the source from now on have at least this UID.
      sourceUidNext: incremental ? Math.max(marks!.sourceUidNext, sourceStatus.uidNext!) : (sourceStatus.uidNext ?? Math.max(0, ...sourceMetas.map((m) => m.uid)) + 1),
      sourceCount: report.sourceCount,
      sourceBytes: report.sourceBytes,
      sourceModseq: sourceStatus.highestModseq,
      destUidValidity: d.uidValidity,
      destUidNext: d.uidNext ?? 0,
      destCount: d.exists,
    });
  };
  /**
   * A move: the destination is listed afresh and every source message it holds (matched by
   * content, as a multiset) is removed at the source. Nothing that is not verified there -
   * skipped, refused, quarantined, vanished - is ever removed.
   */
  const removeVerified = async () => {
    if (!ctx.deleteSource || ctx.dryRun) return;
    await lane.dest.openFolder(entry.destPath, true);
    const there = await lane.dest.listMessages(signal);
    await lane.dest.closeFolder();
    if (there.failures.length > 0) {
      throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `The destination folder "${entry.destName}" could not be listed in full to verify the copies; nothing was removed at the source`, { scope: 'folder' });
    }
    const verified = matchMessages(sourceMetas, there.messages).pairs.map((p) => p.source.uid);
    await lane.source.deleteMessages(entry.sourcePath, verified, entry.sourceName);
    report.sourceDeleted = verified.length;
  };
  if (ctx.dryRun || plan.toCopy.length === 0) {
    if (ctx.dryRun) report.copied = 0;
    else {
      await finish();
      await removeVerified();
    }
    return;
  }

  const skipItem = (meta: MessageMeta, code: ErrorCode, reason: string, tries?: number): SkippedItem => {
    const item: SkippedItem = { folder: entry.sourceName, uid: meta.uid, size: meta.size, code, reason };
    if (meta.messageId) item.messageId = meta.messageId;
    if (tries !== undefined && tries > 1) item.attempts = tries;
    return item;
  };

  // Size limits are known from the listing: refuse before fetching a byte.
  const refused: SkippedItem[] = [];
  let todo: MessageMeta[] = [];
  for (const meta of plan.toCopy) {
    const no = ctx.precheck(meta);
    if (no) refused.push(skipItem(meta, no.code, no.reason));
    else todo.push(meta);
  }
  if (refused.length > 0) {
    report.skipped += refused.length;
    for (const r of refused) await state?.skip(r.uid, r.code, r.reason, undefined);
    ctx.onBatch(0, 0, refused, []);
  }

  /** Messages appended to the destination folder by this call (to tell, after a lost APPEND, what arrived). */
  const sent: MessageMeta[] = [];
  const tries = new Map<number, number>();
  const addTry = (uid: number) => tries.set(uid, (tries.get(uid) ?? 0) + 1);

  const pauseFor = (gate: ServerGate, failures: readonly Failure[]): number | undefined => {
    const asked = Math.max(0, ...failures.map((f) => f.error.retryAfterMs ?? 0));
    if (asked > 0) gate.pauseFor(asked);
    return asked > 0 ? asked : undefined;
  };
  const retryable = (f: Failure, tryInPass: number) => f.error.retry === 'later' || (f.error.retry === 'now' && tryInPass < 2);

  /** Fetches `metas`, surviving lost connections; a message that breaks the connection each time is isolated. */
  const fetchRobust = async (metas: readonly MessageMeta[]): Promise<Map<number, FetchOutcome>> => {
    const out = new Map<number, FetchOutcome>();
    const sizeOf = new Map(metas.map((m) => [m.uid, m.size]));
    const done = new Set<number>();
    const set = (o: FetchOutcome) => {
      out.set(o.uid, o);
      done.add(o.uid);
    };
    await isolateLosses(
      metas.map((m) => m.uid),
      {
        done,
        step: async (part) => {
          await ctx.gates.source.take(part.length, part.reduce((n, uid) => n + (sizeOf.get(uid) ?? 0), 0), signal);
          for await (const o of lane.source.fetchBodies(part, signal)) if (part.includes(o.uid) && !done.has(o.uid)) set(o);
          for (const uid of part) if (!done.has(uid)) set({ uid, vanished: true });
        },
        isLoss: (err) => isLoss(err, signal),
        recover: reopenSource,
        giveUp: (uid, err, n) => set({ uid, error: brokeConnection(`The source closed the connection each time UID ${uid} was read (${n} times)`, err) }),
        suspectLimit: ctx.retry.attempts,
        maxLossesInARow: MAX_LOSSES_IN_A_ROW,
      },
    );
    return out;
  };

  const fetchStage = async (metas: MessageMeta[]): Promise<Fetched> => {
    const held = await ctx.budget.acquire(
      metas.reduce((n, m) => n + m.size, 0),
      signal,
    );
    try {
      const ready: Ready[] = [];
      const failed: Failure[] = [];
      let vanished = 0;
      let pending = metas;
      for (let attempt = 1; pending.length > 0; attempt++) {
        const outcomes = await fetchRobust(pending);
        const again: Failure[] = [];
        for (const meta of pending) {
          const o = outcomes.get(meta.uid)!;
          addTry(meta.uid);
          if ('body' in o) ready.push({ meta, body: o.body });
          else if ('vanished' in o) vanished++;
          else {
            const f: Failure = { meta, error: asItemError(o.error, ERROR_CODES.FETCH_FAILED), tries: tries.get(meta.uid)! };
            if (attempt < ctx.retry.attempts && retryable(f, attempt)) again.push(f);
            else failed.push(f);
          }
        }
        if (again.length === 0) break;
        await sleep(backoffDelay(ctx.retry, attempt, pauseFor(ctx.gates.source, again)), signal);
        pending = again.map((f) => f.meta);
      }
      if (ctx.screen && ready.length > 0) {
        const results = await ctx.screen.check(
          ready.map((r) => r.body),
          signal,
        );
        results.forEach((s, i) => (ready[i]!.screen = s));
      }
      return { ready, failed, vanished, held };
    } catch (err) {
      ctx.budget.release(held);
      throw err;
    }
  };

  /** After a lost APPEND: which of `inflight` are at the destination now? */
  const arrived = async (inflight: readonly Ready[]): Promise<Set<Ready>> => {
    const status = await lane.dest.openFolder(entry.destPath, true);
    if (destValidity !== undefined && status.uidValidity !== destValidity) throw validityChanged('destination', entry.destName);
    const listing = await lane.dest.listMessages(signal, { sinceUid: destMark });
    await lane.dest.closeFolder();
    if (listing.failures.length > 0) {
      throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `After a lost connection, new messages in "${entry.destName}" cannot be read, so it cannot be told what arrived; the folder is planned again`, {
        scope: 'folder',
        retry: 'now',
      });
    }
    const missing = new Set(planMessages([...sent, ...inflight.map((r) => r.meta)], listing.messages).toCopy);
    return new Set(inflight.filter((r) => !missing.has(r.meta)));
  };

  /** Appends `items`, surviving lost connections without appending anything twice. */
  const appendRobust = async (items: readonly Ready[]): Promise<Map<Ready, AppendOutcome>> => {
    const out = new Map<Ready, AppendOutcome>();
    let left = [...items];
    let losses = 0;
    while (left.length > 0) {
      await ctx.gates.destination.take(
        left.length,
        left.reduce((n, r) => n + r.body.length, 0),
        signal,
      );
      try {
        const outcomes = await lane.dest.appendBatch(entry.destPath, left.map(toAppendItem), signal);
        left.forEach((r, i) => out.set(r, outcomes[i]!));
        left = [];
      } catch (err) {
        if (!isLoss(err, signal)) throw err;
        // The outcome of what was in flight is unknown: never append it again blindly.
        for (;;) {
          if (++losses > MAX_LOSSES_IN_A_ROW) throw err;
          try {
            await ctx.reconnect('destination');
            const there = await arrived(left);
            for (const r of there) out.set(r, { ok: true, uid: undefined });
            left = left.filter((r) => !there.has(r));
            if (there.size > 0) losses = 0;
            break;
          } catch (again) {
            if (!isLoss(again, signal)) throw again;
          }
        }
      }
    }
    return out;
  };

  const appendStage = async (ready: readonly Ready[]): Promise<{ copied: number; copiedBytes: number; failed: Failure[]; verdicts: ScanVerdictRecord[] }> => {
    let copied = 0;
    let copiedBytes = 0;
    const failed: Failure[] = [];
    const verdicts: ScanVerdictRecord[] = [];
    let deliver: Ready[] = [];
    for (const r of ready) {
      if (!ctx.screen || !r.screen || r.screen.verdict === 'clean') {
        deliver.push(r);
        continue;
      }
      const decision = await ctx.screen.dispose(r.screen, { folder: entry.sourceName, meta: r.meta, body: r.body }, lane, () => ctx.reconnect('destination'), signal);
      verdicts.push(decision.record);
      if (decision.deliver) deliver.push(r);
      else if (decision.record.action === 'quarantined') report.quarantined = (report.quarantined ?? 0) + 1;
      else report.withheld = (report.withheld ?? 0) + 1;
    }
    for (let attempt = 1; deliver.length > 0; attempt++) {
      // Intent before acting, result after: a run killed in between leaves intents, and the next
      // run plans this folder from both listings instead of trusting the ledger.
      await state?.intend(deliver.map((r) => ({ uid: r.meta.uid, key: r.meta.key, size: r.meta.size, flags: flagsToCopy(r.meta.flags) })));
      const outcomes = await appendRobust(deliver);
      await state?.settle(
        deliver.flatMap((r) => {
          const o = outcomes.get(r)!;
          return o.ok ? [{ uid: r.meta.uid, destUid: o.uid }] : [];
        }),
        deliver.filter((r) => !outcomes.get(r)!.ok).map((r) => r.meta.uid),
      );
      const again: Failure[] = [];
      for (const r of deliver) {
        const o = outcomes.get(r)!;
        addTry(r.meta.uid);
        if (o.ok) {
          copied++;
          copiedBytes += r.body.length;
          sent.push(r.meta);
          continue;
        }
        const f: Failure = { meta: r.meta, error: asItemError(o.error, ERROR_CODES.APPEND_FAILED), tries: tries.get(r.meta.uid)! };
        if (attempt < ctx.retry.attempts && retryable(f, attempt)) again.push(f);
        else failed.push(f);
      }
      if (again.length === 0) break;
      await sleep(backoffDelay(ctx.retry, attempt, pauseFor(ctx.gates.destination, again)), signal);
      const byMeta = new Set(again.map((f) => f.meta));
      deliver = deliver.filter((r) => byMeta.has(r.meta));
    }
    return { copied, copiedBytes, failed, verdicts };
  };

  /** One pass over `metas`: fetch (and scan) batch k+1 while batch k is appended. Returns what failed. */
  const runPass = async (metas: MessageMeta[]): Promise<Failure[]> => {
    const failures: Failure[] = [];
    const batches = batchMessages(metas, ctx.limits);
    if (batches.length === 0) return failures;
    let next: Promise<Fetched> | undefined = fetchStage(batches[0]!);
    try {
      for (let k = 0; k < batches.length; k++) {
        signal?.throwIfAborted();
        const fetched: Fetched = await next!;
        next = k + 1 < batches.length ? fetchStage(batches[k + 1]!) : undefined;
        // The prefetch may fail while we append; its error is handled when we await it.
        next?.catch(() => undefined);
        report.vanished += fetched.vanished;
        let result: Awaited<ReturnType<typeof appendStage>>;
        try {
          result = await appendStage(fetched.ready);
        } finally {
          ctx.budget.release(fetched.held);
        }
        failures.push(...fetched.failed, ...result.failed);
        report.copied += result.copied;
        report.copiedBytes += result.copiedBytes;
        ctx.onBatch(result.copied, result.copiedBytes, [], result.verdicts);
      }
    } catch (err) {
      await next?.then(
        (b) => ctx.budget.release(b.held),
        () => undefined,
      );
      throw err;
    }
    return failures;
  };

  try {
    // Pass 1, then the deferred pass for what failed for a reason that may pass.
    let failures = await runPass(todo);
    const deferred = failures.filter((f) => f.error.retry !== 'never');
    if (deferred.length > 0) {
      const wait = backoffDelay(ctx.retry, ctx.retry.attempts, Math.max(0, ...deferred.map((f) => f.error.retryAfterMs ?? 0)) || undefined);
      await sleep(wait, signal);
      todo = deferred.map((f) => f.meta);
      failures = [...failures.filter((f) => f.error.retry === 'never'), ...(await runPass(todo))];
    }
    const skipped = failures.map((f) => {
      const still = f.tries > 1 ? ` (still failing after ${f.tries} tries)` : '';
      return skipItem(f.meta, f.error.code, `${f.error.message}${still}`, f.tries);
    });
    if (skipped.length > 0) {
      report.skipped += skipped.length;
      for (const k of skipped) await state?.skip(k.uid, k.code, k.reason, k.attempts);
      ctx.onBatch(0, 0, skipped, []);
    }
    await finish();
    await removeVerified();
  } catch (err) {
    if (signal?.aborted && !(isMigrateError(err) && err.scope === 'mailbox')) {
      throw new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
    }
    throw err;
  }
}

function toAppendItem(r: Ready): AppendItem {
  return { body: r.body, flags: flagsToCopy(r.meta.flags), internalDate: r.meta.internalDate };
}

/** True for a lost connection (and not for an abort, which is not to be retried). */
function isLoss(err: unknown, signal: AbortSignal | undefined): boolean {
  return !signal?.aborted && isMigrateError(err) && err.code === ERROR_CODES.CONNECTION_LOST && err.scope !== 'mailbox';
}

function asItemError(err: Error, code: ErrorCode): MigrateError {
  return isMigrateError(err) ? err : new MigrateError(code, err.message, { scope: 'message', retry: 'now', cause: err });
}

function brokeConnection(message: string, err: unknown): MigrateError {
  const server = isMigrateError(err) ? err.serverResponse : undefined;
  return new MigrateError(ERROR_CODES.FETCH_FAILED, `${message}; last: ${(err as Error)?.message ?? String(err)}`, {
    scope: 'message',
    retry: 'never',
    cause: err,
    ...(server ? { serverResponse: server } : {}),
  });
}

function validityChanged(side: 'source' | 'destination', name: string): MigrateError {
  return new MigrateError(ERROR_CODES.CONNECTION_LOST, `The ${side} folder "${name}" changed its UIDVALIDITY while it was copied (it was recreated); it is planned again from its contents`, {
    scope: 'folder',
    retry: 'now',
  });
}
