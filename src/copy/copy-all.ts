/**
 * Copies every folder of a mailbox, `connections` at a time: lanes (a source and a destination
 * connection each) take folders from a shared queue, a folder whose connection was lost while it
 * was planned is planned again, and a mailbox-level failure stops every lane.
 */
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { MigrationEvent } from '../job/events.js';
import type { MigrateOptions } from '../job/options.js';
import type { FolderPlan } from '../plan/folder-plan.js';
import type { MigrationReport, ScanVerdictRecord, SkippedItem } from '../job/report.js';
import type { ContentScreen } from '../scan/content-screen.js';
import type { MailboxRecord } from '../state/store.js';
import type { MessageMeta } from '../stores/mail-store.js';
import { ByteBudget } from './byte-budget.js';
import type { DailyGate } from './daily-budget.js';
import { copyFolder, type Lane } from './folder-copy.js';
import { FOLDER_RECONNECTS } from './folder-run.js';
import type { RetryPolicy, ServerGate } from './retry-policy.js';
import { SizeTrust } from './size-trust.js';
import { ProgressTally } from './progress-tally.js';
import type { Survey } from './survey-stage.js';

/** How long the first lane works alone before extra lanes are opened. */
const EXTRA_LANE_AFTER_MS = 150;

/** How often a folder is planned again from scratch (its connection was lost while it was listed, or it was recreated). */
const MAX_FOLDER_ATTEMPTS = 3;

export interface CopyAllContext {
  lanes: Lane[];
  openLane: (optional?: boolean) => Promise<Lane>;
  releaseLane: (lane: Lane) => Promise<void>;
  gates: { source: ServerGate; destination: ServerGate };
  /** The mailbox's daily budgets, when any is set. */
  daily?: DailyGate | undefined;
  reconnect: (lane: Lane, side: 'source' | 'destination') => Promise<void>;
  connections: number;
  options: MigrateOptions;
  retry: RetryPolicy;
  screen: ContentScreen | undefined;
  state: MailboxRecord | undefined;
  signal: AbortSignal;
  /** Ends the mailbox: every lane stops after the command in flight. */
  stop: (err: MigrateError) => void;
  emit: (e: MigrationEvent) => void;
  log: Logger | undefined;
  /** The expected work per folder and the ledger's records (copy/survey-stage.ts). */
  survey: Survey;
}

