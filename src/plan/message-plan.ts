/**
 * Message planning: a pure function that decides which source messages are missing at the
 * destination. Messages are matched by content identity as a multiset: if the source holds three
 * byte-identical copies and the destination one, two are copied.
 */
import type { MessageMeta } from '../stores/mail-store.js';

/** The message plan of one folder. */
export interface MessagePlan {
  /** Source messages to copy, in UID order. */
  toCopy: MessageMeta[];
  /** How many source messages are already at the destination. */
  alreadyPresent: number;
}

/** Plans one folder: which of `source` are not yet in `dest`. */
export function planMessages(source: readonly MessageMeta[], dest: readonly MessageMeta[]): MessagePlan {
  const available = new Map<string, number>();
  for (const m of dest) available.set(m.key, (available.get(m.key) ?? 0) + 1);
  const toCopy: MessageMeta[] = [];
  let alreadyPresent = 0;
  for (const m of [...source].sort((a, b) => a.uid - b.uid)) {
    const n = available.get(m.key) ?? 0;
    if (n > 0) {
      available.set(m.key, n - 1);
      alreadyPresent++;
    } else {
      toCopy.push(m);
    }
  }
  return { toCopy, alreadyPresent };
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
