/**
 * `MailStore.folderStatuses` for the local archive stores: each folder's status from the store's
 * own index, one folder after another (no round trips to save on a disk), a folder that cannot be
 * read left out (the survey is information: its listing will tell).
 */
import type { FolderInfo, FolderStatus } from '../mail-store.js';

/** The statuses of `folders` by listed name, from `statusOf` (undefined or a throw: left out). */
export async function localFolderStatuses(folders: readonly FolderInfo[], signal: AbortSignal | undefined, statusOf: (folder: FolderInfo) => Promise<FolderStatus | undefined>): Promise<Map<string, FolderStatus>> {
  const out = new Map<string, FolderStatus>();
  for (const f of folders) {
    if (f.noSelect) continue;
    signal?.throwIfAborted();
    const st = await statusOf(f).catch(() => undefined);
    if (st) out.set(f.name, st);
  }
  return out;
}
