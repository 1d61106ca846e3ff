/**
 * The shape of a batch's report (batch-report.json) and of its mailboxes' results, apart from the
 * code that runs a batch, so that what reads a report (notifications, the console) does not import
 * the batch runner.
 */
import type { Verdict } from '../job/report.js';
import type { BatchJobRecord } from '../state/ledger.js';

/** One mailbox's outcome. */
export interface BatchJobResult extends BatchJobRecord {
  /** True when an earlier run had completed it and it was not run again. */
  alreadyComplete?: true;
}

/** The batch report (batch-report.json; batch-report.md is the same for people). */
export interface BatchReport {
  version: 1;
  kind: 'batch';
  tool: string;
  name: string;
  /** `interrupted` when Ctrl-C or SIGTERM stopped the batch before every mailbox ran (a rerun resumes). */
  /** `waiting`: every mailbox ran, and some are parked (a daily budget, a provider's limit) until their `resumeAt`: a later run goes on. */
  status: 'complete' | 'partial' | 'failed' | 'interrupted' | 'waiting';
  /**
   * The worst verdict of the batch's mailboxes (a failed one counts as poor); absent while some
   * mailbox has none, because it did not run to an end (interrupted, not started).
   */
  verdict?: Verdict;
  startedAt: string;
  finishedAt: string;
  parallel: number;
  totals: {
    mailboxes: number;
    complete: number;
    partial: number;
    failed: number;
    /** Stopped by Ctrl-C or SIGTERM while they ran. */
    interrupted: number;
    /** A queued batch cancelled from the console: its mailboxes taken out of the queue before they ran (only when some were). */
    cancelled?: number;
    /** Parked until their `resumeAt` (only when some are). */
    waiting?: number;
    /** Not reached before the batch was stopped. */
    notStarted: number;
    alreadyComplete: number;
    copied: number;
    skippedItems: number;
    seconds: number;
  };
  warnings: string[];
  jobs: BatchJobResult[];
}
