/**
 * `--search` keys are tried once before a run changes anything: in the first source folder that
 * opens, so that keys the server refuses (MM-SEARCH-REFUSED) stop the mailbox before any folder
 * is created or any message copied, rather than after other folders were copied in parallel.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import type { FolderPlanEntry } from '../plan/folder-plan.js';
import type { MailStore } from '../stores/mail-store.js';

/** Folders tried in turn when one will not open (its own copy reports that later). */
const TRIES = 3;

/** Runs the keys in one source folder; throws the store's refusal. */
export async function trySearch(source: MailStore, entries: readonly FolderPlanEntry[], keys: string, signal: AbortSignal): Promise<void> {
  if (!source.caps().search) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'The source store has no IMAP SEARCH: --search cannot select its messages.', { scope: 'mailbox' });
  }
  for (const entry of entries.filter((e) => !e.noSelect).slice(0, TRIES)) {
    signal.throwIfAborted();
    try {
      await source.openFolder(entry.sourcePath, true, entry.sourceName);
    } catch {
      continue;
    }
    try {
      await source.searchUids(keys, signal);
      return;
    } finally {
      if (source.isUsable()) await source.closeFolder().catch(() => undefined);
    }
  }
}
