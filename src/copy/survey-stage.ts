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
import type { FolderMarks, FolderRecord, MailboxRecord } from '../state/store.js';
import type { FolderInfo, FolderStatus, MailStore } from '../stores/mail-store.js';

/** The survey's result, one entry per plan entry. */
export interface Survey {
  /** Expected work per folder; undefined where the size is not known; null (nothing, exactly) for parents and folders that failed before copying. */
  estimates: (WorkEstimate | undefined | null)[];
  /** The ledger's record of each folder, opened once here and used by the copy. */
  records: (FolderRecord | undefined)[];
  /**
   * Each folder's status at both sides as the survey found it (undefined where a side did not
   * say): a folder whose status matches the ledger's trusted marks at both sides is not even
   * opened (copy/quiet-stage.ts).
   */
  statuses: ({ source: FolderStatus | undefined; dest: FolderStatus | undefined } | undefined)[];
}

/**
 * Surveys the folders of `plan` that will be copied (`reports` tells which failed already). The
 * destination is surveyed too (one LIST-STATUS where it has it) when the ledger holds trusted
 * marks with a destination HIGHESTMODSEQ: only such folders can pass the quiet-folder check.
 */
export async function surveyFolders(source: MailStore, dest: MailStore | undefined, plan: FolderPlan, reports: readonly FolderReport[], state: MailboxRecord | undefined, signal: AbortSignal, log: Logger | undefined): Promise<Survey> {
  const info = (path: string[], name: string): FolderInfo => ({ path, name, delimiter: '', noSelect: false, subscribed: false, specialUse: undefined });
  const records: (FolderRecord | undefined)[] = [];
  const marks: (FolderMarks | undefined)[] = [];
  const wanted: FolderInfo[] = [];
  const wantedDest: FolderInfo[] = [];
  for (const [i, e] of plan.entries.entries()) {
    const skip = e.noSelect || !!reports[i]!.error;
    const record = skip ? undefined : await state?.folder(e.sourceName, e.destName);
    const trusted = (await record?.trusted()) ?? undefined;
    records.push(record);
    marks.push(trusted);
    if (skip) continue;
    wanted.push(info(e.sourcePath, e.sourceName));
    if (!e.create && trusted?.destModseq !== undefined) wantedDest.push(info(e.destPath, e.destName));
  }
  const ask = async (store: MailStore, folders: FolderInfo[], side: string) => {
    try {
      return await store.folderStatuses(folders, signal);
    } catch (err) {
      signal.throwIfAborted();
      log?.warn({ err: (err as Error)?.message }, `the ${side} did not say the size of its folders${side === 'source' ? '; totals grow as folders are listed' : ''}`);
      return new Map<string, FolderStatus>();
    }
  };
  const [statuses, destStatuses] = await Promise.all([ask(source, wanted, 'source'), dest && wantedDest.length > 0 ? ask(dest, wantedDest, 'destination') : new Map<string, FolderStatus>()]);
  const estimates: Survey['estimates'] = [];
  const both: Survey['statuses'] = [];
  for (const [i, e] of plan.entries.entries()) {
    if (e.noSelect || reports[i]!.error) {
      estimates.push(null);
      both.push(undefined);
      continue;
    }
    estimates.push(estimateWork(statuses.get(e.sourceName), marks[i]));
    both.push({ source: statuses.get(e.sourceName), dest: e.create ? undefined : destStatuses.get(e.destName) });
  }
  return { estimates, records, statuses: both };
}
