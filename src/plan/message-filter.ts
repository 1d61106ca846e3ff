/**
 * Pure: which messages of a listing a run is about (--since/--before/--max-age/--min-age by
 * INTERNALDATE, --min-size, --just-folders, and --search: the UIDs the source's own UID SEARCH
 * answered). Applied to the source listing after it was taken, so the listing itself stays whole
 * (a listing is trusted only when whole). A filtered pass is never recorded as a complete pass of
 * the folder in the ledger: the next unfiltered run plans the folder in full.
 */

/** The bounds of a filter; every field optional, all of them must hold. */
export interface MessageFilter {
  /** INTERNALDATE on or after this instant. */
  since?: Date;
  /** INTERNALDATE strictly before this instant. */
  before?: Date;
  /** At least this many bytes. */
  minSize?: number;
  /** No message at all (--just-folders: the folder tree only). */
  none?: boolean;
  /**
   * IMAP search keys (checked by plan/search-keys.ts): only the messages the store's own
   * `UID SEARCH` with these keys answers. The caller runs the search and passes its UIDs.
   */
  search?: string;
}

/** What the command line gives (days are counted back from `now`). */
export interface FilterFlags {
  since?: Date;
  before?: Date;
  maxAgeDays?: number;
  minAgeDays?: number;
  minSize?: number;
  justFolders?: boolean;
  search?: string;
}

const DAY_MS = 86_400_000;

/** The filter the flags describe, or undefined when they describe none (copy everything). */
export function messageFilter(flags: FilterFlags, now = new Date()): MessageFilter | undefined {
  const f: MessageFilter = {};
  // Two lower bounds (or two upper ones): the tighter wins, so both hold.
  const later = (a: Date | undefined, b: Date | undefined) => (!a ? b : !b ? a : a > b ? a : b);
  const earlier = (a: Date | undefined, b: Date | undefined) => (!a ? b : !b ? a : a < b ? a : b);
  const since = later(flags.since, flags.maxAgeDays !== undefined ? new Date(now.getTime() - flags.maxAgeDays * DAY_MS) : undefined);
  const before = earlier(flags.before, flags.minAgeDays !== undefined ? new Date(now.getTime() - flags.minAgeDays * DAY_MS) : undefined);
  if (since) f.since = since;
  if (before) f.before = before;
  if (flags.minSize !== undefined) f.minSize = flags.minSize;
  if (flags.justFolders) f.none = true;
  if (flags.search !== undefined) f.search = flags.search;
  return Object.keys(f).length > 0 ? f : undefined;
}

/**
 * Whether a message is in. A message without an INTERNALDATE is out of any date bound: it cannot
 * be shown to be inside it; with search keys, a message is in only when `searched` (the UIDs the
 * search answered) holds its UID.
 */
export function matches(filter: MessageFilter, m: { uid?: number; size: number; internalDate: number | undefined }, searched?: ReadonlySet<number>): boolean {
  if (filter.none) return false;
  if (filter.search !== undefined && !(searched && m.uid !== undefined && searched.has(m.uid))) return false;
  if (filter.minSize !== undefined && m.size < filter.minSize) return false;
  if (filter.since && !(m.internalDate !== undefined && m.internalDate >= filter.since.getTime())) return false;
  if (filter.before && !(m.internalDate !== undefined && m.internalDate < filter.before.getTime())) return false;
  return true;
}

/** A listing cut down to the messages the filter lets in (all of them without a filter); `searched` as for {@link matches}. */
export function applyFilter<T extends { uid?: number; size: number; internalDate: number | undefined }>(filter: MessageFilter | undefined, messages: T[], searched?: ReadonlySet<number>): T[] {
  return filter ? messages.filter((m) => matches(filter, m, searched)) : messages;
}

/** The filter in words, for the summary and the log. */
export function describeFilter(filter: MessageFilter): string {
  if (filter.none) return 'folders only, no message';
  const parts: string[] = [];
  if (filter.since) parts.push(`received since ${filter.since.toISOString()}`);
  if (filter.before) parts.push(`received before ${filter.before.toISOString()}`);
  if (filter.minSize !== undefined) parts.push(`at least ${filter.minSize} bytes`);
  if (filter.search !== undefined) parts.push(`matching SEARCH ${filter.search}`);
  return `only messages ${parts.join(', ')}`;
}
