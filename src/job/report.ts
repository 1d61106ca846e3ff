/**
 * The migration report: what the CLI prints, writes with --report and returns from the library.
 * Its JSON shape is a stable interface (version 1); fields are only ever added.
 */
import type { GmailLabelReport } from '../stores/gmail/label-report.js';
import type { ErrorCode } from '../core/errors.js';

/**
 * Overall outcome: every message is there, some items were skipped, the migration failed, or it
 * was stopped by its caller (Ctrl-C, SIGTERM, an aborted signal) before it ended: a rerun resumes.
 */
/**
 * `waiting`: the mailbox was parked between messages (a daily budget spent, or the provider's own
 * bandwidth limit, see README "Daily budgets"); `resumeAt` says when a rerun can go on.
 */
export type MigrationStatus = 'complete' | 'partial' | 'failed' | 'interrupted' | 'waiting';

/** One folder of the source and what became of it. */
export interface FolderReport {
  /** The source server's folder name. */
  source: string;
  /** The destination server's folder name. */
  destination: string;
  /** Messages in the source folder when it was read. */
  sourceCount: number;
  /** Bytes (RFC822.SIZE) in the source folder. */
  sourceBytes: number;
  copied: number;
  copiedBytes: number;
  alreadyPresent: number;
  skipped: number;
  /** Messages that disappeared from the source between listing and copying (deleted by a user). */
  vanished: number;
  /** True when the folder was created by this run. */
  created: boolean;
  /** True when the name had to change (a character is the destination's separator). */
  renamed: boolean;
  /** Why it changed: 'separator', 'control-character', 'dot-name', 'flat-server', 'reserved-name' (a level the destination keeps for itself), 'mail-or-children' (the source folder's messages, moved to a child of the same name because the destination folder has children and cannot also hold messages). */
  renameReasons?: string[];
  /** True when the source folder cannot hold messages (a \Noselect parent, or an implicit parent). */
  noSelect: boolean;
  /** Set for a parent that only the destination path needs (no source folder; `source` is ''). */
  implicit?: true;
  /** Why the destination path differs from the source path: 'special-use', 'map', 'rename' or 'dest-prefix'. */
  mappedBy?: 'special-use' | 'map' | 'rename' | 'dest-prefix';
  /** Messages whose flags were brought in line with the source's. */
  flagsUpdated?: number;
  /** Messages removed at the destination because they were deleted at the source (--sync-deletions). */
  deleted?: number;
  /** Messages the ledger recorded as copied that were missing at the destination (deleted there, or the folder recreated): planned to be copied again. */
  refilled?: number;
  /** Source messages removed after their exact copy (size and SHA-256) was proven at the destination (--delete-source). */
  sourceDeleted?: number;
  /** Source messages a move left in place because no exact copy could be proven at the destination (--delete-source). */
  sourceKept?: number;
  /**
   * Of `copied`, the copies made by giving a message the destination already held this folder's
   * label instead of appending it again (a Gmail destination, `UID STORE +X-GM-LABELS`): nothing
   * was uploaded for them. Their bytes are in `copiedBytes` (the folder holds them now).
   */
  labelled?: number;
  /** Messages appended because the destination refused to label its copy (code MM-GMAIL-LABEL-REFUSED, the server's words in `reason`). */
  labelFallbacks?: { uid: number; code: ErrorCode; reason: string }[];
  /** Flags the source listed that are not valid IMAP flags (RFC 3501 §9): left out of the copies, never sent. */
  flagsDropped?: { messages: number; flags: string[] };
  /** True when the state ledger let this pass look only at new and previously skipped messages. */
  incremental?: true;
  /** Messages the scanner flagged that went to the quarantine folder instead (scanning only). */
  quarantined?: number;
  /** Messages the scanner flagged that were not delivered (policy 'skip'; scanning only). */
  withheld?: number;
  /** Set when the folder could not be processed as a whole. */
  error?: { code: ErrorCode; message: string; serverResponse?: string };
  /**
   * How the folder's copy ended: `complete`, `partial` (some messages skipped), `failed` (see
   * `error`), `interrupted` (the run stopped while it was copied), `not started` (the run
   * stopped before it). Absent for parents that hold no messages and in a plan (dry run).
   */
  state?: FolderState;
}

/** How one folder's copy ended (see FolderReport.state). */
export type FolderState = 'complete' | 'partial' | 'failed' | 'interrupted' | 'not started';

/** One message that was not copied. */
export interface SkippedItem {
  folder: string;
  uid: number;
  messageId?: string;
  size: number;
  code: ErrorCode;
  /** Why, including the server's own response text when it gave one. */
  reason: string;
  /** How many times it was tried, when more than once. */
  attempts?: number;
}

