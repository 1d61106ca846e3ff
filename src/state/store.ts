/**
 * The state ledger's interface, and the choice of its backend.
 *
 * Two backends keep the same records with the same crash-safety rules (intent before an APPEND,
 * result after; marks trusted only after a complete pass):
 * - a SQLite file (src/state/ledger.ts), for one machine: `--state FILE`;
 * - PostgreSQL (src/state/pg-ledger.ts), shared by the workers of a queue on many machines:
 *   `--state postgres://...`, and by default the queue's own database for `mailmover worker`.
 *
 * Methods may answer at once (SQLite is synchronous) or with a promise (PostgreSQL): callers
 * always await them.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { isPostgresUrl, maskUrl, type Awaitable, type FolderRecord, type MailboxRecord, type StateStore } from './types.js';

export type { Awaitable, BatchJobRecord, FolderMarks, FolderRecord, FolderSummary, LedgerMessage, LedgerSkip, MailboxRecord, StateStore } from './types.js';
export { isPostgresUrl, maskUrl } from './types.js';

/** Opens the ledger at `location`: a PostgreSQL URL, or a SQLite file (created when missing). */
export async function openState(location: string): Promise<StateStore> {
  if (isPostgresUrl(location)) {
    const { PgLedger } = await import('./pg-ledger.js');
    return PgLedger.open(location);
  }
  const { Ledger } = await import('./ledger.js');
  return Ledger.open(location);
}

/**
 * Wraps a mailbox's record (and the folder records it gives) so that a failed read or write (a full disk, the database gone mid-run)
 * stops the mailbox with MM-STATE-WRITE instead of an unexplained error. Nothing is appended
 * after a failed intent, so what is at the destination stays what the ledger recorded or less; a
 * rerun plans the folder from both listings.
 */
export function guardMailbox(record: MailboxRecord, location: string): MailboxRecord {
  const wrap = guard(record, location);
  return { folder: async (s, d) => guardFolder(await wrap(record.folder)(s, d), location), release: wrap(record.release) };
}

function guard(self: object, location: string) {
  return <A extends unknown[], R>(fn: (...a: A) => Awaitable<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await fn.apply(self, a);
      } catch (err) {
        if (err instanceof MigrateError) throw err;
        throw new MigrateError(ERROR_CODES.STATE_WRITE, `The state ledger ${maskUrl(location)} failed during the run: ${maskUrl((err as Error)?.message ?? String(err))}`, { scope: 'mailbox', retry: 'later', cause: err });
      }
    };
}

function guardFolder(record: FolderRecord, location: string): FolderRecord {
  const wrap = guard(record, location);
  const r = record;
  return {
    trusted: wrap(r.trusted),
    skippedUids: wrap(r.skippedUids),
    reset: wrap(r.reset),
    recordPresent: wrap(r.recordPresent),
    intend: wrap(r.intend),
    settle: wrap(r.settle),
    skip: wrap(r.skip),
    markSynced: wrap(r.markSynced),
    unmark: wrap(r.unmark),
    copies: wrap(r.copies),
    updateFlags: wrap(r.updateFlags),
    forget: wrap(r.forget),
  };
}
