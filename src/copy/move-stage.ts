/**
 * The move stage (--delete-source): a source message is removed only when an exact copy of it is
 * proven to be at the destination. Identity (a few header fields) finds candidates, and it is
 * not proof: anyone on a thread can send a message with the same Message-ID, Date, From, To and
 * Subject, and a server that cut a body short leaves the headers as they were. Proof is the same
 * size and the same SHA-256 of the bytes, from one of:
 * - this run's own APPEND: the bytes it sent (hashed when they were fetched and checked), stored
 *   under the UID the server gave (APPENDUID) and listed there now with that size;
 * - reading both bodies back now and hashing them (what an earlier run copied, or a destination
 *   without UIDPLUS).
 * Nothing else is removed; what could not be proven is counted and said.
 */
import { createHash } from 'node:crypto';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { batchMessages, matchMessages } from '../plan/message-plan.js';
import type { MailStore, MessageMeta } from '../stores/mail-store.js';
import type { FolderRun } from './folder-run.js';

/**
 * Hashes of the bodies of `metas` in the open folder of `store`, by UID. A body not delivered, or
 * not of its listed size, has none: what a store cannot show at its own size proves nothing.
 */
async function hashBodies(store: MailStore, metas: readonly MessageMeta[], signal?: AbortSignal): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const sizeOf = new Map(metas.map((m) => [m.uid, m.size]));
  for (const batch of batchMessages([...metas], { maxBytes: 4 * 1024 * 1024, maxMessages: 50 })) {
    const maxBytes = Math.max(0, ...batch.map((m) => m.size));
    for await (const o of store.fetchBodies(
      batch.map((m) => m.uid),
      signal,
      { maxBytes },
    )) {
      if ('body' in o && o.body.length === sizeOf.get(o.uid)) out.set(o.uid, createHash('sha256').update(o.body).digest('hex'));
    }
  }
  return out;
}

/** Removes at the source every message of `sourceMetas` whose exact copy is proven at the destination. */
export async function removeProven(run: FolderRun, sourceMetas: readonly MessageMeta[]): Promise<void> {
  const { ctx, lane, entry, report, signal } = run;
  if (!ctx.deleteSource || ctx.dryRun) return;
  await lane.dest.openFolder(entry.destPath, true);
  let proven: number[];
  try {
    const there = await lane.dest.listMessages(signal);
    if (there.failures.length > 0) {
      throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `The destination folder "${entry.destName}" could not be listed in full to verify the copies; nothing was removed at the source`, { scope: 'folder' });
    }
    // Candidates: the same identity and the same size.
    const pairs = matchMessages([...sourceMetas], there.messages).pairs.filter((p) => p.source.size === p.dest.size);
    const sent = run.sentByUid;
    proven = [];
    const needDest: typeof pairs = [];
    for (const p of pairs) {
      const s = sent.get(p.source.uid);
      // What this run sent proves the source's message only when it had the size the source listed.
      if (s && s.bytes !== p.source.size) continue;
      if (s && s.destUid !== undefined && s.destUid === p.dest.uid) proven.push(p.source.uid);
      else needDest.push(p);
    }
    if (needDest.length > 0) {
      const destHash = await hashBodies(
        lane.dest,
        needDest.map((p) => p.dest),
        signal,
      );
      // What this run sent has its hash already; what an earlier run copied is read at the source too.
      const needSource = needDest.filter((p) => !sent.has(p.source.uid)).map((p) => p.source);
      const sourceHash = needSource.length > 0 ? await hashBodies(lane.source, needSource, signal) : new Map<number, string>();
      for (const p of needDest) {
        const mine = sent.get(p.source.uid)?.sha256 ?? sourceHash.get(p.source.uid);
        const theirs = destHash.get(p.dest.uid);
        if (mine !== undefined && mine === theirs) proven.push(p.source.uid);
      }
    }
  } finally {
    await lane.dest.closeFolder();
  }
  await lane.source.deleteMessages(entry.sourcePath, proven, entry.sourceName);
  report.sourceDeleted = proven.length;
  const kept = sourceMetas.length - proven.length;
  if (kept > 0) report.sourceKept = kept;
}
