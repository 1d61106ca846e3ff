/**
 * Copies one folder: read both listings, plan what is missing, then stream bodies from the source
 * to the destination in bounded batches. Reading batch k+1 overlaps appending batch k (they use
 * different connections), so the slower side sets the pace and memory holds at most two batches.
 *
 * Item errors (a message the source will not give or the destination will not take) are recorded
 * and the folder goes on. Folder errors (the folder cannot be opened, the connection is lost)
 * end this folder only; the caller records them and goes on with the others.
 */
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import type { FolderPlanEntry } from '../plan/folder-plan.js';
import { batchMessages, planMessages, type BatchLimits } from '../plan/message-plan.js';
import type { ByteBudget } from './byte-budget.js';
import type { FolderReport, SkippedItem } from '../report.js';
import type { AppendItem, MailStore, MessageMeta } from '../stores/mail-store.js';

/** What a folder copy needs. */
export interface FolderCopyContext {
  source: MailStore;
  dest: MailStore;
  entry: FolderPlanEntry;
  report: FolderReport;
  limits: BatchLimits;
  /** Bytes of bodies that may be in memory at once, shared with the other lanes. */
  budget: ByteBudget;
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  /** Called once the folder's plan is known. */
  onPlanned(toCopy: number, toCopyBytes: number, alreadyPresent: number): void;
  /** Called after each batch with what it added. */
  onBatch(copied: number, copiedBytes: number, skipped: SkippedItem[]): void;
}

interface FetchedBatch {
  items: AppendItem[];
  metas: MessageMeta[];
}

/** Copies one folder, filling `ctx.report`. Throws only for folder-level failures. */
export async function copyFolder(ctx: FolderCopyContext): Promise<void> {
  const { source, dest, entry, report, signal } = ctx;
  if (entry.noSelect) {
    ctx.onPlanned(0, 0, 0);
    return;
  }
  // By the name the source listed: re-spelling it from its levels could change it (a name
  // with a control character or "..", made safe only for the destination).
  await source.openFolder(entry.sourcePath, true, entry.sourceName);
  const sourceListing = await source.listMessages(signal);
  const sourceMetas = sourceListing.messages;
  report.sourceCount = sourceMetas.length + sourceListing.failures.length;
  report.sourceBytes = sourceMetas.reduce((n, m) => n + m.size, 0);
  // A message the source will not even describe cannot be copied: it is skipped and reported.
  const unreadable: SkippedItem[] = sourceListing.failures.map(({ uid, error }) => ({
    folder: entry.sourceName,
    uid,
    size: 0,
    code: isMigrateError(error) ? error.code : ERROR_CODES.FETCH_FAILED,
    reason: error.message,
  }));

  let destMetas: MessageMeta[] = [];
  if (!(ctx.dryRun && entry.create)) {
    await dest.openFolder(entry.destPath, true);
    const destListing = await dest.listMessages(signal);
    await dest.closeFolder();
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
  }
  if (unreadable.length > 0) {
    report.skipped += unreadable.length;
    ctx.onBatch(0, 0, unreadable);
  }
  const plan = planMessages(sourceMetas, destMetas);
  report.alreadyPresent = plan.alreadyPresent;
  const toCopyBytes = plan.toCopy.reduce((n, m) => n + m.size, 0);
  ctx.onPlanned(plan.toCopy.length, toCopyBytes, plan.alreadyPresent);
  if (ctx.dryRun || plan.toCopy.length === 0) {
    if (ctx.dryRun) report.copied = 0;
    return;
  }

  const skip = (meta: MessageMeta, code: SkippedItem['code'], reason: string): SkippedItem => {
    const item: SkippedItem = { folder: entry.sourceName, uid: meta.uid, size: meta.size, code, reason };
    if (meta.messageId) item.messageId = meta.messageId;
    return item;
  };

  type Fetched = FetchedBatch & { skipped: SkippedItem[]; vanished: number; held: number };
  const fetchBatch = async (metas: MessageMeta[]): Promise<Fetched> => {
    const held = await ctx.budget.acquire(metas.reduce((n, m) => n + m.size, 0), signal);
    try {
      const byUid = new Map(metas.map((m) => [m.uid, m]));
      const items: AppendItem[] = [];
      const ok: MessageMeta[] = [];
      const skipped: SkippedItem[] = [];
      let vanished = 0;
      for await (const outcome of source.fetchBodies(metas.map((m) => m.uid), signal)) {
        const meta = byUid.get(outcome.uid);
        if (!meta) continue;
        if ('body' in outcome) {
          items.push({ body: outcome.body, flags: flagsToCopy(meta.flags), internalDate: meta.internalDate });
          ok.push(meta);
        } else if ('error' in outcome) {
          skipped.push(skip(meta, isMigrateError(outcome.error) ? outcome.error.code : ERROR_CODES.FETCH_FAILED, outcome.error.message));
        } else {
          vanished++;
        }
      }
      return { items, metas: ok, skipped, vanished, held };
    } catch (err) {
      ctx.budget.release(held);
      throw err;
    }
  };

  const batches = batchMessages(plan.toCopy, ctx.limits);
  let next: Promise<Fetched> | undefined = fetchBatch(batches[0]!);
  try {
    for (let k = 0; k < batches.length; k++) {
      signal?.throwIfAborted();
      const fetched: Fetched = await next!;
      next = k + 1 < batches.length ? fetchBatch(batches[k + 1]!) : undefined;
      // The prefetch may fail while we append; its error is handled when we await it.
      next?.catch(() => undefined);
      report.vanished += fetched.vanished;
      const skipped = [...fetched.skipped];
      let copied = 0;
      let copiedBytes = 0;
      try {
        if (fetched.items.length > 0) {
          const outcomes = await dest.appendBatch(entry.destPath, fetched.items, signal);
          outcomes.forEach((o, i) => {
            const meta = fetched.metas[i]!;
            if (o.ok) {
              copied++;
              copiedBytes += fetched.items[i]!.body.length;
            } else {
              skipped.push(skip(meta, isMigrateError(o.error) ? o.error.code : ERROR_CODES.APPEND_FAILED, o.error.message));
            }
          });
        }
      } finally {
        ctx.budget.release(fetched.held);
      }
      report.copied += copied;
      report.copiedBytes += copiedBytes;
      report.skipped += skipped.length;
      ctx.onBatch(copied, copiedBytes, skipped);
    }
  } catch (err) {
    await next?.then(
      (b) => ctx.budget.release(b.held),
      () => undefined,
    );
    if (signal?.aborted) throw new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
    throw err;
  }
}
