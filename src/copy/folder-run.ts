/**
 * One attempt at copying one folder: what its stages (list, fetch and check, scan, append,
 * record, move) share. The stages live in their own modules and take a {@link FolderRun}.
 */
import type { MessageFilter } from '../plan/message-filter.js';
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode } from '../core/errors.js';
import type { FolderPlanEntry } from '../plan/folder-plan.js';
import type { BatchLimits } from '../plan/message-plan.js';
import type { FolderReport, ScanVerdictRecord, SkippedItem } from '../job/report.js';
import type { ContentScreen, ScreenResult } from '../scan/content-screen.js';
import type { FolderRecord } from '../state/store.js';
import type { FolderStatus, MailStore, MessageMeta } from '../stores/mail-store.js';
import type { ByteBudget } from './byte-budget.js';
import type { DailyGate } from './daily-budget.js';
import { SizeTrust } from './size-trust.js';
import type { Logger } from 'pino';
import { backoffDelay, type RetryPolicy, type ServerGate } from './retry-policy.js';

/** A source and a destination connection that copy one folder at a time. */
export interface Lane {
  source: MailStore;
  dest: MailStore;
}

/**
 * Reconnects one folder may spend, over all its attempts, before it is given up. A server that
 * breaks every connection (an endless answer, a message it cannot read, a flaky link) would
 * otherwise be retried message by message, connection by connection, for hours.
 */
export interface LossBudget {
  left: number;
  /** When the first loss of the folder happened (ms since the epoch), for the message. */
  since?: number;
}

/** Reconnects a folder may spend in all (see {@link LossBudget}). */
export const FOLDER_RECONNECTS = 30;

/** What a folder copy needs. */
export interface FolderCopyContext {
  lane: Lane;
  /** Replaces one side of the lane (its connection was lost) with a new, connected store. */
  reconnect(side: 'source' | 'destination'): Promise<void>;
  entry: FolderPlanEntry;
  report: FolderReport;
  limits: BatchLimits;
  /** Bytes of bodies that may be in memory at once, shared with the other lanes. */
  budget: ByteBudget;
  retry: RetryPolicy;
  /** Pauses shared by every lane that talks to the same server (throttling). */
  gates: { source: ServerGate; destination: ServerGate };
  /** The daily budgets of the mailbox's accounts, when any is set (copy/daily-budget.ts). */
  daily?: DailyGate | undefined;
  /** Refuses an item before it is fetched (size limits); undefined lets it through. */
  precheck(meta: MessageMeta): { code: ErrorCode; reason: string } | undefined;
  /** Remove at the destination what was deleted at the source since the last pass (needs the ledger). */
  syncDeletions?: boolean;
  /** A move: remove each source message once its exact copy is proven at the destination. */
  deleteSource?: boolean;
  /** Whether the source's listed sizes are exact, shared by the folders of a mailbox (default: judged from this folder alone). */
  sizes?: SizeTrust;
  /** Only the source messages this lets in are planned (plan/message-filter.ts); the folder is then never marked synced. */
  messageFilter?: MessageFilter;
  /** Reconnects left for this folder over all its attempts (default: a budget of its own). */
  lossBudget?: LossBudget;
  /** This folder's record in the state ledger, when there is one. */
  state?: FolderRecord | undefined;
  /** Both sides' statuses as the survey found them (copy/quiet-stage.ts), when it asked. */
  surveyed?: { source: FolderStatus | undefined; dest: FolderStatus | undefined } | undefined;
  /** Scanning in transit, when asked for. */
  screen?: ContentScreen | undefined;
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  /** The mailbox's log: retries and throttling pauses are written to it. */
  log?: Logger | undefined;
  /** Called once the folder's plan is known. */
  onPlanned(toCopy: number, toCopyBytes: number, alreadyPresent: number): void;
  /** Called after each batch with what it added. */
  onBatch(copied: number, copiedBytes: number, skipped: SkippedItem[], verdicts: ScanVerdictRecord[]): void;
}

/** A fetched and checked message on its way to the destination. */
export interface Ready {
  meta: MessageMeta;
  body: Buffer;
  /** SHA-256 of `body` (hex): what a move proves at the destination before it deletes (only with deleteSource). */
  sha256?: string;
  screen?: ScreenResult;
  /** The body's memory is the engine's alone (FetchOutcome `fresh`): freed once the batch is appended. */
  fresh?: true;
}

