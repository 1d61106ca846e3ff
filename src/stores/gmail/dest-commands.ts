/**
 * The Gmail commands of the destination side (X-GM-EXT-1), on an IMAP store's connection:
 * reading X-GM-LABELS of the open folder, and adding a label or flags to messages of a folder
 * selected read-write for it. Everything leaves this module as a MigrateError with the server's
 * own words, or, for a refused command, as its text.
 */
import { encodePath } from 'imapflow/lib/tools.js';
import { ERROR_CODES } from '../../core/errors.js';
import { commandError, serverText } from '../imap/imap-errors.js';
import type { ImapSession } from '../imap/session.js';
import { packUids } from '../imap/uid-set.js';

/** True when the server offers Gmail's extensions (X-GM-EXT-1): labels, X-GM-MSGID. */
export function hasGmailExtensions(s: ImapSession): boolean {
  return (s.conn.capabilities as Map<string, unknown>).has('X-GM-EXT-1');
}

/** A label as it goes on the wire: a system label (`\Inbox`) as it is, a user label in the server's encoding. */
export function wireLabel(s: ImapSession, label: string, system: boolean): string {
  return system ? label : encodePath(s.conn, label);
}

/** X-GM-LABELS of every message of the open folder, by UID (as sent on the wire). */
export async function fetchLabels(s: ImapSession, signal?: AbortSignal): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  const box = s.conn.mailbox;
  if (!box || box.exists === 0) return out;
  try {
    for await (const msg of s.conn.fetch('1:*', { uid: true, labels: true }, { uid: true })) {
      signal?.throwIfAborted();
      if (msg.uid) out.set(msg.uid, [...(msg.labels ?? [])]);
    }
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => s.listError(box.path, e));
    // Labels are a refinement: without them a message is taken to carry none.
  }
  return out;
}

/**
 * `UID STORE uids +X-GM-LABELS (label)` (or `+FLAGS.SILENT (flags)`) in the selected folder.
 * Resolves undefined when done, or with the server's words when it refused; a lost connection or
 * an abort is thrown.
 */
export async function storeAdd(s: ImapSession, uids: readonly number[], what: { label: string; system: boolean } | { flags: string[] }, signal?: AbortSignal): Promise<string | undefined> {
  const conn = s.conn as unknown as { exec(c: string, a: unknown[]): Promise<{ next: () => void }> };
  const values =
    'label' in what
      ? [what.system ? { type: 'ATOM', value: what.label } : { type: 'STRING', value: encodePath(s.conn, what.label) }]
      : what.flags.map((f) => ({ type: 'ATOM', value: f }));
  const item = 'label' in what ? '+X-GM-LABELS' : '+FLAGS.SILENT';
  try {
    const res = await conn.exec('UID STORE', [{ type: 'SEQUENCE', value: packUids(uids) }, { type: 'ATOM', value: item }, values]);
    res.next();
    return undefined;
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => commandError(ERROR_CODES.GMAIL_LABEL_REFUSED, 'folder', 'Labelling messages at the destination failed', e));
    return serverText(err) ?? (err as Error)?.message ?? String(err);
  }
}
