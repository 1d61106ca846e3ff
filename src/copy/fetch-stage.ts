/**
 * The fetch-and-check stage of a folder copy, and the scan that follows it.
 *
 * Nothing a source hands out is trusted unchecked. A body is taken only when it is the message
 * that was listed under that UID: the same size (RFC822.SIZE), and the same identity recomputed
 * from its own header block. A body cut short, another message's bytes under this UID, an answer
 * that leaves a message out or comes without its UID: each is "not fetched", asked for again on
 * a fresh connection, and then skipped and reported (the ledger tries it again next run). A
 * message is called vanished only when UID SEARCH says the folder no longer holds it.
 */
import { createHash } from 'node:crypto';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { messageKey } from '../core/message-key.js';
import type { FetchOutcome, MessageMeta } from '../stores/mail-store.js';
import { sleep } from '../core/sleep.js';
import { isolateLosses } from './isolate.js';
import { MAX_LOSSES_IN_A_ROW, asItemError, brokeConnection, isLoss, retryDelay, retryable, type Failure, type FolderRun, type Ready } from './folder-run.js';
import { isOversized } from './list-stage.js';
import { budgetSpent } from './daily-budget.js';
import { DAY_MS } from '../state/budget-window.js';

/** What one batch's fetch gave. */
export interface Fetched {
  ready: Ready[];
  failed: Failure[];
  vanished: number;
  /** Bytes taken from the shared budget for this batch (given back after the append). */
  held: number;
}

/** Fetches `metas`, surviving lost connections; a message that breaks the connection each time is isolated. */
async function fetchRobust(run: FolderRun, metas: readonly MessageMeta[]): Promise<Map<number, FetchOutcome>> {
  const { signal, ctx } = run;
  const out = new Map<number, FetchOutcome>();
  const sizeOf = new Map(metas.map((m) => [m.uid, m.size]));
  const done = new Set<number>();
  const set = (o: FetchOutcome) => {
    out.set(o.uid, o);
    done.add(o.uid);
  };
  await isolateLosses(
    metas.map((m) => m.uid),
    {
      done,
      step: async (part) => {
        const bytes = part.reduce((n, uid) => n + (sizeOf.get(uid) ?? 0), 0);
        await ctx.gates.source.take(part.length, bytes, signal);
        const maxBytes = Math.max(0, ...part.map((uid) => sizeOf.get(uid) ?? 0));
        const asked = new Set(part);
        for await (const o of run.lane.source.fetchBodies(part, signal, { maxBytes })) if (asked.has(o.uid) && !done.has(o.uid)) set(o);
        for (const uid of part) if (!done.has(uid)) set({ uid, missing: true });
      },
      isLoss: (err) => isLoss(err, signal) || isOversized(err),
      recover: (err) => run.reopenSource(err),
      giveUp: (uid, err, n) => set({ uid, error: brokeConnection('read', uid, err, n) }),
      suspectLimit: ctx.retry.attempts,
      maxLossesInARow: MAX_LOSSES_IN_A_ROW,
    },
  );
  return out;
}

/** Why `body` is not the message listed as `meta` ('size' or 'identity'), or undefined when it is. */
function mismatch(meta: MessageMeta, body: Buffer): 'size' | 'identity' | undefined {
  if (messageKey(headerBlock(body)) !== meta.key) return 'identity';
  return body.length !== meta.size ? 'size' : undefined;
}

function mismatchText(kind: 'size' | 'identity', meta: MessageMeta, body: Buffer): string {
  const size = body.length !== meta.size ? `the source sent ${body.length} bytes for UID ${meta.uid}, listed at ${meta.size} bytes` : undefined;
  if (kind === 'size') return size!;
  const other = `the bytes the source sent for UID ${meta.uid} are not the message it listed under that UID (other identity headers)`;
  return size ? `${size}, and ${other.replace(/^the bytes the source sent for UID \d+ are/, 'they are')}` : other;
}

/** The header block of a message: everything up to the first empty line (or the whole message). */
function headerBlock(body: Buffer): Buffer {
  const crlf = body.indexOf('\r\n\r\n');
  // A bare-LF blank line counts only before the CRLF one: search no further than that (a CRLF
  // message has none, and the whole body was searched for it: ~400 MB per bench corpus).
  const lf = (crlf >= 0 ? body.subarray(0, crlf + 2) : body).indexOf('\n\n');
  const ends = [crlf >= 0 ? crlf + 4 : -1, lf >= 0 ? lf + 2 : -1].filter((n) => n >= 0);
  return ends.length === 0 ? body : body.subarray(0, Math.min(...ends));
}

