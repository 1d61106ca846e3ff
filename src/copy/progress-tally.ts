/**
 * The running totals of one mailbox (ProgressCounters), started from the survey's estimates and
 * corrected folder by folder: when a folder is listed its estimate is replaced by its exact plan,
 * and a folder that ends without a plan (it failed, or the run stopped) takes its estimate out.
 */
import type { ProgressCounters } from '../job/events.js';
import type { WorkEstimate } from '../plan/work-estimate.js';

/** One folder's share of the totals. */
interface Share {
  toCopy: number;
  toCopyBytes: number;
  present: number;
  messages: number;
  bytes: number;
}

const ZERO: Share = { toCopy: 0, toCopyBytes: 0, present: 0, messages: 0, bytes: 0 };

export class ProgressTally {
  readonly counters: ProgressCounters;
  private readonly shares: Share[];
  /** The estimate a folder still stands in with (null once it has a plan or has ended). */
  private readonly open: (WorkEstimate | undefined | null)[];

  /**
   * `estimates` per folder: an estimate, undefined (size not known), or null (nothing to copy,
   * exactly: a parent, a folder that failed before copying).
   */
  constructor(estimates: readonly (WorkEstimate | undefined | null)[]) {
    this.open = [...estimates];
    this.shares = estimates.map((e) => (e ? { toCopy: e.toCopy, toCopyBytes: e.toCopyBytes ?? 0, present: 0, messages: e.messages, bytes: e.bytes ?? 0 } : { ...ZERO }));
    const c: ProgressCounters = { foldersTotal: estimates.length, foldersDone: 0, toCopy: 0, toCopyBytes: 0, copied: 0, copiedBytes: 0, alreadyPresent: 0, skipped: 0, sourceMessages: 0, sourceBytes: 0, estimated: 0, unknown: 0, bytesUnknown: 0 };
    for (const [i, e] of estimates.entries()) {
      const s = this.shares[i]!;
      c.toCopy += s.toCopy;
      c.toCopyBytes += s.toCopyBytes;
      c.sourceMessages += s.messages;
      c.sourceBytes += s.bytes;
      if (e === null) continue;
      if (e === undefined) c.unknown++;
      else c.estimated++;
      if (e === undefined || e.bytes === undefined || e.toCopyBytes === undefined) c.bytesUnknown++;
    }
    this.counters = c;
  }

  /** Folder `i` is planned (again, after a lost connection): its exact share replaces the last one. */
  planned(i: number, share: Share): void {
    this.replace(i, share);
  }

  /** Folder `i` has ended; if it never got a plan, its estimate no longer stands for work to come. */
  ended(i: number): void {
    if (this.open[i] !== null) this.replace(i, ZERO);
  }

  private replace(i: number, share: Share): void {
    const c = this.counters;
    const old = this.shares[i]!;
    c.toCopy += share.toCopy - old.toCopy;
    c.toCopyBytes += share.toCopyBytes - old.toCopyBytes;
    c.alreadyPresent += share.present - old.present;
    c.sourceMessages += share.messages - old.messages;
    c.sourceBytes += share.bytes - old.bytes;
    this.shares[i] = share;
    const e = this.open[i];
    if (e === null) return;
    this.open[i] = null;
    if (e === undefined) c.unknown--;
    else c.estimated--;
    if (e === undefined || e.bytes === undefined || e.toCopyBytes === undefined) c.bytesUnknown--;
  }
}
