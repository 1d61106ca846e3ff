/**
 * Body fetches on an IMAP connection: only answers for the UIDs asked for, literals capped near
 * the listed size, a deadline that scales with the bytes expected, and messages left out of an
 * answer returned as `missing` (the engine asks again before calling them vanished).
 */
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import type { FetchOutcome } from '../mail-store.js';
import { commandError } from './imap-errors.js';
import { unparsedError, type ImapSession } from './session.js';
import { packUids } from './uid-set.js';
import { bodyLiteralCap, withLiteralCap } from './wire-limits.js';
import { PieceBuffer } from './piece-buffer.js';
import { collectYoung, freeBuffer } from '../../core/release-memory.js';

/** A message listed at this size or more, fetched alone, is fetched in pieces of {@link PIECE} bytes (see piece-buffer.ts). */
export const PIECED_FROM = 8 * 1024 * 1024;
const PIECE = 1024 * 1024;

export async function* fetchBodies(s: ImapSession, uids: readonly number[], signal?: AbortSignal, options: { maxBytes?: number } = {}): AsyncIterable<FetchOutcome> {
  if (uids.length === 1 && (options.maxBytes ?? 0) >= PIECED_FROM) {
    yield await fetchInPieces(s, uids[0]!, options.maxBytes!, signal);
    return;
  }
  const asked = new Set(uids);
  const pending = new Set(uids);
  const mark = s.responses.mark();
  const client = s.conn;
  // A literal larger than the batch's largest listed message (with slack) is refused at its
  // marker, before its bytes are read (see wire-limits.ts).
  const cap = bodyLiteralCap(options.maxBytes ?? 0);
  const collected: FetchOutcome[] = [];
  let failed: unknown;
  const deadline = fetchDeadline(s, client, uids.length, options.maxBytes ?? 0);
  await withLiteralCap(client, cap, async () => {
    try {
      for await (const msg of client.fetch(packUids(uids), { uid: true, source: true }, { uid: true })) {
        // Only an answer for a UID asked for, and only the first one for it: a server that
        // labels bodies with UIDs nobody asked for, or answers one UID twice, gets no say.
        if (!msg.uid || !msg.source || !asked.has(msg.uid) || !pending.has(msg.uid)) continue;
        pending.delete(msg.uid);
        collected.push({ uid: msg.uid, body: msg.source, fresh: true });
      }
    } catch (err) {
      failed = err;
    } finally {
      deadline.clear();
    }
  });
  yield* collected;
  if (failed !== undefined) {
    s.throwIfFatal(failed, signal, (e) => commandError(ERROR_CODES.FETCH_FAILED, 'folder', 'Fetching messages failed', e));
    // One FETCH covers the whole batch: a NO for one message (locked, being scanned, corrupt)
    // fails the command. Fetch the rest one by one so that only the bad message is lost.
    for (const uid of [...pending]) {
      signal?.throwIfAborted();
      pending.delete(uid);
      yield await fetchOne(s, uid, cap, options.maxBytes ?? 0);
    }
  }
  if (pending.size > 0 && s.responses.since(mark).length > 0) {
    // Some answer could not be parsed: ask for the missing messages one by one, so that only
    // the one the server describes in a way we cannot read is reported.
    for (const uid of [...pending]) {
      signal?.throwIfAborted();
      pending.delete(uid);
      yield await fetchOne(s, uid, cap, options.maxBytes ?? 0);
    }
  }
  // Not in the answer: the engine asks again on a fresh connection, then asks the folder
  // whether the UID still exists before calling it vanished.
  for (const uid of pending) yield { uid, missing: true };
}

async function fetchOne(s: ImapSession, uid: number, cap: number, maxBytes: number): Promise<FetchOutcome> {
  let msg: FetchMessageObject | false | undefined;
  const mark = s.responses.mark();
  const client = s.conn;
  try {
    const deadline = fetchDeadline(s, client, 1, maxBytes);
    try {
      msg = await withLiteralCap(client, cap, () => client.fetchOne(String(uid), { uid: true, source: true }, { uid: true }));
    } finally {
      deadline.clear();
    }
  } catch (err) {
    s.throwIfFatal(err, undefined, (e) => commandError(ERROR_CODES.FETCH_FAILED, 'folder', `Fetching UID ${uid} failed`, e));
    return { uid, error: commandError(ERROR_CODES.FETCH_FAILED, 'message', `Fetching UID ${uid} failed`, err) };
  }
  if (!msg || !msg.source || msg.uid !== uid) {
    const raw = s.responses.since(mark);
    if (raw.length > 0) return { uid, error: unparsedError(`Fetching UID ${uid} failed: the server's answer could not be parsed`, raw[0]!) };
    return { uid, missing: true };
  }
  return { uid, body: msg.source, fresh: true };
}

