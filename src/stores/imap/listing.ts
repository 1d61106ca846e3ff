/**
 * Listing the open folder of an IMAP connection: UIDs, flags, and the metadata the planner needs
 * (UID, size, flags, date, identity from the header block). A listing is trusted only when it is
 * whole; one that is not is taken again in chunks and then message by message, so that a message
 * the server will not describe costs that message only and is reported.
 */
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { timeOf } from '../../core/internal-date.js';
import { extractMessageId, messageKey } from '../../core/message-key.js';
import type { MessageListing } from '../mail-store.js';
import { commandError } from './imap-errors.js';
import { unparsedError, type ImapSession } from './session.js';
import { packUids } from './uid-set.js';

export async function listFlags(s: ImapSession, signal?: AbortSignal, options: { changedSince?: bigint } = {}): Promise<{ uid: number; flags: string[] }[]> {
  const box = s.conn.mailbox;
  if (!box || box.exists === 0) return [];
  const out: { uid: number; flags: string[] }[] = [];
  try {
    const fetchOptions = { uid: true, ...(options.changedSince !== undefined ? { changedSince: options.changedSince } : {}) };
    for await (const msg of s.conn.fetch('1:*', { uid: true, flags: true }, fetchOptions)) {
      signal?.throwIfAborted();
      if (msg.uid) out.push({ uid: msg.uid, flags: [...(msg.flags ?? [])] });
    }
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    throw s.listError(box.path, err);
  }
  return out;
}

export async function listUids(s: ImapSession, signal?: AbortSignal): Promise<number[]> {
  const box = s.conn.mailbox;
  if (!box || box.exists === 0) return [];
  try {
    const found = await s.conn.search({ all: true }, { uid: true });
    signal?.throwIfAborted();
    return Array.isArray(found) ? found : [];
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    throw s.listError(box.path, err);
  }
}

export async function listMessages(s: ImapSession, signal?: AbortSignal, options: { sinceUid?: number; uids?: readonly number[] } = {}): Promise<MessageListing> {
  const box = s.conn.mailbox;
  if (!box || box.exists === 0) return { messages: [], failures: [] };
  const since = Math.max(1, options.sinceUid ?? 1);
  const only = options.uids ? new Set(options.uids) : undefined;
  if (only && only.size === 0) return { messages: [], failures: [] };
  const wanted = (uid: number) => uid >= since && (!only || only.has(uid));
  const listing: MessageListing = { messages: [], failures: [] };
  const mark = s.responses.mark();
  try {
    // "UID n:*" also answers the last message when every UID is below n (RFC 3501 §6.4.8): filter.
    if (only) await listRange(s, packUids([...only]), true, listing, signal);
    else if (since > 1) await listRange(s, `${since}:*`, true, listing, signal);
    else await listRange(s, '1:*', false, listing, signal);
    listing.messages = listing.messages.filter((m) => wanted(m.uid));
    // Trusted only when it is whole: every message once, as many as the folder holds (a
    // server that leaves messages out, answers before its data or names a UID twice is
    // described again, below, message by message). A FETCH line imapflow could not parse is
    // a message missing from the listing too.
    if (s.responses.since(mark).length === 0 && (await isWhole(s, listing, box.exists, since, only, signal))) return listing;
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
  }
  // One FETCH describes the whole folder, and one message the server cannot read (damaged,
  // locked) fails it. Find the UIDs, then describe them in chunks, then one by one.
  let uids: number[];
  try {
    const found = await s.conn.search(only ? { uid: packUids([...only]) } : since > 1 ? { uid: `${since}:*` } : { all: true }, { uid: true });
    uids = [...new Set(Array.isArray(found) ? found : [])].filter(wanted);
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    throw s.listError(box.path, err);
  }
  const fresh: MessageListing = { messages: [], failures: [] };
  for (let i = 0; i < uids.length; i += 200) {
    const chunk = uids.slice(i, i + 200);
    const partial: MessageListing = { messages: [], failures: [] };
    const before = s.responses.mark();
    try {
      await listRange(s, packUids(chunk), true, partial, signal);
      if (s.responses.since(before).length === 0 && sameUids(partial.messages, chunk)) {
        fresh.messages.push(...partial.messages);
        continue;
      }
    } catch (err) {
      s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    }
    for (const uid of chunk) {
      const one: MessageListing = { messages: [], failures: [] };
      const before = s.responses.mark();
      try {
        await listRange(s, String(uid), true, one, signal);
        const mine = one.messages.filter((m) => m.uid === uid);
        const raw = s.responses.since(before);
        if (mine.length === 1 && raw.length === 0) fresh.messages.push(mine[0]!);
        else if (raw.length > 0) fresh.failures.push({ uid, error: unparsedError(`Reading UID ${uid} failed: the server's answer could not be parsed`, raw[0]!) });
        else {
          const said = one.messages.length === 0 ? 'no description' : `${one.messages.length} description(s), ${mine.length} of them for UID ${uid}`;
          fresh.failures.push({
            uid,
            error: new MigrateError(ERROR_CODES.LIST_INCOMPLETE, `The source lists UID ${uid} in the folder but answered ${said} when asked for it; it is not copied and is tried again next run`, { scope: 'message', retry: 'later' }),
          });
        }
      } catch (err) {
        s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
        fresh.failures.push({ uid, error: commandError(ERROR_CODES.FETCH_FAILED, 'message', `Reading UID ${uid} failed`, err) });
      }
    }
  }
  return fresh;
}

