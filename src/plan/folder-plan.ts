/**
 * Folder planning: a pure function from the two folder trees and the rules to the list of
 * destination folders, what to create, what to subscribe, what is left out and what collides.
 * No I/O: it is tested with tables and random trees.
 */
import { displayPath, isInbox, orderReasons, pathKey, reservedMatcher, safeSegment, toServerName, type NameSpace, type RenameReason } from '../core/mailbox-path.js';
import type { MigrateError } from '../core/errors.js';
import type { FolderInfo } from '../stores/mail-store.js';
import { DEFAULT_RULES, startsWithPath, type FolderRules } from './folder-rules.js';
import { specialFolders, viewRoleOf, type SpecialRole } from './special-use.js';
import { nameLimitError, shortName } from './name-limits.js';
import { PathIndex } from './path-index.js';

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
  /** Why the name changed (separator, control character, dot name, flat server, reserved name); empty when it did not. */
  renameReasons: RenameReason[];
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

/** A source folder whose name is over the limits (MM-FOLDER-NAME-TOO-LONG): reported as a failed folder, not planned. */
export interface RefusedFolder {
  /** The name, cut down to a readable length. */
  sourceName: string;
  error: MigrateError;
}

/** The folder plan. Entries are ordered INBOX first, then parents before children. */
export interface FolderPlan {
  entries: FolderPlanEntry[];
  excluded: ExcludedFolder[];
  collisions: FolderCollision[];
  refused: RefusedFolder[];
  /** --include patterns that matched no folder (their source text), so that a typo is not silent. */
  unmatchedIncludes: string[];
}

/** Options for {@link planFolders}. */
export interface FolderPlanOptions {
  /** Substitute for characters a destination name cannot hold (default '_'). */
  separatorSubstitute?: string;
  rules?: FolderRules;
  /** Destination levels the store must not be given (`StoreCaps.reservedNames`): renamed with the substitute in front. */
  reservedNames?: readonly string[];
  /** The destination cannot hold messages in a folder that has children (`StoreCaps.mailOrChildren`). */
  mailOrChildren?: boolean;
}

/**
 * Plans the destination tree:
 * 1. refuses names over the size limits (see name-limits.ts), leaves out Gmail's views and what
 *    --include/--exclude say;
 * 2. maps each folder: special folders onto the destination's own (unless --no-automap or
 *    --dest-prefix), then --map, then --rename, then --dest-prefix;
 * 3. renames levels the destination store reserves for itself (`reservedNames`);
 * 4. drops source parents that no longer have anything below them; on a destination where a
 *    folder holds messages or children, never both (`mailOrChildren`), moves the messages of a
 *    folder with children into a child named like it (see {@link mailFolderPath}); adds the
 *    parents a destination path needs, so that the tree can be created top-down on any server;
 * 5. spells names for the destination and finds existing folders (same name; INBOX
 *    case-insensitively) and collisions.
 *
 * Every step is a pass over the folders with map and set lookups (paths are numbered by
 * PathIndex), then one sort: a million folders plan in seconds.
 */
