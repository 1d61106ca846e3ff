/**
 * Folder statuses for the local archive stores, from each store's own index: `folderStatuses`
 * (one folder after another, no round trips to save on a disk; a folder that cannot be read left
 * out, since the survey is information and its listing will tell) and `waitForChange` (polling).
 */
import { setTimeout as sleep } from 'node:timers/promises';
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

/** How often a local folder is looked at again while `waitForChange` waits. */
const WAIT_POLL_MS = 1000;

/**
 * `MailStore.waitForChange` for the local stores: no change notification works on every file
 * system (inotify misses NFS), so the folder's status is read again every second until its
 * UIDVALIDITY, UIDNEXT or count differs from the first reading (true), or `timeoutMs` passes
 * (false). True at once when UIDNEXT is already above `sinceUidNext`.
 */
export async function pollForChange(statusNow: () => Promise<FolderStatus>, timeoutMs: number, signal: AbortSignal | undefined, sinceUidNext: number | undefined): Promise<boolean> {
  const start = await statusNow();
  if (sinceUidNext !== undefined && (start.uidNext ?? start.exists + 1) > sinceUidNext) return true;
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    await sleep(Math.min(WAIT_POLL_MS, timeoutMs - (Date.now() - started)), undefined, { signal });
    const now = await statusNow();
    if (now.uidValidity !== start.uidValidity || now.uidNext !== start.uidNext || now.exists !== start.exists) return true;
  }
  return false;
}
