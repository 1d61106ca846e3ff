/**
 * Reads the Gmail identity and labels of every message of the open folder (All Mail): one
 * `UID FETCH 1:* (UID X-GM-MSGID X-GM-THRID X-GM-LABELS)`, no header or body. The rest of a
 * message's listing (size, flags, date, identity) comes from the store's own listing, with its
 * checks for a listing that is not whole; this adds only what Gmail alone knows.
 */
import { ERROR_CODES } from '../../core/errors.js';
import { decodeMutf7 } from '../maildir/mutf7.js';
import { commandError } from '../imap/imap-errors.js';
import type { ImapSession } from '../imap/session.js';

/** What Gmail says of one message. */
export interface GmailFacts {
  /** X-GM-MSGID (decimal; a 64-bit number, kept as text). */
  msgId: string;
  /** X-GM-THRID (decimal), when sent. */
  thrId: string | undefined;
  /** X-GM-LABELS, decoded to Unicode (system labels keep their backslash). */
  labels: string[];
}

/** True when the connected server offers Gmail's IMAP extensions (X-GM-EXT-1). */
export function hasGmailExtension(s: ImapSession): boolean {
  return (s.conn.capabilities as Map<string, unknown>).has('X-GM-EXT-1');
}

/** UID -> Gmail facts for every message of the open folder. */
export async function fetchGmailFacts(s: ImapSession, signal?: AbortSignal): Promise<Map<number, GmailFacts>> {
  const out = new Map<number, GmailFacts>();
  const box = s.conn.mailbox;
  if (!box || box.exists === 0) return out;
  // Labels are mailbox names: modified UTF-7, unless UTF8=ACCEPT is enabled (RFC 6855).
  const utf8 = !!(s.conn as unknown as { enabled?: Set<string> }).enabled?.has('UTF8=ACCEPT');
  try {
    // imapflow asks X-GM-MSGID by itself on such a server; threadId asks X-GM-THRID, labels X-GM-LABELS.
    for await (const msg of s.conn.fetch('1:*', { uid: true, threadId: true, labels: true }, { uid: true })) {
      signal?.throwIfAborted();
      const m = msg as { uid?: number; emailId?: string; threadId?: string; labels?: Set<string> };
      if (!m.uid || typeof m.emailId !== 'string') continue;
      out.set(m.uid, { msgId: m.emailId, thrId: m.threadId, labels: [...(m.labels ?? [])].map((l) => (utf8 ? l : decodeMutf7(l))) });
    }
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    throw commandError(ERROR_CODES.LIST_FAILED, 'mailbox', `Reading the Gmail labels of "${box.path}" failed`, err);
  }
  return out;
}