export function planFolders(source: readonly FolderInfo[], dest: readonly FolderInfo[], destNs: NameSpace, options: FolderPlanOptions = {}): FolderPlan {
  const rules = options.rules ?? DEFAULT_RULES;
  const substitute = options.separatorSubstitute ?? '_';
  const excluded: ExcludedFolder[] = [];
  const matchedIncludes = new Set<RegExp>();
  const refused: RefusedFolder[] = [];
  // A name over the limits is refused before anything else reads it (a 200 MB name would
  // otherwise be lower-cased, matched and spelled several times).
  const sane: FolderInfo[] = [];
  for (const f of source) {
    const error = nameLimitError(f.name, f.path);
    if (error) refused.push({ sourceName: shortName(f.name), error });
    else sane.push(f);
  }
  const saneDest = dest.filter((f) => !nameLimitError(f.name, f.path));
  const automap = rules.automap && rules.destPrefix.length === 0;
  const personal = (list: readonly FolderInfo[]) => list.filter((f) => !f.outside);
  const sourceRoles = automap ? specialFolders(personal(sane)) : new Map<SpecialRole, string[]>();
  const destRoles = automap ? specialFolders(personal(saneDest)) : new Map<SpecialRole, string[]>();
  const reserved = reservedMatcher(options.reservedNames);

  type Draft = { f: FolderInfo; destPath: string[]; mappedBy: MappedBy | undefined; reserved: boolean; ids: number[]; mixed?: boolean };
  const drafts: Draft[] = [];
  const index = new PathIndex();
  for (const f of sane) {
    if (f.outside && !rules.includeOtherNamespaces) {
      // Other users' and shared folders are not this mailbox's to move, unless asked.
      excluded.push({ sourceName: f.name, reason: 'other-namespace' });
      continue;
    }
    if (!rules.includeGmailViews && viewRoleOf(f)) {
      excluded.push({ sourceName: f.name, reason: 'gmail-view' });
      continue;
    }
    // A rule matches the path as mailmover writes it ("INBOX/Archive") or the server's own name
    // ("INBOX.Archive"): administrators copy names from the server they know.
    const display = rules.include.length > 0 || rules.exclude.length > 0 ? displayPath(f.path) : '';
    const matches = (r: RegExp) => r.test(display) || r.test(f.name);
    if (rules.include.length > 0) {
      const hit = rules.include.filter(matches);
      for (const r of hit) matchedIncludes.add(r);
      if (hit.length === 0) {
        excluded.push({ sourceName: f.name, reason: 'not-included' });
        continue;
      }
    }
    if (rules.exclude.some(matches)) {
      excluded.push({ sourceName: f.name, reason: 'excluded' });
      continue;
    }
    const mapped = mapPath(f.path, rules, sourceRoles, destRoles);
    const safe = avoidReserved(mapped.path, reserved, destNs.delimiter, substitute);
    drafts.push({ f, destPath: safe.path, mappedBy: mapped.mappedBy, reserved: safe.changed, ids: index.prefixes(safe.path) });
  }

  // A source parent with nothing left below it (e.g. "[Gmail]" once its folders are mapped or
  // left out) would only add an empty folder at the destination.
  const hasBelow = new Set<number>();
  for (const d of drafts) for (let depth = 0; depth < d.ids.length - 1; depth++) hasBelow.add(d.ids[depth]!);
  const kept = drafts.filter((d) => !d.f.noSelect || hasBelow.has(d.ids[d.ids.length - 1]!));
  if (options.mailOrChildren) {
    // Every path the plan uses, so that the messages' new folder is a name no other folder has.
    const taken = new Set(kept.map((d) => lastId(d.ids)));
    const keptBelow = new Set<number>();
    for (const d of kept) for (let depth = 0; depth < d.ids.length - 1; depth++) keptBelow.add(d.ids[depth]!);
    for (const d of kept) {
      if (d.f.noSelect || isInbox(d.destPath) || !keptBelow.has(lastId(d.ids))) continue;
      d.destPath = mailFolderPath(d.destPath, (p) => taken.has(lastId(index.prefixes(p))), substitute);
      d.ids = index.prefixes(d.destPath);
      d.mixed = true;
      taken.add(lastId(d.ids));
    }
  }

  const inPlan = new Set<number>();
  for (const d of kept) inPlan.add(d.ids[d.ids.length - 1]!);
  const parents: string[][] = [];
  for (const d of kept) {
    for (let depth = 1; depth < d.destPath.length; depth++) {
      const id = d.ids[depth - 1]!;
      if (inPlan.has(id)) continue;
      inPlan.add(id);
      parents.push(d.destPath.slice(0, depth));
    }
  }

  const destByName = new Map<string, FolderInfo>();
  for (const f of personal(saneDest)) destByName.set(normaliseName(f.name), f);
  const entry = (sourcePath: string[], sourceName: string, destPath: string[], noSelect: boolean, subscribed: boolean, mappedBy: MappedBy | undefined, implicit: boolean, extra: RenameReason[]): FolderPlanEntry => {
    const { name, substituted, reasons } = toServerName(destPath, destNs, substitute);
    const existing = destByName.get(normaliseName(name));
    const renameReasons = extra.length > 0 ? orderReasons([...reasons, ...extra]) : reasons;
    return {
      sourcePath,
      sourceName,
      destPath,
      destName: name,
      create: !existing,
      subscribe: subscribed && !existing?.subscribed,
      noSelect,
      renamed: substituted || extra.length > 0,
      renameReasons,
      mappedBy,
      implicit,
    };
  };
  const unsorted = [
    // Another namespace's folders become this mailbox's own: subscribed, so that clients show them.
    // A \Noselect name is never subscribed: in an LSUB answer it means "not subscribed, but
    // something below is" (RFC 3501 §6.3.9), which imapflow reports as subscribed.
    ...kept.map((d) => entry([...d.f.path], d.f.name, d.destPath, d.f.noSelect, !d.f.noSelect && (d.f.subscribed || !!d.f.outside), d.mappedBy, false, reasonsOf(d))),
    ...parents.map((p) => entry(p, '', p, true, false, undefined, true, [])),
  ];
  const entries = sortEntries(unsorted);

  const byDest = new Map<string, string[]>();
  for (const e of entries) {
    if (e.implicit) continue; // parents we add hold nothing and cannot collide with content
    const key = normaliseName(e.destName);
    const names = byDest.get(key);
    if (names) names.push(e.sourceName);
    else byDest.set(key, [e.sourceName]);
  }
  const collisions: FolderCollision[] = [];
  for (const [destName, sourceNames] of byDest) if (sourceNames.length > 1) collisions.push({ destName, sourceNames });
  return { entries, excluded, collisions, refused, unmatchedIncludes: rules.include.filter((r) => !matchedIncludes.has(r)).map((r) => r.source) };
}

