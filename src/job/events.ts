/**
 * Typed progress events. The CLI's progress display, the JSON log and library callers all consume
 * the same stream; nothing in the engine prints.
 */
import type { FolderReport, ScanVerdictRecord, SkippedItem } from './report.js';

/**
 * Running totals, sent with every progress event. The survey before copying (copy/survey-stage.ts)
 * fills them for every folder from the start; a folder's estimate is replaced by its exact plan
 * when the folder is listed.
 */
export interface ProgressCounters {
  foldersTotal: number;
  foldersDone: number;
  /** Messages this run expects to copy: exact for the folders listed so far, estimated for the `estimated` others. */
  toCopy: number;
  toCopyBytes: number;
  copied: number;
  copiedBytes: number;
  alreadyPresent: number;
  skipped: number;
  /** What the source holds in the folders this run copies (surveyed, then as listed). */
  sourceMessages: number;
  sourceBytes: number;
  /** Folders whose share of the totals is still an estimate (not listed yet). */
  estimated: number;
  /** Folders whose size is not known yet (the store did not say): the message totals are lower bounds while this is above 0. */
  unknown: number;
  /** Folders whose bytes are not known yet: the byte totals are lower bounds while this is above 0. */
  bytesUnknown: number;
}

/** Everything the engine reports while it works. */
export type MigrationEvent =
  | { type: 'connected'; side: 'source' | 'destination'; capabilities: string[] }
  | { type: 'planned'; folders: number; toCreate: number; collisions: number }
  | { type: 'surveyed'; counters: ProgressCounters }
  | { type: 'folder-created'; folder: string }
  | { type: 'folder-start'; folder: string; toCopy: number; toCopyBytes: number; alreadyPresent: number }
  | { type: 'progress'; counters: ProgressCounters }
  | { type: 'item-skipped'; item: SkippedItem }
  | { type: 'scan-verdict'; verdict: ScanVerdictRecord }
  | { type: 'reconnected'; side: 'source' | 'destination'; folder: string }
  | { type: 'folder-done'; folder: FolderReport };

/** A consumer of migration events. It must not throw; errors it throws are ignored. */
export type EventListener = (event: MigrationEvent) => void;
