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
import type { FolderReport, SkippedItem } from '../report.js';
import type { AppendItem, MailStore, MessageMeta } from '../stores/mail-store.js';

/** What a folder copy needs. */
export interface FolderCopyContext {
  source: MailStore;
  dest: MailStore;
  entry: FolderPlanEntry;
  report: FolderReport;
  limits: BatchLimits;
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
  await source.openFolder(entry.sourcePath, true);
  const sourceMetas = await source.listMessages(signal);
  report.sourceCount = sourceMetas.length;
  report.sourceBytes = sourceMetas.reduce((n, m) => n + m.size, 0);

  let destMetas: MessageMeta[] = [];
  if (!(ctx.dryRun && entry.create)) {
    await dest.openFolder(entry.destPath, true);
    destMetas = await dest.listMessages(signal);
    await dest.closeFolder();
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

  const fetchBatch = async (metas: MessageMeta[]): Promise<FetchedBatch & { skipped: SkippedItem[]; vanished: number }> => {
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
    return { items, metas: ok, skipped, vanished };
  };

  const batches = batchMessages(plan.toCopy, ctx.limits);
  let next: ReturnType<typeof fetchBatch> | undefined = fetchBatch(batches[0]!);
  try {
    for (let k = 0; k < batches.length; k++) {
      signal?.throwIfAborted();
      const fetched: Awaited<ReturnType<typeof fetchBatch>> = await next!;
      next = k + 1 < batches.length ? fetchBatch(batches[k + 1]!) : undefined;
      // The prefetch may fail while we append; its error is handled when we await it.
      next?.catch(() => undefined);
      report.vanished += fetched.vanished;
      const skipped = [...fetched.skipped];
      let copied = 0;
      let copiedBytes = 0;
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
      report.copied += copied;
      report.copiedBytes += copiedBytes;
      report.skipped += skipped.length;
      ctx.onBatch(copied, copiedBytes, skipped);
    }
  } catch (err) {
    await next?.catch(() => undefined);
    if (signal?.aborted) throw new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
    throw err;
  }
}
