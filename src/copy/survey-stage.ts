/**
 * The survey stage of a mailbox, before any folder is copied: every folder's size at the source
 * (one LIST-STATUS, or a STATUS per folder: see MailStore.folderStatuses) and what the run
 * expects to copy from it given the ledger's marks (plan/work-estimate.ts). Progress, rate and
 * ETA then run against the mailbox's true size from the first second, not against totals that
 * grow folder by folder.
 *
 * The survey is information, never a condition: a store that does not answer leaves those
 * folders unknown (the totals are then shown as lower bounds until the folders are listed).
 */
import type { Logger } from 'pino';
import type { FolderPlan } from '../plan/folder-plan.js';
import { estimateWork, type WorkEstimate } from '../plan/work-estimate.js';
import type { FolderReport } from '../job/report.js';
import type { FolderRecord, MailboxRecord } from '../state/store.js';
import type { FolderInfo, FolderStatus, MailStore } from '../stores/mail-store.js';

/** The survey's result, one entry per plan entry. */
export interface Survey {
  /** Expected work per folder; undefined where the size is not known; null (nothing, exactly) for parents and folders that failed before copying. */
  estimates: (WorkEstimate | undefined | null)[];
  /** The ledger's record of each folder, opened once here and used by the copy. */
  records: (FolderRecord | undefined)[];
}

/** Surveys the folders of `plan` that will be copied (`reports` tells which failed already). */
export async function surveyFolders(source: MailStore, plan: FolderPlan, reports: readonly FolderReport[], state: MailboxRecord | undefined, signal: AbortSignal, log: Logger | undefined): Promise<Survey> {
  const wanted: FolderInfo[] = [];
  for (const [i, e] of plan.entries.entries()) {
    if (e.noSelect || reports[i]!.error) continue;
    wanted.push({ path: e.sourcePath, name: e.sourceName, delimiter: '', noSelect: false, subscribed: false, specialUse: undefined });
  }
  let statuses = new Map<string, FolderStatus>();
  try {
    statuses = await source.folderStatuses(wanted, signal);
  } catch (err) {
    signal.throwIfAborted();
    log?.warn({ err: (err as Error)?.message }, 'the source did not say the size of its folders; totals grow as folders are listed');
  }
  const records: (FolderRecord | undefined)[] = [];
  const estimates: Survey['estimates'] = [];
  for (const [i, e] of plan.entries.entries()) {
    if (e.noSelect || reports[i]!.error) {
      records.push(undefined);
      estimates.push(null);
      continue;
    }
    const record = await state?.folder(e.sourceName, e.destName);
    records.push(record);
    estimates.push(estimateWork(statuses.get(e.sourceName), await record?.trusted()));
  }
  return { estimates, records };
}
