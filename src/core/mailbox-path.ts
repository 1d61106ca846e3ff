/**
 * Mailbox paths inside mailmover are arrays of segments (`['Projects', '2024', 'Q1']`).
 * They are turned into a server's name (namespace prefix + segments joined by the server's
 * hierarchy separator) only at the IMAP edge, and parsed back there too. This keeps the
 * separator and prefix of one server from leaking into the other.
 */

/** How one server spells mailbox names in its personal namespace (RFC 2342). */
export interface NameSpace {
  /** Personal namespace prefix, e.g. '' (Dovecot default) or 'INBOX.' (Courier, Cyrus). */
  prefix: string;
  /** Hierarchy separator, e.g. '/' or '.'; '' for a flat server (NIL delimiter). */
  delimiter: string;
}

/** The canonical path of the inbox. */
export const INBOX: readonly string[] = Object.freeze(['INBOX']);

/** True when a path is the inbox (INBOX is case-insensitive, RFC 3501 §5.1). */
export function isInbox(path: readonly string[]): boolean {
  return path.length === 1 && path[0]!.toUpperCase() === 'INBOX';
}

/**
 * Splits a server name into segments, removing the personal namespace prefix.
 * Returns `undefined` for names outside the personal namespace (other users', shared).
 */
export function parseServerName(name: string, delimiter: string, ns: NameSpace): string[] | undefined {
  if (name.toUpperCase() === 'INBOX') return ['INBOX'];
  let rest = name;
  if (ns.prefix) {
    if (!name.startsWith(ns.prefix)) {
      // Case-insensitive "INBOX." prefix: 'inbox.Sub' on servers that fold case.
      if (name.toUpperCase().startsWith(ns.prefix.toUpperCase()) && ns.prefix.toUpperCase().startsWith('INBOX')) {
        rest = name.slice(ns.prefix.length);
      } else {
        return undefined;
      }
    } else {
      rest = name.slice(ns.prefix.length);
    }
  }
  if (rest === '') return undefined; // the namespace root itself is not a mailbox
  return delimiter ? rest.split(delimiter) : [rest];
}

/** Why a destination name differs from the source name (shown by `plan`, kept in the report). */
/**
 * Why a destination name differs from the source's. 'mail-or-children': the folder has children
 * and the destination cannot hold messages in a folder that has any (`StoreCaps.mailOrChildren`),
 * so its own messages go to a child named like it (see folder-plan.ts).
 */
export type RenameReason = 'separator' | 'control-character' | 'dot-name' | 'flat-server' | 'reserved-name' | 'mail-or-children';

/** The result of spelling a path for one server. */
export interface ServerName {
  name: string;
  /** Segments that contained the server's separator and were changed (reported to the user). */
  substituted: boolean;
  /** Why segments were changed, in a fixed order, each reason once; empty when nothing changed. */
  reasons: RenameReason[];
}

const REASON_ORDER: readonly RenameReason[] = ['separator', 'control-character', 'dot-name', 'flat-server', 'reserved-name', 'mail-or-children'];

/** Reasons in a stable order without repeats (reports and tests compare them). */
export function orderReasons(reasons: Iterable<RenameReason>): RenameReason[] {
  const set = new Set(reasons);
  return REASON_ORDER.filter((r) => set.has(r));
}

/**
 * Spells a path for a server: prefix + segments joined by its separator.
 *
 * A segment is changed, and the change flagged so that it can be reported, when the server could
 * not hold it as one level: it contains the separator (it would silently become two levels), a
 * control character (never allowed in a name we send), or it is empty, "." or ".." (refused by
 * servers that store folders as directories, and a path-traversal hazard for local stores).
 */
export function toServerName(path: readonly string[], ns: NameSpace, substitute = '_'): ServerName {
  if (isInbox(path)) return { name: 'INBOX', substituted: false, reasons: [] };
  // On a server whose personal namespace is "INBOX." (Courier, Cyrus), every folder already
  // lives below INBOX: a child of INBOX from the other server lands at that same level.
  if (path.length > 1 && path[0]!.toUpperCase() === 'INBOX' && ns.delimiter && ns.prefix.toUpperCase() === `INBOX${ns.delimiter}`) {
    path = path.slice(1);
  }
  const reasons = new Set<RenameReason>();
  const segments = path.map((segment) => safeSegmentWhy(segment, ns.delimiter, substitute, reasons));
  if (!ns.delimiter && segments.length > 1) {
    // A flat server cannot nest: keep the levels visible in one name.
    reasons.add('flat-server');
    return { name: ns.prefix + segments.join(substitute), substituted: true, reasons: orderReasons(reasons) };
  }
  return { name: ns.prefix + segments.join(ns.delimiter), substituted: reasons.size > 0, reasons: orderReasons(reasons) };
}

/** One level of a name as a server can hold it (see {@link toServerName}). */
export function safeSegment(segment: string, delimiter: string, substitute = '_'): string {
  return safeSegmentWhy(segment, delimiter, substitute, new Set());
}

/** {@link safeSegment}, adding to `reasons` why the segment changed. */
export function safeSegmentWhy(segment: string, delimiter: string, substitute: string, reasons: Set<RenameReason>): string {
  // eslint-disable-next-line no-control-regex
  let out = segment.replace(/[\u0000-\u001f\u007f]/g, substitute);
  if (out !== segment) reasons.add('control-character');
  if (delimiter && out.includes(delimiter)) {
    out = out.split(delimiter).join(substitute);
    reasons.add('separator');
  }
  if (out === '' || out === '.' || out === '..') {
    out = substitute + out;
    reasons.add('dot-name');
  }
  return out;
}

/**
 * A test for the destination segments a store must not be given (see `StoreCaps.reservedNames`):
 * patterns compared case-insensitively with the whole segment, `*` standing for any run of
 * characters. Undefined or empty: nothing is reserved.
 */
export function reservedMatcher(patterns: readonly string[] | undefined): (segment: string) => boolean {
  if (!patterns || patterns.length === 0) return () => false;
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const p of patterns) {
    if (!p.includes('*')) exact.add(p.toLowerCase());
    else globs.push(new RegExp(`^${p.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'isu'));
  }
  // Reserved names are short: a long segment is compared by its length first, not lower-cased whole.
  const longest = Math.max(...patterns.map((p) => (p.includes('*') ? Infinity : p.length)));
  return (segment) => (segment.length <= longest && exact.has(segment.toLowerCase())) || globs.some((g) => g.test(segment));
}

/** A stable string form of a path, for maps and sorting (segments cannot contain NUL). */
export function pathKey(path: readonly string[]): string {
  return isInbox(path) ? 'INBOX' : path.join('\u0000');
}

/** Human form of a path for messages and reports ('/'-joined). */
export function displayPath(path: readonly string[]): string {
  return path.join('/');
}
