/**
 * The scan-disposal, append and record stages of a folder copy.
 *
 * Intent before acting, result after: a run killed in between leaves intents, and the next run
 * plans the folder from both listings instead of trusting the ledger. A lost APPEND has an
 * unknown outcome: before anything is sent again, the destination is asked what arrived (what is
 * above the UIDNEXT seen when it was listed, matched by content against everything this attempt
 * sent), so nothing is appended twice.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import { sleep } from '../core/sleep.js';
import { planMessages } from '../plan/message-plan.js';
import type { ScanVerdictRecord, SkippedItem } from '../job/report.js';
import { dateOf } from '../core/internal-date.js';
import type { AppendItem, AppendOutcome } from '../stores/mail-store.js';
import { MAX_LOSSES_IN_A_ROW, asItemError, isLoss, retryDelay, retryable, validityChanged, type Failure, type FolderRun, type Ready } from './folder-run.js';

/** After a lost APPEND: which of `inflight` are at the destination now? */
async function arrived(run: FolderRun, inflight: readonly Ready[]): Promise<Set<Ready>> {
  const { lane, entry, signal } = run;
  const status = await lane.dest.openFolder(entry.destPath, true);
  if (run.destValidity !== undefined && status.uidValidity !== run.destValidity) throw validityChanged('destination', entry.destName);
  const listing = await lane.dest.listMessages(signal, { sinceUid: run.destMark });
  await lane.dest.closeFolder();
  if (listing.failures.length > 0) {
    throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `After a lost connection, new messages in "${entry.destName}" cannot be read, so it cannot be told what arrived; the folder is planned again`, {
      scope: 'folder',
      retry: 'now',
    });
  }
  const missing = new Set(planMessages([...run.sent, ...inflight.map((r) => r.meta)], listing.messages).toCopy);
  return new Set(inflight.filter((r) => !missing.has(r.meta)));
}

/** Appends `items`, surviving lost connections without appending anything twice. */
async function appendRobust(run: FolderRun, items: readonly Ready[]): Promise<Map<Ready, AppendOutcome>> {
  const { ctx, signal } = run;
  const out = new Map<Ready, AppendOutcome>();
  let left = [...items];
  let losses = 0;
  while (left.length > 0) {
    await ctx.gates.destination.take(
      left.length,
      left.reduce((n, r) => n + r.body.length, 0),
      signal,
    );
    try {
      const outcomes = await run.lane.dest.appendBatch(run.entry.destPath, left.map(toAppendItem), signal);
      left.forEach((r, i) => out.set(r, outcomes[i]!));
      left = [];
    } catch (err) {
      if (!isLoss(err, signal)) throw err;
      // The outcome of what was in flight is unknown: never append it again blindly.
      for (;;) {
        if (++losses > MAX_LOSSES_IN_A_ROW) throw err;
        try {
          await run.reconnect('destination', err);
          const there = await arrived(run, left);
          for (const r of there) out.set(r, { ok: true, uid: undefined });
          left = left.filter((r) => !there.has(r));
          if (there.size > 0) losses = 0;
          break;
        } catch (again) {
          if (!isLoss(again, signal)) throw again;
        }
      }
    }
  }
  return out;
}

/** What one batch's append gave. */
export interface Appended {
  copied: number;
  copiedBytes: number;
  failed: Failure[];
  verdicts: ScanVerdictRecord[];
}

/** Disposes of what the scanner flagged, then appends the rest with retries, recording intents and results. */
export async function appendStage(run: FolderRun, ready: readonly Ready[]): Promise<Appended> {
  const { ctx, entry, report, state, signal } = run;
  let copied = 0;
  let copiedBytes = 0;
  const failed: Failure[] = [];
  const verdicts: ScanVerdictRecord[] = [];
  const held: SkippedItem[] = [];
  let deliver: Ready[] = [];
  for (const r of ready) {
    if (!ctx.screen || !r.screen || r.screen.verdict === 'clean') {
      deliver.push(r);
      continue;
    }
    const decision = await ctx.screen.dispose(r.screen, { folder: entry.sourceName, meta: r.meta, body: r.body }, run.lane, () => run.reconnect('destination'), signal);
    verdicts.push(decision.record);
    if (decision.deliver) deliver.push(r);
    // Not judged by the scanner: a skipped item, so that the ledger has the next run try it again.
    else if (decision.held) held.push(run.skipItem(r.meta, decision.held.code, decision.held.reason));
    else if (decision.record.action === 'quarantined') report.quarantined = (report.quarantined ?? 0) + 1;
    else report.withheld = (report.withheld ?? 0) + 1;
  }
  await run.skip(held);
  for (let attempt = 1; deliver.length > 0; attempt++) {
    await state?.intend(deliver.map((r) => ({ uid: r.meta.uid, key: r.meta.key, size: r.meta.size, flags: flagsToCopy(r.meta.flags) })));
    const outcomes = await appendRobust(run, deliver);
    await state?.settle(
      deliver.flatMap((r) => {
        const o = outcomes.get(r)!;
        return o.ok ? [{ uid: r.meta.uid, destUid: o.uid }] : [];
      }),
      deliver.filter((r) => !outcomes.get(r)!.ok).map((r) => r.meta.uid),
    );
    const again: Failure[] = [];
    for (const r of deliver) {
      const o = outcomes.get(r)!;
      const tries = run.addTry(r.meta.uid);
      if (o.ok) {
        copied++;
        copiedBytes += r.body.length;
        if (o.labelled) report.labelled = (report.labelled ?? 0) + 1;
        if (o.fallback !== undefined) (report.labelFallbacks ??= []).push({ uid: r.meta.uid, code: ERROR_CODES.GMAIL_LABEL_REFUSED, reason: o.fallback });
        run.recordSent(r.meta, r.body.length, o.uid, r.sha256);
        run.copiedOk(r.meta.uid);
        continue;
      }
      const f: Failure = { meta: r.meta, error: asItemError(o.error, ERROR_CODES.APPEND_FAILED), tries };
      if (attempt < ctx.retry.attempts && retryable(f, attempt)) again.push(f);
      else failed.push(f);
    }
    if (again.length === 0) break;
    await sleep(retryDelay(run, 'destination', attempt, again), signal);
    const byMeta = new Set(again.map((f) => f.meta));
    deliver = deliver.filter((r) => byMeta.has(r.meta));
  }
  return { copied, copiedBytes, failed, verdicts };
}

function toAppendItem(r: Ready): AppendItem {
  return { body: r.body, flags: flagsToCopy(r.meta.flags), internalDate: dateOf(r.meta.internalDate), identity: { key: r.meta.key, size: r.meta.size } };
}
