/**
 * The migration report: what the CLI prints, writes with --report and returns from the library.
 * Its JSON shape is a stable interface (version 1); fields are only ever added.
 */
import type { ErrorCode } from './core/errors.js';

/** Overall outcome: every message is there, some items were skipped, or the migration failed. */
export type MigrationStatus = 'complete' | 'partial' | 'failed';

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
  /** True when the source folder cannot hold messages (a \Noselect parent, or an implicit parent). */
  noSelect: boolean;
  /** Set for a parent that only the destination path needs (no source folder; `source` is ''). */
  implicit?: true;
  /** Why the destination path differs from the source path: 'special-use', 'map', 'rename' or 'dest-prefix'. */
  mappedBy?: 'special-use' | 'map' | 'rename' | 'dest-prefix';
  /** Set when the folder could not be processed as a whole. */
  error?: { code: ErrorCode; message: string; serverResponse?: string };
}

/** One message that was not copied. */
export interface SkippedItem {
  folder: string;
  uid: number;
  messageId?: string;
  size: number;
  code: ErrorCode;
  /** Why, including the server's own response text when it gave one. */
  reason: string;
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
  };
  folders: FolderReport[];
  items: SkippedItem[];
  /** Folder-name collisions found by the plan (two source folders, one destination). */
  collisions: { destination: string; sources: string[] }[];
  /** Source folders left out: Gmail views ('gmail-view'), --include ('not-included'), --exclude ('excluded'), other users' or shared folders ('other-namespace'). */
  excluded: { source: string; reason: 'gmail-view' | 'not-included' | 'excluded' | 'other-namespace' }[];
  /** Set when the migration as a whole failed (connect, login, list, plan, abort). */
  error?: { code: ErrorCode; message: string; serverResponse?: string };
}

/** Derives the status from folder errors and skipped items. */
export function statusOf(report: Pick<MigrationReport, 'folders' | 'items' | 'error'>): MigrationStatus {
  if (report.error || report.folders.some((f) => f.error)) return 'failed';
  if (report.items.length > 0) return 'partial';
  return 'complete';
}

/** Sums the folder entries into totals. */
export function totalsOf(folders: readonly FolderReport[], seconds: number): MigrationReport['totals'] {
  const t = { folders: folders.length, messages: 0, bytes: 0, copied: 0, copiedBytes: 0, alreadyPresent: 0, skipped: 0, seconds };
  for (const f of folders) {
    t.messages += f.sourceCount;
    t.bytes += f.sourceBytes;
    t.copied += f.copied;
    t.copiedBytes += f.copiedBytes;
    t.alreadyPresent += f.alreadyPresent;
    t.skipped += f.skipped;
  }
  return t;
}
