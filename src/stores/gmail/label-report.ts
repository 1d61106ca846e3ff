/**
 * The Gmail labels part of a run's report (and of a plan): how All Mail's messages were placed.
 * Counts and a mapping in the text summary; the per-message list of `first` in the JSON report.
 */
import type { GmailLabelMode } from './label-modes.js';

/** One message of `first` mode whose other labels were not taken along. */
export interface OtherLabelsRecord {
  /** X-GM-MSGID. */
  msgId: string;
  /** Its UID in All Mail. */
  uid: number;
  /** The source folder (label) the copy is in. */
  folder: string;
  /** Its other labels, in priority order. */
  labels: string[];
}

/** How the labels of a Gmail source were turned into folders (MigrationReport.gmailLabels). */
export interface GmailLabelReport {
  mode: Exclude<GmailLabelMode, 'off'>;
  /** The folder the messages were read from once ("[Gmail]/All Mail"); it is not copied as a folder. */
  allMail: string;
  /** Messages in All Mail (Trash and Spam are copied as folders of their own, not counted here). */
  messages: number;
  /** Copies placed in label folders (one per message in `first` and `keywords`). */
  copies: number;
  /** `folders`: copies beyond one per message (a message with three labels makes two). */
  extraCopies: number;
  /** Messages with no label that places them (archived): they go to Archive. */
  archived: number;
  /** Messages that would be placed elsewhere now (their labels changed) but stay where an earlier run copied them (`first`, `keywords`). */
  keptInEarlierFolder?: number;
  /** `keywords`: label -> keyword (made keyword-safe). */
  keywords?: Record<string, string>;
  /** `first`: how many copies left labels behind. */
  otherLabelMessages?: number;
  /** `first`: which labels each such copy left behind. */
  otherLabels?: OtherLabelsRecord[];
}

/** The text summary's lines for the Gmail labels part (without a trailing newline). */
export function labelSummaryLines(r: GmailLabelReport): string[] {
  const out = [`Gmail labels (${r.mode}): ${r.messages} message(s) read once from "${r.allMail}" (not copied as a folder); ${r.copies} copies, ${r.archived} archived (no label) to Archive`];
  if (r.mode === 'folders') out.push(`  ${r.extraCopies} extra copies for messages with more than one label`);
  if (r.otherLabelMessages !== undefined) out.push(`  ${r.otherLabelMessages} copies leave other labels behind (listed in the JSON report)`);
  if (r.keptInEarlierFolder) out.push(`  ${r.keptInEarlierFolder} message(s) whose labels changed stay where an earlier run copied them`);
  if (r.keywords) {
    const pairs = Object.entries(r.keywords);
    out.push(`  label -> keyword: ${pairs.length === 0 ? '(no user labels)' : pairs.map(([l, k]) => (l === k ? l : `${l} -> ${k}`)).join(', ')}`);
  }
  return out;
}