/**
 * Whether a listing describes each message of its range once. A whole-folder listing must have
 * as many messages as the folder holds; a listing of given UIDs each of them; a listing from a
 * UID on, what UID SEARCH finds there (one more command, only on incremental passes).
 */
async function isWhole(s: ImapSession, listing: MessageListing, exists: number, since: number, only: Set<number> | undefined, signal?: AbortSignal): Promise<boolean> {
  const uids = listing.messages.map((m) => m.uid);
  if (new Set(uids).size !== uids.length) return false;
  if (only) return uids.length === only.size;
  if (since <= 1) return uids.length === exists;
  const found = await s.conn.search({ uid: `${since}:*` }, { uid: true });
  signal?.throwIfAborted();
  const there = new Set((Array.isArray(found) ? found : []).filter((u) => u >= since));
  return there.size === uids.length && uids.every((u) => there.has(u));
}

/** FETCHes the listing fields for a sequence (or UID) range into `out`. */
async function listRange(s: ImapSession, range: string, byUid: boolean, out: MessageListing, signal?: AbortSignal): Promise<void> {
  // The whole header block, not HEADER.FIELDS: see core/message-key.ts for why.
  const query = { uid: true, flags: true, internalDate: true, size: true, headers: true };
  // Most messages of a folder share a handful of flag sets: one frozen array per set, not one per
  // message (a listing of 200,000 messages is held while the folder is planned and copied).
  const flagSets = new Map<string, string[]>();
  const shared = (flags: Iterable<string> | undefined) => {
    const list = [...(flags ?? [])];
    const key = list.join(' ');
    let one = flagSets.get(key);
    if (!one) flagSets.set(key, (one = Object.freeze(list) as string[]));
    return one;
  };
  for await (const msg of s.conn.fetch(range, query, { uid: byUid })) {
    signal?.throwIfAborted();
    // Unsolicited FETCH (FLAGS ...) updates can surface here without the fields we asked for.
    if (!msg.uid || typeof msg.size !== 'number') continue;
    out.messages.push({
      uid: msg.uid,
      size: msg.size,
      flags: shared(msg.flags),
      internalDate: timeOf(msg.internalDate),
      key: messageKey(msg.headers),
      messageId: extractMessageId(msg.headers),
    });
  }
}

/** True when `messages` describe exactly the UIDs of `chunk`, each once. */
function sameUids(messages: readonly { uid: number }[], chunk: readonly number[]): boolean {
  if (messages.length !== chunk.length) return false;
  const seen = new Set(messages.map((m) => m.uid));
  return seen.size === chunk.length && chunk.every((u) => seen.has(u));
}
