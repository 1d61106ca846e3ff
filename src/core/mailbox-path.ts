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

/** The result of spelling a path for one server. */
export interface ServerName {
  name: string;
  /** Segments that contained the server's separator and were changed (reported to the user). */
  substituted: boolean;
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
  if (isInbox(path)) return { name: 'INBOX', substituted: false };
  // On a server whose personal namespace is "INBOX." (Courier, Cyrus), every folder already
  // lives below INBOX: a child of INBOX from the other server lands at that same level.
  if (path.length > 1 && path[0]!.toUpperCase() === 'INBOX' && ns.delimiter && ns.prefix.toUpperCase() === `INBOX${ns.delimiter}`) {
    path = path.slice(1);
  }
  let substituted = false;
  const segments = path.map((segment) => {
    const safe = safeSegment(segment, ns.delimiter, substitute);
    if (safe !== segment) substituted = true;
    return safe;
  });
  if (!ns.delimiter && segments.length > 1) {
    // A flat server cannot nest: keep the levels visible in one name.
    substituted = true;
    return { name: ns.prefix + segments.join(substitute), substituted };
  }
  return { name: ns.prefix + segments.join(ns.delimiter), substituted };
}

/** One level of a name as a server can hold it (see {@link toServerName}). */
export function safeSegment(segment: string, delimiter: string, substitute = '_'): string {
  // eslint-disable-next-line no-control-regex
  let out = segment.replace(/[\u0000-\u001f\u007f]/g, substitute);
  if (delimiter) out = out.split(delimiter).join(substitute);
  if (out === '' || out === '.' || out === '..') out = substitute + out;
  return out;
}

/** A stable string form of a path, for maps and sorting (segments cannot contain NUL). */
export function pathKey(path: readonly string[]): string {
  return isInbox(path) ? 'INBOX' : path.join('\u0000');
}

/** Human form of a path for messages and reports ('/'-joined). */
export function displayPath(path: readonly string[]): string {
  return path.join('/');
}
