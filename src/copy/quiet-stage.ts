/**
 * The quiet-folder check of a rerun, before a folder is opened. When the survey's statuses (one
 * LIST-STATUS at each side, see survey-stage.ts) show the source and the destination exactly as
 * the ledger's trusted marks left them, with CONDSTORE's HIGHESTMODSEQ at both sides:
 * - same UIDVALIDITY, UIDNEXT and count at the source: nothing arrived and nothing was expunged
 *   (an expunge lowers the count, and only an arrival could make it up, raising UIDNEXT);
 * - same HIGHESTMODSEQ at the source: no flag changed;
 * - the same four at the destination: nothing was added, removed or re-flagged there;
 * and no message waits to be tried again, the folder's pass would find nothing to do: it is
 * reported as an incremental pass with nothing to copy, and never selected. Anything else (no
 * CONDSTORE, a number that moved, a filtered pass, a move, --sync-deletions: the ledger may hold
 * copies of messages an earlier pass saw deleted and left) takes the ordinary path.
 */
import type { FolderStatus } from '../stores/mail-store.js';
import type { FolderCopyContext } from './folder-run.js';

/** True when the folder was found quiet and reported as such (see the module comment). */
export async function quietFolder(ctx: FolderCopyContext): Promise<boolean> {
  const { entry, state, surveyed, report } = ctx;
  // --sync-deletions may have deletions to carry over that an earlier pass (without it) only saw.
  if (!state || !surveyed?.source || !surveyed.dest || ctx.dryRun || ctx.deleteSource || ctx.syncDeletions || ctx.messageFilter || entry.create) return false;
  const marks = await state.trusted();
  if (!marks || marks.sourceModseq === undefined || marks.destModseq === undefined) return false;
  const same = (s: FolderStatus, validity: bigint, next: number, count: number, modseq: bigint) =>
    s.uidValidity === validity && s.uidNext === next && s.exists === count && s.highestModseq === modseq;
  if (!same(surveyed.source, marks.sourceUidValidity, marks.sourceUidNext, marks.sourceCount, marks.sourceModseq)) return false;
  if (!same(surveyed.dest, marks.destUidValidity, marks.destUidNext, marks.destCount, marks.destModseq)) return false;
  if ((await state.skippedUids()).length > 0) return false;
  report.incremental = true;
  report.sourceCount = marks.sourceCount;
  report.sourceBytes = marks.sourceBytes;
  report.alreadyPresent = marks.sourceCount;
  ctx.onPlanned(0, 0, marks.sourceCount);
  return true;
}