/** An item that failed in a pass, with the error of its last try. */
export interface Failure {
  meta: MessageMeta;
  error: MigrateError;
  tries: number;
}

/** A message this run appended: what it was, its bytes' hash, and its destination UID when the server said. */
export interface Sent {
  meta: MessageMeta;
  /** Only with deleteSource (see {@link Ready.sha256}). */
  sha256?: string;
  /** Bytes sent (the listed size, unless the source's sizes are estimates). */
  bytes: number;
  destUid: number | undefined;
}

/** Losses in a row, with no progress in between, after which a folder attempt gives up. */
export const MAX_LOSSES_IN_A_ROW = 6;

/** The state of one attempt at one folder, shared by its stages. */
export class FolderRun {
  readonly ctx: FolderCopyContext;
  readonly entry: FolderPlanEntry;
  readonly report: FolderReport;
  readonly signal: AbortSignal | undefined;
  readonly state: FolderRecord | undefined;
  readonly sourceStatus: FolderStatus;
  /** The destination folder's UIDVALIDITY as listed (undefined until listed, or in a dry run of a new folder). */
  destValidity: bigint | undefined;
  /** The destination's UIDNEXT when it was listed: after a lost APPEND, what is above it is looked at. */
  destMark = 1;
  /** The destination folder's HIGHESTMODSEQ when its status was asked at the start of an incremental pass (CONDSTORE). */
  destModseq: bigint | undefined;
  /**
   * Messages appended to the destination folder by this attempt: what they were (for telling
   * what arrived after a lost APPEND) and, in a move only, the hash, bytes and destination UID
   * that prove each copy (move-stage.ts). A plain copy keeps just the listing's entry, 8 bytes a
   * message instead of an object of ~57 (200,000 of them were 11 MB held to the folder's end).
   */
  private readonly sentMetas: MessageMeta[] = [];
  private readonly sentProof = new Map<number, Sent>();
  private readonly tries = new Map<number, number>();
  private readonly budget: LossBudget;
  readonly sizes: SizeTrust;

  constructor(ctx: FolderCopyContext, sourceStatus: FolderStatus) {
    this.ctx = ctx;
    this.entry = ctx.entry;
    this.report = ctx.report;
    this.signal = ctx.signal;
    this.state = ctx.dryRun ? undefined : ctx.state;
    this.sourceStatus = sourceStatus;
    this.budget = ctx.lossBudget ?? { left: FOLDER_RECONNECTS };
    this.sizes = ctx.sizes ?? new SizeTrust(false);
  }

  /** Records a message this attempt appended: `bytes` sent, its hash (a move's), the UID the destination gave it. */
  recordSent(meta: MessageMeta, bytes: number, destUid: number | undefined, sha256: string | undefined): void {
    this.sentMetas.push(meta);
    if (this.ctx.deleteSource) this.sentProof.set(meta.uid, { meta, bytes, destUid, ...(sha256 !== undefined ? { sha256 } : {}) });
  }

  /** What this attempt appended (see {@link recordSent}). */
  get sent(): readonly MessageMeta[] {
    return this.sentMetas;
  }

  /** A move's proof of what this attempt appended, by source UID (empty unless `deleteSource`). */
  get sentByUid(): ReadonlyMap<number, Sent> {
    return this.sentProof;
  }

  get lane(): Lane {
    return this.ctx.lane;
  }

  /** A new connection for one side, charged to the folder's budget. */
  async reconnect(side: 'source' | 'destination', cause?: unknown): Promise<void> {
    this.budget.since ??= Date.now();
    if (this.budget.left <= 0) {
      const minutes = ((Date.now() - this.budget.since) / 60_000).toFixed(1);
      const last = (cause as Error)?.message;
      throw new MigrateError(
        ERROR_CODES.FOLDER_GAVE_UP,
        `Folder "${this.entry.sourceName}" was given up after ${FOLDER_RECONNECTS} reconnects in ${minutes} min${last ? `; last: ${last}` : ''}. What was copied stays copied; a rerun goes on from there.`,
        { scope: 'folder', cause },
      );
    }
    this.budget.left--;
    await this.ctx.reconnect(side);
  }

  /** The source's connection was lost: a new one, the folder selected again, checked to be the same folder. */
  async reopenSource(cause?: unknown): Promise<void> {
    await this.reconnect('source', cause);
    const status = await this.lane.source.openFolder(this.entry.sourcePath, true, this.entry.sourceName);
    if (status.uidValidity !== this.sourceStatus.uidValidity) throw validityChanged('source', this.entry.sourceName);
  }

