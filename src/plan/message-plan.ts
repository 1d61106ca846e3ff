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

/** How a source message was matched to a destination message (see {@link matchMessages}). */
export type MatchPass = 'exact' | 'identity-and-size' | 'identity';

/** The matching of one folder's two listings. */
export interface MessageMatch {
  /** Matched pairs, with the pass that matched them. */
  pairs: { source: MessageMeta; dest: MessageMeta; pass: MatchPass }[];
  /** Source messages with no counterpart at the destination, in UID order. */
  missing: MessageMeta[];
  /** Destination messages with no counterpart at the source. */
  extra: MessageMeta[];
}

/**
 * Matches the source messages of a folder with the destination's, as a multiset.
 *
 * Three passes, each on what the earlier ones left:
 * 1. identity headers + size + flags + INTERNALDATE ('exact'): identical bytes with different
 *    flags or dates (a message filed twice and read once) keep their own flags and dates;
 * 2. identity headers + size ('identity-and-size'): the same message whose flags changed since;
 * 3. identity headers alone, only for messages with a Message-ID ('identity'): the same message
 *    stored by a server that changed its size (Courier adds a missing final CRLF, Exchange
 *    reports sizes of its own). Without a Message-ID the size must match, or two automated
 *    messages with the same Date, From, To and Subject could be taken for one another.
 */
export function matchMessages(source: readonly MessageMeta[], dest: readonly MessageMeta[]): MessageMatch {
  const passes: [MatchPass, (m: MessageMeta) => string | undefined][] = [
    ['exact', exactKey],
    ['identity-and-size', (m) => `${m.key}|${m.size}`],
    ['identity', (m) => (m.messageId ? m.key : undefined)],
  ];
  let remaining = [...source].sort((a, b) => a.uid - b.uid);
  let available = [...dest];
  const pairs: MessageMatch['pairs'] = [];
  for (const [pass, keyOf] of passes) {
    // Nothing left to match against (a first copy): every remaining message is missing, and no
    // key is built (200,000 of them were ~40 MB of garbage at the copy's peak).
    if (available.length === 0) break;
    const byKey = new Map<string, MessageMeta[]>();
    for (const m of available) {
      const k = keyOf(m);
      if (k === undefined) continue;
      const list = byKey.get(k);
      if (list) list.push(m);
      else byKey.set(k, [m]);
    }
    const used = new Set<MessageMeta>();
    const unmatched: MessageMeta[] = [];
    for (const m of remaining) {
      const k = keyOf(m);
      const match = k === undefined ? undefined : byKey.get(k)?.pop();
      if (match) {
        used.add(match);
        pairs.push({ source: m, dest: match, pass });
      } else {
        unmatched.push(m);
      }
    }
    remaining = unmatched;
    available = available.filter((m) => !used.has(m));
  }
  return { pairs, missing: remaining, extra: available };
}

/** Plans one folder: which of `source` are not yet in `dest` (see {@link matchMessages}). */
export function planMessages(source: readonly MessageMeta[], dest: readonly MessageMeta[]): MessagePlan {
  const m = matchMessages(source, dest);
  return { toCopy: m.missing, alreadyPresent: m.pairs.length };
}

/** Content identity plus size, flags and INTERNALDATE (to the second, IMAP's precision). */
function exactKey(m: MessageMeta): string {
  const date = m.internalDate !== undefined ? Math.floor(m.internalDate / 1000) : '';
  return `${m.key}|${m.size}|${date}|${flagsToCopy(m.flags).join(' ')}`;
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
export function batchMessages<T extends { size: number }>(messages: readonly T[], limits: BatchLimits): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
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