/**
 * One large message in pieces (`BODY.PEEK[]<start.length>`), assembled in one buffer of the
 * listed size. The pieces of one UID are the same message (its bytes never change), so the
 * checks of the fetch stage (size, identity) apply to the whole as to a body fetched at once.
 */
async function fetchInPieces(s: ImapSession, uid: number, listed: number, signal?: AbortSignal): Promise<FetchOutcome> {
  const client = s.conn;
  const cap = bodyLiteralCap(listed);
  const body = new PieceBuffer(listed, cap);
  for (;;) {
    signal?.throwIfAborted();
    const start = body.length;
    let msg: FetchMessageObject | false | undefined;
    const mark = s.responses.mark();
    try {
      const deadline = fetchDeadline(s, client, 1, PIECE);
      try {
        msg = await withLiteralCap(client, bodyLiteralCap(PIECE), () => client.fetchOne(String(uid), { uid: true, source: { start, maxLength: PIECE } }, { uid: true }));
      } finally {
        deadline.clear();
      }
    } catch (err) {
      s.throwIfFatal(err, signal, (e) => commandError(ERROR_CODES.FETCH_FAILED, 'folder', `Fetching UID ${uid} failed`, e));
      return { uid, error: commandError(ERROR_CODES.FETCH_FAILED, 'message', `Fetching UID ${uid} failed`, err) };
    }
    if (!msg || !msg.source || msg.uid !== uid) {
      const raw = s.responses.since(mark);
      if (raw.length > 0) return { uid, error: unparsedError(`Fetching UID ${uid} failed: the server's answer could not be parsed`, raw[0]!) };
      if (start === 0) return { uid, missing: true };
      return { uid, error: new MigrateError(ERROR_CODES.FETCH_FAILED, `Fetching UID ${uid} failed: the source stopped answering for it after ${start} bytes`, { scope: 'message' }) };
    }
    const piece = msg.source;
    const pieceLength = piece.length;
    const taken = pieceLength <= PIECE && body.push(piece);
    // imapflow made the piece for this answer; its bytes are in `body` now (or refused).
    freeBuffer(piece);
    collectYoung();
    if (!taken) {
      return { uid, error: new MigrateError(ERROR_CODES.FETCH_FAILED, `Fetching UID ${uid} failed: the source sent more than ${cap} bytes for a message listed at ${listed} bytes`, { scope: 'message' }) };
    }
    if (pieceLength < PIECE) return { uid, body: body.result(), fresh: true };
  }
}

/**
 * A deadline for a body fetch, scaled with what it should bring: 2 minutes, and a second for
 * every 8 KiB expected. The idle timeout only catches silence; a server that trickles a byte
 * now and then would hold a fetch for ever. When it passes, the connection is closed (the
 * engine reconnects, charged to the folder's budget, and isolates the message).
 */
function fetchDeadline(s: ImapSession, client: ImapFlow, count: number, maxBytes: number): { clear(): void } {
  const ms = 120_000 + Math.ceil((count * Math.max(maxBytes, 1024)) / 8192) * 1000;
  const timer = setTimeout(() => {
    s.abandon(Object.assign(new Error(`the ${s.side} did not finish a fetch of ${count} message(s) within ${Math.round(ms / 1000)} s`), { code: 'EDEADLINE' }));
  }, ms);
  timer.unref();
  return { clear: () => clearTimeout(timer) };
}

export async function existingUids(s: ImapSession, uids: readonly number[], signal?: AbortSignal): Promise<Set<number>> {
  const box = s.conn.mailbox;
  if (!box || uids.length === 0) return new Set();
  try {
    const found = await s.conn.search({ uid: packUids([...uids]) }, { uid: true });
    signal?.throwIfAborted();
    const asked = new Set(uids);
    return new Set((Array.isArray(found) ? found : []).filter((u) => asked.has(u)));
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    throw s.listError(box.path, err);
  }
}