/** What the virus scanner said of one message that was not simply clean, and what was done. */
export interface ScanVerdictRecord {
  folder: string;
  uid: number;
  messageId?: string;
  size: number;
  /** SHA-256 of the message bytes (hex). */
  sha256: string;
  /** 'infected': the scanner found something; 'unscanned': no verdict (over its limits, an error answer, a timeout, the scanner down with --scan-fail-open). */
  verdict: 'infected' | 'unscanned';
  /**
   * MM-SCAN-INFECTED; for an unscanned one why: MM-SCAN-TOO-LARGE (over the scanner's size limits),
   * MM-SCAN-UNSCANNED (another answer without a verdict) or MM-SCAN-UNAVAILABLE (the scanner down,
   * delivered with --scan-fail-open); see docs/errors.md.
   */
  code: ErrorCode;
  /** The scanner's name for what it found. */
  signature?: string;
  /** Why it was not scanned, with the scanner's own answer when it gave one. */
  reason?: string;
  /**
   * 'quarantined': in the quarantine folder at the destination; 'withheld': not delivered (policy
   * skip); 'delivered': in the user's folder; 'held': unscanned and not delivered by this run, a
   * skipped item (MM-SCAN-UNSCANNED) that the next run tries again.
   */
  action: 'quarantined' | 'withheld' | 'delivered' | 'held';
  quarantineFolder?: string;
  /** Set when an earlier run had already quarantined it. */
  alreadyQuarantined?: true;
  /** The .eml file a withheld message was saved to (--quarantine-dir). */
  savedAs?: string;
}

/** The scanning part of a report. */
export interface ScanReport {
  /** e.g. "clamd at 127.0.0.1:3310". */
  engine: string;
  policy: 'quarantine' | 'skip' | 'report';
  failOpen: boolean;
  /** What becomes of a message the scanner could not judge (--scan-unscanned). */
  onUnscanned: 'hold' | 'deliver';
  /** Messages the scanner gave a verdict on (clean or infected), and their bytes; unscanned ones are not among them. */
  scanned: number;
  scannedBytes: number;
  /** Messages whose content had already been scanned in this run (same SHA-256). */
  cached: number;
  infected: number;
  /** Messages the scanner could not judge (held or delivered, see `verdicts`). */
  unscanned: number;
  /** Every message that was not simply clean. */
  verdicts: ScanVerdictRecord[];
}

/** The whole report. */
export interface MigrationReport {
  version: 1;
  tool: string;
  status: MigrationStatus;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  source: { url: string };
  destination: { url: string };
  totals: {
    folders: number;
    messages: number;
    bytes: number;
    copied: number;
    copiedBytes: number;
    alreadyPresent: number;
    skipped: number;
    seconds: number;
    /** Messages whose flags were brought in line with the source's (both sides' changes). */
    flagsUpdated?: number;
    /** Removed at the destination because deleted at the source (--sync-deletions). */
    deletedAtDestination?: number;
    /** Of `copied`: given a label of a message already at a Gmail destination, not appended again. */
    labelled?: number;
    /** Appended because the Gmail destination refused the label (see FolderReport.labelFallbacks). */
    labelFallbacks?: number;
    /** Recorded as copied but missing at the destination, so copied again. */
    refilled?: number;
    /** Removed at the source after their exact copy was proven (--delete-source). */
    deletedAtSource?: number;
    /** Left at the source by a move: no exact copy proven (--delete-source). */
    sourceKept?: number;
    /** Skipped items by error code. */
    skippedByReason?: Record<string, number>;
    /** Flagged by the scanner and put in the quarantine folder. */
    quarantined?: number;
    /** Flagged by the scanner and not delivered (policy skip). */
    withheld?: number;
    /** Messages the scanner could not judge (scanning only). */
    unscanned?: number;
    /** What the source leaves out by design (see {@link MigrationReport.leftOut}), summed by kind. */
    leftOut?: Record<string, number>;
  };
  /** A Gmail source read by its labels (--gmail-labels): how All Mail's messages were placed. */
  gmailLabels?: GmailLabelReport;
  folders: FolderReport[];
  items: SkippedItem[];
  /** Folder-name collisions found by the plan (two source folders, one destination). */
  collisions: { destination: string; sources: string[] }[];
  /** Source folders left out: Gmail views ('gmail-view'), --include ('not-included'), --exclude ('excluded'), other users' or shared folders ('other-namespace'). */
  excluded: { source: string; reason: 'gmail-view' | 'not-included' | 'excluded' | 'other-namespace' }[];
  /**
   * What the source store leaves out by design, per folder and kind: a PST's items that are not
   * mail by their class (IPM.Appointment, IPM.Contact, IPM.Task, IPM.StickyNote...) and attachments
   * whose bytes are not in the file ('attachment:ole', 'attachment:by-reference'). Not skipped
   * messages: they do not make a run partial.
   */
  leftOut?: { folder: string; kind: string; count: number }[];
  /** --include patterns that matched no source folder (a pattern that matches nothing is likely a typo). */
  unmatchedIncludes?: string[];
  /** Present when messages were scanned in transit. */
  scan?: ScanReport;
  /**
   * 'estimates' when the source's RFC822.SIZE differed from the bytes it sent for every message
   * checked (at least 5, none exact): sizes were then not held against the bodies (see MM-FETCH-MISMATCH).
   */
  sourceSizes?: 'estimates';
  /** Set when the migration as a whole failed (connect, login, list, plan, abort) or was parked (`resumeAt` then). */
  error?: { code: ErrorCode; message: string; serverResponse?: string; resumeAt?: string };
  /** The consistency verdict (see verdictOf and the README). */
  verdict?: Verdict;
}

