/**
 * Typed progress events. The CLI's progress display, the JSON log and library callers all consume
 * the same stream; nothing in the engine prints.
 */
import type { FolderReport, ScanVerdictRecord, SkippedItem } from './report.js';

/** Running totals, sent with every progress event. */
export interface ProgressCounters {
  foldersTotal: number;
  foldersDone: number;
  /** Messages found missing at the destination so far (grows as folders are read). */
  toCopy: number;
  toCopyBytes: number;
  copied: number;
  copiedBytes: number;
  alreadyPresent: number;
  skipped: number;
}

/** Everything the engine reports while it works. */
export type MigrationEvent =
  | { type: 'connected'; side: 'source' | 'destination'; capabilities: string[] }
  | { type: 'planned'; folders: number; toCreate: number; collisions: number }
  | { type: 'folder-created'; folder: string }
  | { type: 'folder-start'; folder: string; toCopy: number; toCopyBytes: number; alreadyPresent: number }
  | { type: 'progress'; counters: ProgressCounters }
  | { type: 'item-skipped'; item: SkippedItem }
  | { type: 'scan-verdict'; verdict: ScanVerdictRecord }
  | { type: 'reconnected'; side: 'source' | 'destination'; folder: string }
  | { type: 'folder-done'; folder: FolderReport };

/** A consumer of migration events. It must not throw; errors it throws are ignored. */
export type EventListener = (event: MigrationEvent) => void;
