/**
 * Message planning: a pure function that decides which source messages are missing at the
 * destination. Messages are matched by content identity as a multiset: if the source holds three
 * byte-identical copies and the destination one, two are copied.
 */
import { flagsToCopy } from '../core/flags.js';
import type { MessageMeta } from '../stores/mail-store.js';

/** The message plan of one folder. */
export interface MessagePlan {
  /** Source messages to copy, in UID order. */
  toCopy: MessageMeta[];
  /** How many source messages are already at the destination. */
  alreadyPresent: number;
}

/**
 * Plans one folder: which of `source` are not yet in `dest`.
 *
 * Two passes: first a message is matched to a destination copy that also has its flags and
 * INTERNALDATE; only the rest are matched on content alone. Identical bytes with different flags
 * or dates (a message filed twice and read once) thus keep their own flags and dates when only
 * one copy is missing.
 */
export function planMessages(source: readonly MessageMeta[], dest: readonly MessageMeta[]): MessagePlan {
  const destByExact = new Map<string, MessageMeta[]>();
  for (const m of dest) {
    const k = exactKey(m);
    const list = destByExact.get(k);
    if (list) list.push(m);
    else destByExact.set(k, [m]);
  }
  const unmatched: MessageMeta[] = [];
  let alreadyPresent = 0;
  for (const m of [...source].sort((a, b) => a.uid - b.uid)) {
    if (destByExact.get(exactKey(m))?.pop()) alreadyPresent++;
    else unmatched.push(m);
  }
  // Destination copies left over by the exact pass are matched on content alone.
  const byContent = countBy([...destByExact.values()].flat(), (m) => m.key);
  const toCopy: MessageMeta[] = [];
  for (const m of unmatched) {
    if (take(byContent, m.key)) alreadyPresent++;
    else toCopy.push(m);
  }
  return { toCopy, alreadyPresent };
}

/** Content identity plus flags and INTERNALDATE (to the second, IMAP's precision). */
function exactKey(m: MessageMeta): string {
  const date = m.internalDate ? Math.floor(m.internalDate.getTime() / 1000) : '';
  return `${m.key}|${date}|${flagsToCopy(m.flags).join(' ')}`;
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of items) out.set(key(t), (out.get(key(t)) ?? 0) + 1);
  return out;
}

/** Decrements a count if it is positive; true when it did. */
function take(counts: Map<string, number>, key: string): boolean {
  const n = counts.get(key) ?? 0;
  if (n <= 0) return false;
  counts.set(key, n - 1);
  return true;
}

/** Limits of one copy batch. */
export interface BatchLimits {
  /** Most bytes of message bodies in one batch (a larger single message is a batch of its own). */
  maxBytes: number;
  /** Most messages in one batch. */
  maxMessages: number;
}

/**
 * Splits messages into batches bounded by bytes and count, in order. Bounds memory: at most a
 * couple of batches of bodies are held at once, whatever the size of the folder.
 */
export function batchMessages(messages: readonly MessageMeta[], limits: BatchLimits): MessageMeta[][] {
  const batches: MessageMeta[][] = [];
  let current: MessageMeta[] = [];
  let bytes = 0;
  for (const m of messages) {
    if (current.length > 0 && (bytes + m.size > limits.maxBytes || current.length >= limits.maxMessages)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += m.size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
