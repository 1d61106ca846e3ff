/**
 * Copies one folder, stage by stage: list both sides (list-stage.ts), plan what is missing
 * (plan/message-plan.ts, pure), carry flag changes and deletions over, then stream bodies from
 * the source to the destination in bounded batches: fetch and check (fetch-stage.ts), scan,
 * append and record (append-stage.ts); last, for a move, remove what is proven at the
 * destination (move-stage.ts). Reading (and scanning) batch k+1 overlaps appending batch k (they
 * use different connections), so the slower side sets the pace and memory holds at most two
 * batches.
 *
 * Failures, by blast radius:
 * - An item error (the source will not give a message, gives the wrong bytes, the destination
 *   will not take it) costs that item only. A temporary one ([UNAVAILABLE] "being scanned",
 *   [INUSE], throttling) is tried again with backoff, then deferred to a second pass at the end
 *   of the folder, then reported with the server's own words.
 * - A lost connection is rebuilt where it broke (see the stages), charged to the folder's budget
 *   of reconnects; a folder that spends it is given up (MM-FOLDER-GAVE-UP).
 * - A changed UIDVALIDITY, or a folder that cannot be opened, ends this attempt at the folder; the
 *   caller plans it again or reports it.
 * - An out-of-quota destination or an unavailable scanner ends the mailbox (thrown); so does a
 *   spent daily budget or a provider's own bandwidth limit, which park it (copy/daily-budget.ts).
 */
import { collectYoung, freeBuffer } from '../core/release-memory.js';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { flagsToCopy, invalidFlags } from '../core/flags.js';
import { sleep } from '../core/sleep.js';
import { batchMessages, matchMessages } from '../plan/message-plan.js';
import type { MessageMeta } from '../stores/mail-store.js';
import { appendStage } from './append-stage.js';
import { budgetedFetch, type BudgetedFetch } from './fetch-stage.js';
import { FolderRun, type Failure, type FolderCopyContext } from './folder-run.js';
import { listBothSides, type Listed } from './list-stage.js';
import { removeProven } from './move-stage.js';
import { backoffDelay } from './retry-policy.js';
import { quietFolder } from './quiet-stage.js';

export type { FolderCopyContext, Lane, LossBudget } from './folder-run.js';

/** Copies one folder, filling `ctx.report`. Throws only for folder- and mailbox-level failures. */
export async function copyFolder(ctx: FolderCopyContext): Promise<void> {
  const { entry, report, signal } = ctx;
  if (entry.noSelect) {
    ctx.onPlanned(0, 0, 0);
    return;
  }
  if (await quietFolder(ctx)) return;
  // By the name the source listed: re-spelling it from its levels could change it (a name
  // with a control character or "..", made safe only for the destination).
  const sourceStatus = await ctx.lane.source.openFolder(entry.sourcePath, true, entry.sourceName);
  const run = new FolderRun(ctx, sourceStatus);
  const listed = await listBothSides(run);
  await run.skip(listed.unreadable);
  const plan = await applyListing(run, listed);
  const finish = async () => {
    if (!ctx.messageFilter) await markSynced(run, listed);
    await removeProven(run, listed.sourceMetas);
  };
  if (ctx.dryRun || plan.toCopy.length === 0) {
    if (ctx.dryRun) report.copied = 0;
    else await finish();
    return;
  }
  // Size limits are known from the listing: refuse before fetching a byte.
  const refused = [];
  let todo: MessageMeta[] = [];
  for (const meta of plan.toCopy) {
    const no = ctx.precheck(meta);
    if (no) refused.push(run.skipItem(meta, no.code, no.reason));
    else todo.push(meta);
  }
  await run.skip(refused);
  noteDroppedFlags(run, todo);
  try {
    // Pass 1, then the deferred pass for what failed for a reason that may pass.
    let failures = await runPass(run, todo);
    const deferred = failures.filter((f) => f.error.retry !== 'never');
    if (deferred.length > 0) {
      const wait = backoffDelay(ctx.retry, ctx.retry.attempts, Math.max(0, ...deferred.map((f) => f.error.retryAfterMs ?? 0)) || undefined);
      ctx.log?.warn({ event: 'retry', folder: entry.sourceName, pass: 2, messages: deferred.length, code: deferred[0]?.error.code, waitMs: wait }, 'trying the failed messages again in a second pass');
      await sleep(wait, signal);
      todo = deferred.map((f) => f.meta);
      failures = [...failures.filter((f) => f.error.retry === 'never'), ...(await runPass(run, todo))];
    }
    await run.skip(
      failures.map((f) => {
        const still = f.tries > 1 ? ` (still failing after ${f.tries} tries)` : '';
        return run.skipItem(f.meta, f.error.code, `${f.error.message}${still}`, f.tries);
      }),
    );
    await finish();
  } catch (err) {
    if (signal?.aborted && !(isMigrateError(err) && err.scope === 'mailbox')) {
      throw new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
    }
    throw err;
  }
}

/**
 * The plan from both listings: pairs whose flags differ are brought in line with the source,
 * copies deleted at the source are removed (--sync-deletions), and what is missing is returned.
 */
