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
import type { BatchJobRecord, FolderMarks, LedgerMessage, LedgerSkip } from './ledger.js';

export type { BatchJobRecord, FolderMarks, LedgerMessage, LedgerSkip } from './ledger.js';

/** A value now or later. */
export type Awaitable<T> = T | Promise<T>;

/** Per folder: copies recorded, intents left over, skipped items, last complete pass. */
export interface FolderSummary {
  source: string;
  destination: string;
  copies: number;
  intents: number;
  skipped: number;
  syncedAt: string | undefined;
}

/** An open ledger. */
export interface StateStore {
  /** Where it is, for messages (a file path, or a PostgreSQL URL with any password masked). */
  readonly location: string;
  /**
   * Takes the lock of a mailbox (source and destination named without passwords) for this
   * process. Refused (MM-STATE-LOCKED) while another live run holds it.
   */
  lockMailbox(source: string, destination: string): Awaitable<MailboxRecord>;
  /** Every skipped item recorded for a mailbox, for `mailmover report`. */
  skippedItems(source: string, destination: string): Awaitable<LedgerSkip[]>;
  /** Per folder of a mailbox: what is recorded. */
  folders(source: string, destination: string): Awaitable<FolderSummary[]>;
  /** Records the status of one mailbox of a batch. */
  recordJob(batch: string, job: BatchJobRecord): Awaitable<void>;
  /** A running mailbox's progress (a no-op once its outcome is recorded, so a late update never undoes it). */
  recordProgress(batch: string, source: string, destination: string, progress: { copied: number; skipped: number; toCopy: number }): Awaitable<void>;
  /** The mailboxes of a batch as last recorded, in list order. */
  jobs(batch: string): Awaitable<(BatchJobRecord & { updatedAt: string })[]>;
  close(): Awaitable<void>;
}

/** One locked mailbox. */
export interface MailboxRecord {
  /** The record of a source folder (created empty when new). */
  folder(sourceName: string, destName: string): Awaitable<FolderRecord>;
  /** Gives the lock back. */
  release(): Awaitable<void>;
}

/** One folder's rows. Every write is its own transaction. */
export interface FolderRecord {
  /** The marks of the last complete pass, when there was one and nothing is left half-done. */
  trusted(): Awaitable<FolderMarks | undefined>;
  /** Source UIDs skipped by an earlier pass (they are tried again). */
  skippedUids(): Awaitable<number[]>;
  /** Forgets the folder's rows, skipped items and marks (it is being planned again in full). */
  reset(): Awaitable<void>;
  /** Records the messages found at both sides by a full plan (source UID -> destination UID). */
  recordPresent(pairs: readonly { source: { uid: number; key: string; size: number; flags: string[] }; destUid: number }[]): Awaitable<void>;
  /** Intent: these source messages are about to be appended. */
  intend(items: readonly { uid: number; key: string; size: number; flags: string[] }[]): Awaitable<void>;
  /** Result: `done` arrived (with their destination UIDs when known); `failed` did not. */
  settle(done: readonly { uid: number; destUid: number | undefined }[], failed: readonly number[]): Awaitable<void>;
  /** The audit trail: a skipped item and why. */
  skip(uid: number, code: string, reason: string, attempts: number | undefined): Awaitable<void>;
  /** The marks after a complete pass: from now on a rerun trusts them. */
  markSynced(m: FolderMarks): Awaitable<void>;
  /** Marks a pass as not complete (a later run plans the folder in full). */
  unmark(): Awaitable<void>;
  /** The copied messages recorded, with the destination UIDVALIDITY they were recorded under. */
  copies(): Awaitable<{ destUidValidity: bigint | undefined; rows: LedgerMessage[] }>;
  /** Records flags synced to the destination. */
  updateFlags(items: readonly { sourceUid: number; flags: string[] }[]): Awaitable<void>;
  /** Forgets messages removed at both sides. */
  forget(sourceUids: readonly number[]): Awaitable<void>;
}

/** True when `location` names a PostgreSQL database rather than a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** A PostgreSQL URL (or a text holding some) as it may be shown: every password masked. */
export function maskUrl(text: string): string {
  return text.replace(/\/\/([^:@/\s]*):[^@/\s]*@/g, '//$1:***@');
}

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