/**
 * The consistency verdict of one mailbox's run:
 * - perfect: nothing skipped, nothing left out of a message (flags), no folder or mailbox failure;
 * - good: only what the admin's own settings left out: messages over --max-message-size, the scan
 *   policy's quarantine or skip, messages the scanner could not judge (held for a rerun, or
 *   delivered unscanned), flags that are not valid IMAP and were dropped;
 * - investigate: some message was skipped for an error (the source or destination refused it);
 * - poor: a folder or the whole mailbox failed.
 */
export type Verdict = 'perfect' | 'good' | 'investigate' | 'poor';

/** Skip codes that come from a limit or policy the admin chose, not from an error. */
const ALLOWED_SKIPS: ReadonlySet<string> = new Set(['MM-MESSAGE-TOO-LARGE', 'MM-SCAN-INFECTED', 'MM-SCAN-UNSCANNED']);

/** The verdict of a migration report (the batch report and `batch status` call this on each mailbox's report). */
export function verdictOf(report: Pick<MigrationReport, 'folders' | 'items' | 'error' | 'scan'>): Verdict {
  if (report.error || report.folders.some((f) => f.error)) return 'poor';
  if (report.items.some((i) => !ALLOWED_SKIPS.has(i.code)) || report.folders.some((f) => f.sourceKept)) return 'investigate';
  if (report.items.length > 0 || report.folders.some((f) => f.flagsDropped || f.quarantined || f.withheld)) return 'good';
  // Everything arrived, but not everything was scanned.
  if (report.scan?.verdicts.some((v) => v.verdict === 'unscanned' && v.action === 'delivered')) return 'good';
  return 'perfect';
}

/** The worst of some verdicts (a batch's); undefined when there are none, or one is not known. */
export function worstVerdict(verdicts: readonly (Verdict | undefined)[]): Verdict | undefined {
  const order: readonly Verdict[] = ['perfect', 'good', 'investigate', 'poor'];
  if (verdicts.length === 0 || verdicts.some((v) => v === undefined)) return undefined;
  return order[Math.max(...verdicts.map((v) => order.indexOf(v!)))];
}

/** Derives the status from folder errors and skipped items. */
export function statusOf(report: Pick<MigrationReport, 'folders' | 'items' | 'error'>): MigrationStatus {
  if (report.error?.code === 'MM-ABORTED') return 'interrupted';
  if (report.error?.code === 'MM-BUDGET-SPENT' || report.error?.code === 'MM-PROVIDER-LIMIT') return 'waiting';
  if (report.error || report.folders.some((f) => f.error)) return 'failed';
  // A move that left messages at the source (no exact copy proven at the destination) is not done.
  if (report.items.length > 0 || report.folders.some((f) => f.sourceKept)) return 'partial';
  return 'complete';
}

/**
 * Sums the folder entries (and, when given, the skipped items and the scan) into totals. The
 * optional counts are present only when non-zero, so that no number is shown that is not known.
 */
export function totalsOf(folders: readonly FolderReport[], seconds: number, items?: readonly SkippedItem[], scan?: Pick<ScanReport, 'unscanned'>): MigrationReport['totals'] {
  const t: MigrationReport['totals'] = { folders: folders.length, messages: 0, bytes: 0, copied: 0, copiedBytes: 0, alreadyPresent: 0, skipped: 0, seconds };
  const add = (k: 'flagsUpdated' | 'labelled' | 'labelFallbacks' | 'refilled' | 'deletedAtDestination' | 'deletedAtSource' | 'sourceKept' | 'quarantined' | 'withheld' | 'unscanned', n: number | undefined) => {
    if (n) t[k] = (t[k] ?? 0) + n;
  };
  for (const f of folders) {
    t.messages += f.sourceCount;
    t.bytes += f.sourceBytes;
    t.copied += f.copied;
    t.copiedBytes += f.copiedBytes;
    t.alreadyPresent += f.alreadyPresent;
    t.skipped += f.skipped;
    add('flagsUpdated', f.flagsUpdated);
    add('deletedAtDestination', f.deleted);
    add('refilled', f.refilled);
    add('labelled', f.labelled);
    add('labelFallbacks', f.labelFallbacks?.length);
    add('deletedAtSource', f.sourceDeleted);
    add('sourceKept', f.sourceKept);
    add('quarantined', f.quarantined);
    add('withheld', f.withheld);
  }
  if (items && items.length > 0) {
    const by: Record<string, number> = {};
    for (const i of items) by[i.code] = (by[i.code] ?? 0) + 1;
    t.skippedByReason = by;
  }
  add('unscanned', scan?.unscanned);
  return t;
}
