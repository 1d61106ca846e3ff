/**
 * The create stage of a mailbox: the destination's folder tree, parents first, then the
 * subscriptions the source has. A folder that cannot be created costs that folder only.
 */
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import type { MigrationEvent } from '../job/events.js';
import { createBelow, type FolderPlan, type FolderPlanEntry } from '../plan/folder-plan.js';
import type { FolderReport } from '../job/report.js';
import type { MailStore } from '../stores/mail-store.js';

/**
 * Creates missing folders top-down and mirrors subscriptions; a failure costs that folder only.
 *
 * A source parent that cannot hold messages (\Noselect) is not created on its own when a child
 * below it is created: RFC 3501 §6.3.3 says a server SHOULD create the superiors a CREATE needs,
 * and then the parent stays a placeholder as it was at the source. Only if the child's CREATE
 * fails are its missing parents created explicitly, and the child tried again.
 */
export async function createFolders(dest: MailStore, plan: FolderPlan, reports: FolderReport[], emit: (e: MigrationEvent) => void, log: Logger | undefined): Promise<void> {
  const isBelow = (child: readonly string[], parent: readonly string[]) => child.length > parent.length && parent.every((s, i) => child[i] === s);
  // A placeholder parent with a folder to create below it: created by the server with its child (one pass over the plan).
  const below = createBelow(plan.entries);
  const implicit = (k: number) => plan.entries[k]!.noSelect && below[k]!;
  const create = async (entry: FolderPlanEntry, report: FolderReport) => {
    const res = await dest.createFolder(entry.destPath);
    report.created = res.created;
    if (res.created) emit({ type: 'folder-created', folder: entry.destName });
  };
  for (const [i, entry] of plan.entries.entries()) {
    const report = reports[i]!;
    try {
      if (entry.create && !implicit(i)) {
        try {
          await create(entry, report);
        } catch (err) {
          const parents = plan.entries.map((p, k) => ({ p, k })).filter(({ p, k }) => p.create && implicit(k) && isBelow(entry.destPath, p.destPath));
          if (parents.length === 0 || !dest.isUsable()) throw err;
          for (const { p, k } of parents) await create(p, reports[k]!);
          await create(entry, report);
        }
      }
    } catch (err) {
      if (isMigrateError(err) && err.scope === 'mailbox') throw err;
      const e = isMigrateError(err) ? err : new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, String(err), { scope: 'folder' });
      report.error = e.toJSON();
      log?.warn({ folder: entry.destName, code: e.code, err: e.message }, 'folder not created');
      if (!dest.isUsable()) throw e;
    }
  }
  // Subscriptions last, once the whole tree exists: a parent that the server creates implicitly
  // with its child cannot be subscribed before, and a rerun must not subscribe what the first run
  // could not.
  for (const [i, entry] of plan.entries.entries()) {
    if (!entry.subscribe || reports[i]!.error) continue;
    await dest.subscribe(entry.destPath);
  }
}