function lastId(ids: readonly number[]): number {
  return ids[ids.length - 1]!;
}

function reasonsOf(d: { reserved: boolean; mixed?: boolean }): RenameReason[] {
  const out: RenameReason[] = [];
  if (d.reserved) out.push('reserved-name');
  if (d.mixed) out.push('mail-or-children');
  return out;
}

/**
 * Where the messages of a folder with children go on a destination that cannot hold both
 * (`StoreCaps.mailOrChildren`): a child named like the folder, "Projects" into
 * "Projects/Projects". A child rather than a sibling such as "Projects (messages)": the mail
 * stays under the name the user looks for, next to the folders that were beside it, and the
 * top level gains no new name. When that child is a folder of its own already, the substitute
 * goes in front ("Projects/_Projects", as for a reserved name) until the name is free.
 * Deterministic, so a rerun and verify find the same folder. The plan does not know message
 * counts: every selectable folder with children is treated so (an empty one gives an empty child).
 */
export function mailFolderPath(path: readonly string[], taken: (path: string[]) => boolean, substitute: string): string[] {
  let leaf = path[path.length - 1]!;
  for (let n = 0; n < 64 && taken([...path, leaf]); n++) leaf = substitute + leaf;
  return [...path, leaf];
}

/**
 * Renames the levels of a destination path that the store reserves (its own control files and
 * directories, see `StoreCaps.reservedNames`): the substitute is put in front ("subscriptions"
 * becomes "_subscriptions"), because a suffix would not help against a reserved prefix such as
 * "dovecot*". Deterministic, so reruns find the same folder; the rename is checked for collisions
 * with every other destination name like any other. INBOX is never renamed.
 */
function avoidReserved(path: string[], reserved: (segment: string) => boolean, delimiter: string, substitute: string): { path: string[]; changed: boolean } {
  if (isInbox(path)) return { path, changed: false };
  let out: string[] | undefined;
  for (let i = 0; i < path.length; i++) {
    if (i === 0 && path[0]!.toUpperCase() === 'INBOX') continue;
    // The level as it will be spelled: "dovecot\u0001" becomes "dovecot_", which is reserved too.
    let level = safeSegment(path[i]!, delimiter, substitute);
    if (!reserved(level)) continue;
    // A store that reserved every name would loop: a few substitutes are enough for any sane list.
    for (let n = 0; n < 8 && reserved(level); n++) level = substitute + level;
    out ??= [...path];
    out[i] = level;
  }
  return out ? { path: out, changed: true } : { path, changed: false };
}

/**
 * INBOX first, then parents before children, then by name, then by source name (stable,
 * readable plans). Each entry gets one sort key, its path joined with NUL (the smallest code
 * unit, which no segment holds): comparing the keys as strings orders level by level, a parent
 * before its children; so a million entries sort without comparing segment arrays.
 */
function sortEntries(entries: FolderPlanEntry[]): FolderPlanEntry[] {
  const keyed = entries.map((e) => ({ e, key: (isInbox(e.destPath) ? '0' : '1') + e.destPath.join('\u0000') }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : compareText(a.e.sourceName, b.e.sourceName)));
  return keyed.map((k) => k.e);
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
export function normaliseName(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * For each entry (same order as `entries`), whether a folder to be created lies below it: one
 * pass over the plan, for callers that create the tree top-down and skip placeholders a child's
 * CREATE makes anyway (a scan of every entry per entry would be quadratic in the tree).
 */
export function createBelow(entries: readonly FolderPlanEntry[]): boolean[] {
  const index = new PathIndex();
  const ids = entries.map((e) => index.prefixes(e.destPath));
  const below = new Set<number>();
  entries.forEach((e, i) => {
    if (e.create) for (let depth = 0; depth < ids[i]!.length - 1; depth++) below.add(ids[i]![depth]!);
  });
  return ids.map((p) => p.length > 0 && below.has(p[p.length - 1]!));
}