/** Copies every folder, `connections` at a time, largest work spread by a shared queue. */
export async function copyAll(plan: FolderPlan, report: MigrationReport, ctx: CopyAllContext): Promise<void> {
  const { options, emit, log, signal } = ctx;
  const tally = new ProgressTally(ctx.survey.estimates);
  const counters = tally.counters;
  const queue = plan.entries.map((entry, i) => ({ entry, folder: report.folders[i]!, i })).filter(({ folder }) => !folder.error);
  counters.foldersDone = plan.entries.length - queue.length;
  emit({ type: 'surveyed', counters: { ...counters } });
  const limits = { maxBytes: options.batchBytes ?? 4 * 1024 * 1024, maxMessages: options.batchMessages ?? 100 };
  const budget = new ByteBudget(Math.max(options.memoryBudgetBytes ?? 8 * 1024 * 1024, limits.maxBytes));
  // Shared with other mailboxes on the same servers when the caller passes them (batches).
  const gates = ctx.gates;
  const verdicts = report.scan?.verdicts;
  let mailboxError: MigrateError | undefined;
  const endMailbox = (err: MigrateError) => {
    mailboxError ??= err;
    queue.length = 0;
    ctx.stop(err);
  };

  // One judgement of the source's listed sizes for the whole mailbox (see copy/size-trust.ts).
  const sizes = new SizeTrust(!!options.acceptSizeMismatch, () => {
    report.sourceSizes = 'estimates';
    log?.warn({}, "the source's RFC822.SIZE differs from the bytes it sends for every message: sizes are taken as estimates from now on (the identity check still applies)");
  });
  const runLane = async (start: Lane | undefined): Promise<void> => {
    let lane = start;
    for (let job = queue.shift(); job; job = queue.shift()) {
      signal.throwIfAborted();
      const { entry, folder, i } = job;
      // Taken from the queue: if the run stops before the folder ends, it was interrupted.
      const track = !options.dryRun && !entry.noSelect;
      if (track) folder.state = 'interrupted';
      // Per-folder bookkeeping across attempts: what earlier attempts copied stays copied, and
      // the counters only ever hold the latest attempt's plan.
      let copiedBefore = 0;
      let copiedBytesBefore = 0;
      // One budget of reconnects for the folder over all its attempts (see copy/folder-run.ts).
      const lossBudget = { left: FOLDER_RECONNECTS };
      for (let attempt = 1; ; attempt++) {
        const attemptItems: SkippedItem[] = [];
        const attemptVerdicts: ScanVerdictRecord[] = [];
        try {
          if (!lane || !lane.source.isUsable() || !lane.dest.isUsable()) {
            // A broken lane gives its connection slots back before a new one takes them.
            if (lane) await ctx.releaseLane(lane);
            lane = await ctx.openLane();
          }
          const current: Lane = lane;
          await copyFolder({
            lane: current,
            reconnect: async (side) => {
              await ctx.reconnect(current, side);
              emit({ type: 'reconnected', side, folder: entry.sourceName });
            },
            entry,
            report: folder,
            limits,
            budget,
            retry: ctx.retry,
            gates,
            daily: ctx.daily,
            precheck: (meta) => precheck(meta, options.maxMessageSize, current.dest.caps().appendLimit),
            screen: ctx.screen,
            log,
            state: ctx.survey.records[i] ?? (await ctx.state?.folder(entry.sourceName, entry.destName)),
            // Only on the folder's first attempt: a retry comes after something went wrong.
            surveyed: attempt === 1 ? ctx.survey.statuses[i] : undefined,
            syncDeletions: !!options.syncDeletions,
            deleteSource: !!options.deleteSource,
            sizes,
            ...(options.messageFilter ? { messageFilter: options.messageFilter } : {}),
            lossBudget,
            dryRun: !!options.dryRun,
            signal,
            onPlanned(toCopy, toCopyBytes, alreadyPresent) {
              // Messages an earlier attempt copied are found again as already present: count them as copied.
              folder.alreadyPresent = Math.max(0, alreadyPresent - copiedBefore);
              tally.planned(i, { toCopy: toCopy + copiedBefore, toCopyBytes: toCopyBytes + copiedBytesBefore, present: folder.alreadyPresent, messages: folder.sourceCount, bytes: folder.sourceBytes });
              emit({ type: 'folder-start', folder: entry.sourceName, toCopy, toCopyBytes, alreadyPresent: folder.alreadyPresent });
              emit({ type: 'progress', counters: { ...counters } });
            },
            onBatch(copied, copiedBytes, skipped, found) {
              counters.copied += copied;
              counters.copiedBytes += copiedBytes;
              counters.skipped += skipped.length;
              for (const item of skipped) {
                attemptItems.push(item);
                report.items.push(item);
                emit({ type: 'item-skipped', item });
                log?.warn({ folder: item.folder, uid: item.uid, code: item.code, reason: item.reason }, 'message skipped');
              }
              for (const v of found) {
                attemptVerdicts.push(v);
                verdicts?.push(v);
                emit({ type: 'scan-verdict', verdict: v });
                log?.warn({ folder: v.folder, uid: v.uid, verdict: v.verdict, signature: v.signature, action: v.action }, 'scan verdict');
              }
              emit({ type: 'progress', counters: { ...counters } });
              if (options.badItemLimit !== undefined && report.items.length > options.badItemLimit) {
                throw new MigrateError(
                  ERROR_CODES.BAD_ITEM_LIMIT,
                  `${report.items.length} items were skipped, more than the limit of ${options.badItemLimit} (--bad-item-limit); the mailbox was stopped. The skipped items are listed in the report.`,
                  { scope: 'mailbox' },
                );
              }
            },
          });
        } catch (err) {
          if (isMigrateError(err) && err.scope === 'mailbox' && err.code !== ERROR_CODES.ABORTED) {
            // The mailbox is over: the other lanes stop after their command in flight.
            endMailbox(err);
            throw err;
          }
          if (signal.aborted) throw isMigrateError(err) ? err : new MigrateError(ERROR_CODES.ABORTED, 'The migration was stopped.', { scope: 'mailbox', cause: err });
          if (isMigrateError(err) && err.code === ERROR_CODES.CONNECTION_LOST && attempt < MAX_FOLDER_ATTEMPTS) {
            // Lost while the folder was being listed, or the folder was recreated: plan it again
            // on new connections. Nothing is copied twice: the destination is listed again.
            log?.warn({ folder: entry.sourceName, attempt, err: err.message }, 'planning the folder again');
            copiedBefore = folder.copied;
            copiedBytesBefore = folder.copiedBytes;
            for (const item of attemptItems) report.items.splice(report.items.indexOf(item), 1);
            for (const v of attemptVerdicts) verdicts?.splice(verdicts.indexOf(v), 1);
            counters.skipped -= attemptItems.length;
            folder.skipped = 0;
            folder.vanished = 0;
            if (folder.quarantined !== undefined) folder.quarantined = 0;
            if (folder.withheld !== undefined) folder.withheld = 0;
            if (lane) await ctx.releaseLane(lane);
            lane = undefined;
            continue;
          }
          const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.FOLDER_FAILED, `Folder "${entry.sourceName}": ${(err as Error)?.message ?? String(err)}`, { scope: 'folder', cause: err });
          folder.error = e.toJSON();
          log?.warn({ folder: entry.sourceName, code: e.code, err: e.message }, 'folder failed');
        }
        break;
      }
      tally.ended(i);
      if (track) folder.state = folder.error ? 'failed' : folder.skipped > 0 ? 'partial' : 'complete';
      counters.foldersDone++;
      emit({ type: 'folder-done', folder });
      emit({ type: 'progress', counters: { ...counters } });
    }
  };

  // Extra lanes are a speed-up, not a requirement: a server that refuses more connections
  // leaves us with the lanes we have. They are opened only when the first lane has been busy for
  // a moment with folders still waiting: a quiet rerun (a STATUS per folder) is over before that,
  // and does not pay for logins it has no use for.
  const first = runLane(ctx.lanes[0]);
  const extras: Promise<void>[] = [];
  const wanted = Math.max(0, Math.min(ctx.connections, queue.length) - 1);
  if (wanted > 0) {
    const firstDone = first.then(
      () => true,
      () => true,
    );
    // The wait is cancelled when the first lane ends first: its timer would hold the process.
    const waited = new AbortController();
    const quick = await Promise.race([firstDone, sleep(EXTRA_LANE_AFTER_MS, AbortSignal.any([signal, waited.signal])).then(() => false, () => true)]);
    waited.abort();
    for (let i = 0; !quick && i < Math.min(wanted, queue.length); i++) {
      extras.push(
        ctx.openLane(true).then(
          (lane) => runLane(lane),
          (err: unknown) => log?.warn({ err: (err as Error)?.message }, 'could not open an extra connection pair; continuing with fewer'),
        ),
      );
    }
  }
  // Wait for every lane before reporting, so that no lane writes into a report already returned.
  const results = await Promise.allSettled([first, ...extras]);
  if (mailboxError) throw mailboxError;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Refuses a message before it is fetched when it is over a size limit. */
function precheck(meta: MessageMeta, maxMessageSize: number | undefined, appendLimit: number | undefined): { code: ErrorCode; reason: string } | undefined {
  if (maxMessageSize !== undefined && meta.size > maxMessageSize) {
    return { code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `The message is ${meta.size} bytes, more than --max-message-size ${maxMessageSize}` };
  }
  if (appendLimit !== undefined && meta.size > appendLimit) {
    return { code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `The message is ${meta.size} bytes, more than the destination accepts (APPENDLIMIT=${appendLimit})` };
  }
  return undefined;
}