async function applyListing(run: FolderRun, listed: Listed): Promise<{ toCopy: MessageMeta[] }> {
  const { ctx, report, state, sourceStatus, lane, entry } = run;
  const { incremental, sourceMetas, destMetas, flagUpdates, gone, known } = listed;
  const match = matchMessages(sourceMetas, destMetas);
  if (!incremental) {
    // Same message, other flags: the source's flags win (the destination is a copy until cutover).
    for (const p of match.pairs) {
      const flags = flagsToCopy(p.source.flags);
      if (flags.join(' ') !== flagsToCopy(p.dest.flags).join(' ')) flagUpdates.push({ sourceUid: p.source.uid, destUid: p.dest.uid, flags });
    }
    // Deleted at the source: destination messages this ledger recorded as copies (same
    // destination UIDVALIDITY) that match no source message any more.
    if (ctx.syncDeletions && known && run.destValidity !== undefined && known.destUidValidity === run.destValidity) {
      // Only a message that is still exactly what this ledger recorded under that UID (same
      // identity and size): a UID alone is not proof once the folder was listed afresh.
      const copied = new Map(known.rows.flatMap((r) => (r.destUid === undefined ? [] : [[r.destUid, r] as const])));
      for (const x of match.extra) {
        const row = copied.get(x.uid);
        if (row && row.key === x.key && row.size === x.size) gone.push({ sourceUid: -1, destUid: x.uid });
      }
    }
    await state?.recordPresent(match.pairs.map((p) => ({ source: { ...p.source, flags: flagsToCopy(p.source.flags) }, destUid: p.dest.uid })));
  }
  if (!ctx.dryRun && flagUpdates.length > 0) {
    await lane.dest.setFlags(
      entry.destPath,
      flagUpdates.map((u) => ({ uid: u.destUid, flags: u.flags })),
    );
    await state?.updateFlags(flagUpdates);
    report.flagsUpdated = flagUpdates.length;
  }
  if (!ctx.dryRun && gone.length > 0) {
    await lane.dest.deleteMessages(
      entry.destPath,
      gone.map((g) => g.destUid),
    );
    await state?.forget(gone.filter((g) => g.sourceUid >= 0).map((g) => g.sourceUid));
    report.deleted = gone.length;
  }
  // Recorded as copied by an earlier pass, missing at the destination now (deleted there, or the
  // folder recreated): copied again, and said so.
  if (!incremental && known && known.rows.length > 0 && !ctx.dryRun) {
    const copiedBefore = new Set(known.rows.map((r) => r.sourceUid));
    const refilled = match.missing.filter((m) => copiedBefore.has(m.uid)).length;
    if (refilled > 0) report.refilled = refilled;
  }
  const unlisted = listed.unreadable.length;
  report.alreadyPresent = incremental ? Math.max(0, sourceStatus.exists - sourceMetas.length - unlisted) : match.pairs.length;
  ctx.onPlanned(
    match.missing.length,
    match.missing.reduce((n, m) => n + m.size, 0),
    report.alreadyPresent,
  );
  return { toCopy: match.missing };
}

/** Flags a source listed that cannot be sent (see core/flags.ts): left out, and said once per folder. */
function noteDroppedFlags(run: FolderRun, metas: readonly MessageMeta[]): void {
  const dropped = new Set<string>();
  let messages = 0;
  for (const m of metas) {
    const bad = invalidFlags(m.flags);
    if (bad.length === 0) continue;
    messages++;
    for (const f of bad) if (dropped.size < 20) dropped.add(f);
  }
  if (messages > 0) run.report.flagsDropped = { messages, flags: [...dropped] };
}

/** Records the pass as complete: a rerun may trust it. */
async function markSynced(run: FolderRun, listed: Listed): Promise<void> {
  const { state, report, sourceStatus, lane, entry } = run;
  const { incremental, marks, sourceMetas } = listed;
  if (!state || run.destValidity === undefined) return;
  // Nothing appended in an incremental pass: the destination is as the marks say (no STATUS needed).
  const d =
    incremental && report.copied === 0 && !report.flagsUpdated && !report.deleted
      ? { uidValidity: marks!.destUidValidity, uidNext: marks!.destUidNext, exists: marks!.destCount, highestModseq: run.destModseq }
      : await lane.dest.folderStatus(entry.destPath);
  if (!d || d.uidValidity !== run.destValidity) return;
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
    destModseq: d.highestModseq,
  });
}

/** One pass over `metas`: fetch (and scan) batch k+1 while batch k is appended. Returns what failed. */
async function runPass(run: FolderRun, metas: MessageMeta[]): Promise<Failure[]> {
  const { ctx, report, signal } = run;
  const failures: Failure[] = [];
  const batches = batchMessages(metas, ctx.limits);
  if (batches.length === 0) return failures;
  let next: Promise<BudgetedFetch> | undefined = budgetedFetch(run, batches[0]!);
  try {
    for (let k = 0; k < batches.length; k++) {
      signal?.throwIfAborted();
      const fetched: BudgetedFetch = await next!;
      // A daily budget let only part of this batch through: nothing more is fetched.
      next = k + 1 < batches.length && !fetched.park ? budgetedFetch(run, batches[k + 1]!) : undefined;
      // The prefetch may fail while we append; its error is handled when we await it.
      next?.catch(() => undefined);
      report.vanished += fetched.vanished;
      let result: Awaited<ReturnType<typeof appendStage>>;
      try {
        result = await appendStage(run, fetched.ready);
      } finally {
        ctx.budget.release(fetched.held);
      }
      // Every message appended (the server's OK means it has read every byte sent): the bodies
      // are dead, free them now. After a failure or an abort a write may still be queued on the
      // socket, so those are left to the garbage collector.
      if (result.failed.length === 0) for (const r of fetched.ready) if (r.fresh) freeBuffer(r.body);
      collectYoung();
      failures.push(...fetched.failed, ...result.failed);
      report.copied += result.copied;
      report.copiedBytes += result.copiedBytes;
      ctx.onBatch(result.copied, result.copiedBytes, [], result.verdicts);
      // Parked between batches: what was let through is appended and settled.
      if (fetched.park) throw fetched.park;
    }
  } catch (err) {
    await next?.then(
      (b) => ctx.budget.release(b.held),
      () => undefined,
    );
    throw err;
  }
  return failures;
}
