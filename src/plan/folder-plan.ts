/**
 * Folder planning: a pure function from the two folder trees to the list of destination
 * folders, what to create, what to subscribe and what collides. No I/O: it is tested with tables.
 */
import { isInbox, pathKey, toServerName, type NameSpace } from '../core/mailbox-path.js';
import type { FolderInfo } from '../stores/mail-store.js';

/** What happens to one source folder. */
export interface FolderPlanEntry {
  /** Source path (segments). */
  sourcePath: string[];
  /** The source server's own name, for reports. */
  sourceName: string;
  /** Destination path (segments); today the same levels as the source. */
  destPath: string[];
  /** The destination server's name for it (prefix and separator applied). */
  destName: string;
  /** True when the folder has to be created at the destination. */
  create: boolean;
  /** True when it must be subscribed at the destination (subscribed at the source, not yet there). */
  subscribe: boolean;
  /** True when the source cannot hold messages (\Noselect parent, or a parent the source did not list). */
  noSelect: boolean;
  /** True when a character of the name had to be replaced (it is the destination's separator). */
  renamed: boolean;
}

/** Two or more source folders that would land in one destination folder. */
export interface FolderCollision {
  destName: string;
  sourceNames: string[];
}

/** The folder plan. Entries are ordered parents first. */
export interface FolderPlan {
  entries: FolderPlanEntry[];
  collisions: FolderCollision[];
}

/** Options for {@link planFolders}. */
export interface FolderPlanOptions {
  /** Substitute for the destination separator inside a name (default '_'). */
  separatorSubstitute?: string;
}

/**
 * Plans the destination tree.
 *
 * - Every source folder maps to the same levels at the destination; INBOX maps to INBOX.
 * - Parents a server did not list (some omit them) are added, so that the tree can be created
 *   top-down on any server.
 * - A folder that exists at the destination (same server name; INBOX case-insensitively) is
 *   reused, never recreated.
 */
export function planFolders(source: readonly FolderInfo[], dest: readonly FolderInfo[], destNs: NameSpace, options: FolderPlanOptions = {}): FolderPlan {
  const bySource = new Map<string, FolderInfo>();
  for (const f of source) bySource.set(pathKey(f.path), f);
  // Implicit parents: 'A/B/C' listed without 'A/B' still needs 'A/B' to exist first.
  for (const f of source) {
    for (let depth = 1; depth < f.path.length; depth++) {
      const parent = f.path.slice(0, depth);
      const key = pathKey(parent);
      if (!bySource.has(key)) {
        bySource.set(key, { path: parent, name: parent.join(f.delimiter || '/'), delimiter: f.delimiter, noSelect: true, subscribed: false, specialUse: undefined });
      }
    }
  }
  const destByName = new Map<string, FolderInfo>();
  for (const f of dest) destByName.set(normaliseName(f.name), f);

  const entries: FolderPlanEntry[] = [];
  for (const f of bySource.values()) {
    const { name, substituted } = toServerName(f.path, destNs, options.separatorSubstitute);
    const existing = destByName.get(normaliseName(name));
    entries.push({
      sourcePath: [...f.path],
      sourceName: f.name,
      destPath: isInbox(f.path) ? ['INBOX'] : [...f.path],
      destName: name,
      create: !existing,
      subscribe: f.subscribed && !existing?.subscribed,
      noSelect: f.noSelect,
      renamed: substituted,
    });
  }
  entries.sort(compareEntries);

  const byDest = new Map<string, string[]>();
  for (const e of entries) {
    const key = normaliseName(e.destName);
    byDest.set(key, [...(byDest.get(key) ?? []), e.sourceName]);
  }
  const collisions = [...byDest.entries()]
    .filter(([, names]) => names.length > 1)
    .map(([destName, sourceNames]) => ({ destName, sourceNames }));
  return { entries, collisions };
}

/** INBOX is case-insensitive (RFC 3501 §5.1); every other name is compared exactly. */
function normaliseName(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/** INBOX first, then parents before children, then by name (stable, readable plans). */
function compareEntries(a: FolderPlanEntry, b: FolderPlanEntry): number {
  const ai = isInbox(a.sourcePath) ? 0 : 1;
  const bi = isInbox(b.sourcePath) ? 0 : 1;
  if (ai !== bi) return ai - bi;
  const n = Math.min(a.sourcePath.length, b.sourcePath.length);
  for (let i = 0; i < n; i++) {
    const c = compareText(a.sourcePath[i]!, b.sourcePath[i]!);
    if (c !== 0) return c;
  }
  return a.sourcePath.length - b.sourcePath.length;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