/** Fetches one batch (with the budget held), checks every body against its listing, and scans what passed. */
export async function fetchStage(run: FolderRun, metas: MessageMeta[]): Promise<Fetched> {
  const { ctx, signal } = run;
  const held = await ctx.budget.acquire(
    metas.reduce((n, m) => n + m.size, 0),
    signal,
  );
  try {
    const ready: Ready[] = [];
    const failed: Failure[] = [];
    let vanished = 0;
    let pending = metas;
    let fresh = false;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const outcomes = await fetchRobust(run, pending);
      const again: Failure[] = [];
      const notHere: MessageMeta[] = [];
      const askAgain: Failure[] = [];
      // Sizes are weighed over the whole batch first (see SizeTrust), then each body is judged.
      const kinds = new Map(pending.flatMap((meta) => { const o = outcomes.get(meta.uid)!; return 'body' in o ? [[meta.uid, mismatch(meta, o.body)] as const] : []; }));
      const sizes = run.sizes;
      sizes.observe([...kinds.values()].filter((k) => k === undefined).length, [...kinds.values()].filter((k) => k === 'size').length);
      for (const meta of pending) {
        const o = outcomes.get(meta.uid)!;
        const tries = run.addTry(meta.uid);
        if ('body' in o) {
          const wrong = kinds.get(meta.uid);
          if (wrong === undefined || (wrong === 'size' && sizes.estimates)) {
            // The hash proves a copy before a move deletes at the source; nothing else needs it.
            const sha256 = ctx.deleteSource ? { sha256: createHash('sha256').update(o.body).digest('hex') } : {};
            ready.push({ meta, body: o.body, ...sha256, ...(o.fresh ? { fresh: true } : {}) });
            continue;
          }
          askAgain.push({ meta, error: new MigrateError(ERROR_CODES.FETCH_MISMATCH, `Not copied: ${mismatchText(wrong, meta, o.body)}`, { scope: 'message', retry: 'never' }), tries });
        } else if ('missing' in o) {
          notHere.push(meta);
        } else {
          const f: Failure = { meta, error: asItemError(o.error, ERROR_CODES.FETCH_FAILED), tries };
          // The provider's own limit (bandwidth): every further message would be refused too.
          if (f.error.scope === 'mailbox') throw f.error;
          if (attempt < ctx.retry.attempts && retryable(f, attempt)) again.push(f);
          else failed.push(f);
        }
      }
      // Left out of the answer: vanished only if the folder no longer holds it.
      if (notHere.length > 0) {
        const still = await run.lane.source.existingUids(
          notHere.map((m) => m.uid),
          signal,
        );
        for (const meta of notHere) {
          if (!still.has(meta.uid)) vanished++;
          else
            askAgain.push({
              meta,
              error: new MigrateError(ERROR_CODES.FETCH_INCOMPLETE, `Not copied: the source holds UID ${meta.uid} but left it out of its answer to FETCH`, { scope: 'message', retry: 'never' }),
              tries: run.triesOf(meta.uid),
            });
        }
      }
      // A wrong or missing answer is asked for once more, on a fresh connection (a server that
      // answered out of turn may have left the old one out of step); then it is reported.
      if (askAgain.length > 0 && !fresh) {
        fresh = true;
        await run.reopenSource();
        again.push(...askAgain);
      } else failed.push(...askAgain);
      if (again.length === 0) break;
      await sleep(retryDelay(run, 'source', attempt, again), signal);
      pending = again.map((f) => f.meta);
    }
    if (ctx.screen && ready.length > 0) {
      const results = await ctx.screen.check(
        ready.map((r) => r.body),
        signal,
      );
      results.forEach((s, i) => (ready[i]!.screen = s));
    }
    return { ready, failed, vanished, held };
  } catch (err) {
    ctx.budget.release(held);
    throw err;
  }
}

/** A fetched batch, and the error that parks the mailbox once it is appended (the budget let only part of it through). */
export type BudgetedFetch = Fetched & { park?: MigrateError };

/** Fetches the part of `metas` the budgets let through (all of it without budgets). */
export async function budgetedFetch(run: FolderRun, metas: MessageMeta[]): Promise<BudgetedFetch> {
  const gate = run.ctx.daily;
  if (!gate) return fetchStage(run, metas);
  const { admitted, resumeAt } = await gate.admit(metas.map((m) => m.size));
  const park = admitted < metas.length ? budgetSpent(resumeAt ?? Date.now() + DAY_MS, gate.what) : undefined;
  if (park) run.ctx.log?.warn({ event: 'budget-spent', folder: run.entry.sourceName, admitted, refused: metas.length - admitted, resumeAt: new Date(park.resumeAt!).toISOString() }, 'daily budget spent: the mailbox parks after this batch');
  if (admitted === 0) return { ready: [], failed: [], vanished: 0, held: 0, ...(park ? { park } : {}) };
  const fetched = await fetchStage(run, metas.slice(0, admitted));
  return park ? { ...fetched, park } : fetched;
}
