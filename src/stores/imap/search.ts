/**
 * `--search` on an IMAP connection: `UID SEARCH` with the user's own keys in the open folder.
 *
 * The keys are sent as one verbatim token (imapflow's TEXT: written as given, refused if it holds
 * a line break), so that imapflow neither quotes them nor splits them; plan/search-keys.ts has
 * checked them first (no control character, no literal, balanced quotes and parentheses). The
 * answer is bounded like every listing: by the session's line cap (wire-limits.ts), and only
 * whole positive UIDs are kept, at most as many as the folder holds.
 */
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { serverText } from './imap-errors.js';
import type { ImapSession } from './session.js';

/** What imapflow hands an untagged-response handler. */
interface Untagged {
  attributes?: { type?: string; value?: unknown }[];
}

interface RawExec {
  exec(command: string, attributes: unknown[], options: { untagged: Record<string, (u: Untagged) => Promise<void>> }): Promise<{ next: () => void }>;
}

export async function searchUids(s: ImapSession, keys: string, signal?: AbortSignal): Promise<number[]> {
  const box = s.conn.mailbox;
  if (!box) throw new MigrateError(ERROR_CODES.INTERNAL, 'searchUids needs an open folder', { scope: 'folder' });
  signal?.throwIfAborted();
  // A conforming server cannot match more messages than the folder holds (EXISTS).
  const budget = Math.max(0, box.exists ?? 0);
  const found = new Set<number>();
  const add = (value: number) => {
    if (Number.isSafeInteger(value) && value > 0 && value < 2 ** 32 && found.size < budget) found.add(value);
  };
  const conn = s.conn as unknown as RawExec;
  try {
    const res = await conn.exec('UID SEARCH', [{ type: 'TEXT', value: keys }], {
      untagged: {
        SEARCH: async (u) => {
          for (const a of u.attributes ?? []) if (typeof a.value === 'string' && /^\d{1,10}$/.test(a.value)) add(Number(a.value));
        },
        // IMAP4rev2 servers answer a plain SEARCH with ESEARCH (RFC 9051): "ALL" then a UID set.
        ESEARCH: async (u) => {
          const list = u.attributes ?? [];
          const at = list.findIndex((a) => typeof a.value === 'string' && a.value.toUpperCase() === 'ALL');
          const set = at >= 0 ? list[at + 1]?.value : undefined;
          if (typeof set === 'string') expandUidSet(set, add, () => found.size >= budget);
        },
      },
    });
    res.next();
    signal?.throwIfAborted();
  } catch (err) {
    s.throwIfFatal(err, signal, (e) => searchRefused(s, box.path, keys, e));
    throw searchRefused(s, box.path, keys, err);
  }
  return [...found].sort((a, b) => a - b);
}

/** A server's BAD or NO for the keys: the same keys would be refused in every folder, so the mailbox stops. */
function searchRefused(s: ImapSession, folder: string, keys: string, err: unknown): MigrateError {
  const text = serverText(err);
  const said = text ?? (err as Error)?.message ?? String(err);
  return new MigrateError(ERROR_CODES.SEARCH_REFUSED, `The ${s.side} refused the --search keys ${JSON.stringify(keys)} in "${folder}": ${said}`, {
    scope: 'mailbox',
    cause: err,
    ...(text ? { serverResponse: text } : {}),
  });
}

/** Calls `add` for each UID of a set such as "1:3,7" (no "*": a server's UID set names its UIDs), until `full`. */
function expandUidSet(set: string, add: (uid: number) => void, full: () => boolean): void {
  for (const part of set.split(',')) {
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let uid = Math.min(a, b); uid <= Math.max(a, b); uid++) {
      if (full()) return;
      add(uid);
    }
  }
}
