/**
 * Folder planning: a pure function from the two folder trees and the rules to the list of
 * destination folders, what to create, what to subscribe, what is left out and what collides.
 * No I/O: it is tested with tables and random trees.
 */
import { displayPath, isInbox, pathKey, toServerName, type NameSpace } from '../core/mailbox-path.js';
import type { FolderInfo } from '../stores/mail-store.js';
import { DEFAULT_RULES, startsWithPath, type FolderRules } from './folder-rules.js';
import { specialFolders, viewRoleOf, type SpecialRole } from './special-use.js';

/** How a destination path came about, when it differs from the source path. */
export type MappedBy = 'special-use' | 'map' | 'rename' | 'dest-prefix';

/** What happens to one source folder. */
export interface FolderPlanEntry {
  /** Source path (segments); for an implicit parent, its destination path. */
  sourcePath: string[];
  /** The source server's own name, for reports ('' for an implicit parent). */
  sourceName: string;
  /** Destination path (segments). */
  destPath: string[];
  /** The destination server's name for it (prefix and separator applied). */
  destName: string;
  /** True when the folder has to be created at the destination. */
  create: boolean;
  /** True when it must be subscribed at the destination (subscribed at the source, not yet there). */
  subscribe: boolean;
  /** True when the folder holds no messages to copy (a \Noselect parent, or a parent we add). */
  noSelect: boolean;
  /** True when a character of the name had to be replaced for the destination (separator, control character, "." or ".."). */
  renamed: boolean;
  /** Why the destination path differs from the source path, if it does. */
  mappedBy: MappedBy | undefined;
  /** True for a parent that only the destination path needs (no source folder behind it). */
  implicit: boolean;
}

/** A source folder that is not copied, and why. */
export interface ExcludedFolder {
  sourceName: string;
  reason: 'gmail-view' | 'not-included' | 'excluded' | 'other-namespace';
}

/** Two or more source folders that would land in one destination folder. */
export interface FolderCollision {
  destName: string;
  sourceNames: string[];
}

/** The folder plan. Entries are ordered INBOX first, then parents before children. */
export interface FolderPlan {
  entries: FolderPlanEntry[];
  excluded: ExcludedFolder[];
  collisions: FolderCollision[];
}

/** Options for {@link planFolders}. */
export interface FolderPlanOptions {
  /** Substitute for characters a destination name cannot hold (default '_'). */
  separatorSubstitute?: string;
  rules?: FolderRules;
}

/**
 * Plans the destination tree:
 * 1. leaves out Gmail's views and what --include/--exclude say;
 * 2. maps each folder: special folders onto the destination's own (unless --no-automap or
 *    --dest-prefix), then --map, then --rename, then --dest-prefix;
 * 3. drops source parents that no longer have anything below them, and adds the parents a
 *    destination path needs, so that the tree can be created top-down on any server;
 * 4. spells names for the destination and finds existing folders (same name; INBOX
 *    case-insensitively) and collisions.
 */