  /** Counts one more try of `uid` and returns the count. */
  addTry(uid: number): number {
    const n = (this.tries.get(uid) ?? 0) + 1;
    this.tries.set(uid, n);
    return n;
  }

  triesOf(uid: number): number {
    return this.tries.get(uid) ?? 0;
  }

  /** A message copied is never tried again: its count goes (a folder of 200,000 held as many). */
  copiedOk(uid: number): void {
    this.tries.delete(uid);
  }

  skipItem(meta: MessageMeta, code: ErrorCode, reason: string, tries?: number): SkippedItem {
    const item: SkippedItem = { folder: this.entry.sourceName, uid: meta.uid, size: meta.size, code, reason };
    if (meta.messageId) item.messageId = meta.messageId;
    if (tries !== undefined && tries > 1) item.attempts = tries;
    return item;
  }

  /** Records and reports items that will not be copied in this pass (the ledger retries them next run). */
  async skip(items: readonly SkippedItem[]): Promise<void> {
    if (items.length === 0) return;
    this.report.skipped += items.length;
    for (const k of items) await this.state?.skip(k.uid, k.code, k.reason, k.attempts);
    this.ctx.onBatch(0, 0, [...items], []);
  }
}

/** The longest wait a server asked for among `failures`, passed on to its gate. */
export function pauseFor(gate: ServerGate, failures: readonly Failure[]): number | undefined {
  const asked = Math.max(0, ...failures.map((f) => f.error.retryAfterMs ?? 0));
  if (asked > 0) gate.pauseFor(asked);
  return asked > 0 ? asked : undefined;
}

/**
 * How long to wait before `again` is tried once more (attempt `attempt` failed): the backoff, or
 * the longest wait a server asked for (which also pauses every lane on that server). Says so in
 * the log: a retry, and a throttling pause when a server asked for one.
 */
export function retryDelay(run: FolderRun, side: 'source' | 'destination', attempt: number, again: readonly Failure[]): number {
  const asked = pauseFor(run.ctx.gates[side], again);
  const ms = backoffDelay(run.ctx.retry, attempt, asked);
  const what = { folder: run.entry.sourceName, side, attempt, messages: again.length, code: again[0]?.error.code, err: again[0]?.error.message, waitMs: ms };
  if (asked) run.ctx.log?.warn({ event: 'throttled', ...what, askedMs: asked }, 'throttled: every lane on this server pauses');
  run.ctx.log?.warn({ event: 'retry', ...what }, 'retrying');
  run.ctx.gates[side].observer?.retry();
  return ms;
}

/** Whether a failure is worth another try in this pass. */
export function retryable(f: Failure, tryInPass: number): boolean {
  return f.error.retry === 'later' || (f.error.retry === 'now' && tryInPass < 2);
}

/** True for a lost connection (and not for an abort, which is not to be retried). */
export function isLoss(err: unknown, signal: AbortSignal | undefined): boolean {
  return !signal?.aborted && isMigrateError(err) && err.code === ERROR_CODES.CONNECTION_LOST && err.scope !== 'mailbox';
}

export function asItemError(err: Error, code: ErrorCode): MigrateError {
  return isMigrateError(err) ? err : new MigrateError(code, err.message, { scope: 'message', retry: 'now', cause: err });
}

/** A message given up after it ended the connection each time (or once, when asking again cannot help). */
export function brokeConnection(what: string, uid: number, err: unknown, times: number): MigrateError {
  const server = isMigrateError(err) ? err.serverResponse : undefined;
  const code = isMigrateError(err) && err.code === ERROR_CODES.RESPONSE_TOO_LARGE ? err.code : ERROR_CODES.FETCH_FAILED;
  const message =
    code === ERROR_CODES.RESPONSE_TOO_LARGE
      ? `UID ${uid}: ${(err as Error).message}`
      : `The source closed the connection each time UID ${uid} was ${what} (${times} times); last: ${(err as Error)?.message ?? String(err)}`;
  return new MigrateError(code, message, { scope: 'message', retry: 'never', cause: err, ...(server ? { serverResponse: server } : {}) });
}

export function validityChanged(side: 'source' | 'destination', name: string): MigrateError {
  return new MigrateError(ERROR_CODES.CONNECTION_LOST, `The ${side} folder "${name}" changed its UIDVALIDITY while it was copied (it was recreated); it is planned again from its contents`, {
    scope: 'folder',
    retry: 'now',
  });
}
