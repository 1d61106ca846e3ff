/**
 * Pure: how much a run expects to copy from a folder before it has listed it, from the folder's
 * status (a STATUS or LIST-STATUS answer: count, UIDNEXT, UIDVALIDITY, bytes where the store
 * says) and the ledger's marks of its last complete pass. The progress line and the ETA run
 * against these from the first second; each folder's estimate is replaced by the exact plan
 * once the folder is listed.
 *
 * An estimate is an upper bound where it can be: a folder the ledger has never seen counts in
 * full (some of it may be at the destination already); a folder the ledger has seen counts the
 * messages that arrived since its last pass. Message filters are not applied to it (the dates and
 * sizes of single messages are not known before the listing).
 */
import type { FolderMarks } from '../state/types.js';
import type { FolderStatus } from '../stores/mail-store.js';

/** One folder's expected work. */
export interface WorkEstimate {
  /** Messages the source folder holds. */
  messages: number;
  /** Their bytes, when the store says. */
  bytes: number | undefined;
  /** Messages expected to be copied. */
  toCopy: number;
  /** Their bytes, when known (or derived from the ledger's average size). */
  toCopyBytes: number | undefined;
}

/** The expected work of one folder; undefined when its status is not known. */
export function estimateWork(status: FolderStatus | undefined, marks: FolderMarks | undefined): WorkEstimate | undefined {
  if (!status) return undefined;
  const messages = status.exists;
  const bytes = status.bytes;
  if (!marks || marks.sourceUidValidity !== status.uidValidity) return { messages, bytes, toCopy: messages, toCopyBytes: bytes };
  // Unchanged since the last complete pass: nothing new.
  if (status.uidNext !== undefined && status.uidNext === marks.sourceUidNext && messages === marks.sourceCount) return { messages, bytes, toCopy: 0, toCopyBytes: 0 };
  const arrived = status.uidNext !== undefined ? Math.max(0, status.uidNext - marks.sourceUidNext) : Math.max(0, messages - marks.sourceCount);
  const toCopy = Math.min(messages, arrived);
  const average = marks.sourceCount > 0 ? marks.sourceBytes / marks.sourceCount : undefined;
  const toCopyBytes = bytes !== undefined ? Math.min(bytes, Math.max(0, bytes - marks.sourceBytes)) : average !== undefined ? Math.round(toCopy * average) : undefined;
  return { messages, bytes, toCopy, toCopyBytes: toCopy === 0 ? 0 : toCopyBytes };
}

/** The run's totals from its folders' estimates, and what is not known. */
export interface WorkTotals {
  sourceMessages: number;
  sourceBytes: number;
  toCopy: number;
  toCopyBytes: number;
  /** Folders with no estimate (their status is not known): the totals are lower bounds while any is left. */
  unknown: number;
  /** Folders whose bytes are not known. */
  bytesUnknown: number;
}

/** Sums estimates (undefined entries are folders whose size is not known). */
export function sumWork(estimates: readonly (WorkEstimate | undefined)[]): WorkTotals {
  const t: WorkTotals = { sourceMessages: 0, sourceBytes: 0, toCopy: 0, toCopyBytes: 0, unknown: 0, bytesUnknown: 0 };
  for (const e of estimates) {
    if (!e) {
      t.unknown++;
      continue;
    }
    t.sourceMessages += e.messages;
    t.toCopy += e.toCopy;
    if (e.bytes !== undefined) t.sourceBytes += e.bytes;
    if (e.toCopyBytes !== undefined) t.toCopyBytes += e.toCopyBytes;
    if (e.bytes === undefined || e.toCopyBytes === undefined) t.bytesUnknown++;
  }
  return t;
}