export function planFolders(source: readonly FolderInfo[], dest: readonly FolderInfo[], destNs: NameSpace, options: FolderPlanOptions = {}): FolderPlan {
  const rules = options.rules ?? DEFAULT_RULES;
  const excluded: ExcludedFolder[] = [];
  const automap = rules.automap && rules.destPrefix.length === 0;
  const personal = (list: readonly FolderInfo[]) => list.filter((f) => !f.outside);
  const sourceRoles = automap ? specialFolders(personal(source)) : new Map<SpecialRole, string[]>();
  const destRoles = automap ? specialFolders(personal(dest)) : new Map<SpecialRole, string[]>();

  type Draft = { f: FolderInfo; destPath: string[]; mappedBy: MappedBy | undefined };
  const drafts: Draft[] = [];
  for (const f of source) {
    const display = displayPath(f.path);
    if (f.outside && !rules.includeOtherNamespaces) {
      // Other users' and shared folders are not this mailbox's to move, unless asked.
      excluded.push({ sourceName: f.name, reason: 'other-namespace' });
      continue;
    }
    if (!rules.includeGmailViews && viewRoleOf(f)) {
      excluded.push({ sourceName: f.name, reason: 'gmail-view' });
      continue;
    }
    if (rules.include.length > 0 && !rules.include.some((r) => r.test(display))) {
      excluded.push({ sourceName: f.name, reason: 'not-included' });
      continue;
    }
    if (rules.exclude.some((r) => r.test(display))) {
      excluded.push({ sourceName: f.name, reason: 'excluded' });
      continue;
    }
    const { path, mappedBy } = mapPath(f.path, rules, sourceRoles, destRoles);
    drafts.push({ f, destPath: path, mappedBy });
  }

  // A source parent with nothing left below it (e.g. "[Gmail]" once its folders are mapped or
  // left out) would only add an empty folder at the destination.
  const kept = drafts.filter((d) => !d.f.noSelect || drafts.some((o) => o !== d && o.destPath.length > d.destPath.length && startsWithPath(o.destPath, d.destPath)));

  const byDestKey = new Map<string, Draft>();
  for (const d of kept) if (!byDestKey.has(pathKey(d.destPath))) byDestKey.set(pathKey(d.destPath), d);
  const parents: string[][] = [];
  for (const d of kept) {
    for (let depth = 1; depth < d.destPath.length; depth++) {
      const parent = d.destPath.slice(0, depth);
      if (isInbox(parent) && !isInbox(d.destPath.slice(0, 1))) continue;
      const key = pathKey(parent);
      if (!byDestKey.has(key) && !parents.some((p) => pathKey(p) === key)) parents.push(parent);
    }
  }

  const destByName = new Map<string, FolderInfo>();
  for (const f of personal(dest)) destByName.set(normaliseName(f.name), f);
  const entry = (sourcePath: string[], sourceName: string, destPath: string[], noSelect: boolean, subscribed: boolean, mappedBy: MappedBy | undefined, implicit = false): FolderPlanEntry => {
    const { name, substituted } = toServerName(destPath, destNs, options.separatorSubstitute);
    const existing = destByName.get(normaliseName(name));
    return {
      sourcePath,
      sourceName,
      destPath,
      destName: name,
      create: !existing,
      subscribe: subscribed && !existing?.subscribed,
      noSelect,
      renamed: substituted,
      mappedBy,
      implicit,
    };
  };
  const entries = [
    // Another namespace's folders become this mailbox's own: subscribed, so that clients show them.
    // A \Noselect name is never subscribed: in an LSUB answer it means "not subscribed, but
    // something below is" (RFC 3501 §6.3.9), which imapflow reports as subscribed.
    ...kept.map((d) => entry([...d.f.path], d.f.name, d.destPath, d.f.noSelect, !d.f.noSelect && (d.f.subscribed || !!d.f.outside), d.mappedBy)),
    ...parents.map((p) => entry(p, '', p, true, false, undefined, true)),
  ].sort(compareEntries);

  const byDest = new Map<string, string[]>();
  for (const e of entries) {
    if (e.implicit) continue; // parents we add hold nothing and cannot collide with content
    const key = normaliseName(e.destName);
    byDest.set(key, [...(byDest.get(key) ?? []), e.sourceName]);
  }
  const collisions = [...byDest.entries()].filter(([, names]) => names.length > 1).map(([destName, sourceNames]) => ({ destName, sourceNames }));
  return { entries, excluded, collisions };
}

/** Applies automap, --map, --rename and --dest-prefix to one source path. */
function mapPath(path: readonly string[], rules: FolderRules, sourceRoles: Map<SpecialRole, string[]>, destRoles: Map<SpecialRole, string[]>): { path: string[]; mappedBy: MappedBy | undefined } {
  let out = isInbox(path) ? ['INBOX'] : [...path];
  let mappedBy: MappedBy | undefined;
  for (const [role, from] of sourceRoles) {
    const to = destRoles.get(role) ?? defaultRolePath(role, from);
    if (startsWithPath(out, from) && pathKey(from) !== pathKey(to)) {
      out = [...to, ...out.slice(from.length)];
      mappedBy = 'special-use';
      break;
    }
  }
  const rule = rules.map.find((m) => startsWithPath(out, m.from));
  if (rule) {
    out = [...rule.to, ...out.slice(rule.from.length)];
    mappedBy = 'map';
  }
  if (rules.rename.length > 0) {
    let text = displayPath(out);
    for (const r of rules.rename) text = text.replace(r.pattern, r.replacement);
    const renamed = text.split('/').filter((s) => s !== '');
    if (renamed.length > 0 && displayPath(renamed) !== displayPath(out)) {
      out = renamed;
      mappedBy = 'rename';
    }
  }
  if (rules.destPrefix.length > 0) {
    out = [...rules.destPrefix, ...out];
    mappedBy = 'dest-prefix';
  }
  return { path: out, mappedBy };
}

/**
 * Where a special folder goes when the destination has none for its role yet: the plain
 * English top-level name ("Sent Items" becomes "Sent"), so that clients that look for the usual
 * names find it, and Gmail's "[Gmail]/Sent Mail" leaves the "[Gmail]" parent behind.
 */
function defaultRolePath(role: SpecialRole, from: readonly string[]): string[] {
  const name = { '\\Sent': 'Sent', '\\Drafts': 'Drafts', '\\Trash': 'Trash', '\\Junk': 'Junk', '\\Archive': 'Archive' }[role];
  return from.length <= 2 ? [name] : [...from];
}

/** INBOX is case-insensitive (RFC 3501 §5.1); every other name is compared exactly. */
function normaliseName(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/** INBOX first, then parents before children, then by name (stable, readable plans). */
function compareEntries(a: FolderPlanEntry, b: FolderPlanEntry): number {
  const ai = isInbox(a.destPath) ? 0 : 1;
  const bi = isInbox(b.destPath) ? 0 : 1;
  if (ai !== bi) return ai - bi;
  const n = Math.min(a.destPath.length, b.destPath.length);
  for (let i = 0; i < n; i++) {
    const c = compareText(a.destPath[i]!, b.destPath[i]!);
    if (c !== 0) return c;
  }
  return a.destPath.length - b.destPath.length || compareText(a.sourceName, b.sourceName);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
