/**
 * Limits on the size of one folder name the planner accepts.
 *
 * A folder name comes from the source server and is not bounded by the protocol: a hostile or
 * broken server can list a name of hundreds of megabytes, or one with tens of thousands of levels
 * (each level becomes a folder to create, and the names of those parents together grow with the
 * square of the depth). Real servers refuse far smaller names when they are created (Dovecot
 * stops at 4 KiB, its PATH_MAX; Cyrus and Exchange at a few hundred bytes), so a name over these limits
 * cannot be a folder any destination would take: it is reported (MM-FOLDER-NAME-TOO-LONG, folder
 * scope) and left out before anything else looks at it, and every other folder is planned as usual.
 */
import { Buffer } from 'node:buffer';
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** Longest folder name accepted, in UTF-8 bytes: 64 KiB, sixteen times what Dovecot itself creates. */
export const MAX_NAME_BYTES = 64 * 1024;

/** Most levels a folder path may have (the deepest trees seen in real mailboxes have a few dozen). */
export const MAX_NAME_DEPTH = 256;

/** Characters of a refused name kept for messages and reports. */
const SHOWN = 120;

/** A name cut down for a message or a report, with its real length. */
export function shortName(name: string): string {
  return name.length <= SHOWN ? name : `${name.slice(0, SHOWN)}… (${name.length} characters)`;
}

/**
 * Why a folder's name is refused, or undefined when it is within the limits. Costs O(1) for a
 * name that is far too long (the length in UTF-16 units is a lower bound of its UTF-8 bytes).
 */
export function nameLimitError(name: string, path: readonly string[]): MigrateError | undefined {
  let segments = 0;
  for (const s of path) segments += s.length;
  const chars = Math.max(name.length, segments);
  const bytes = chars > MAX_NAME_BYTES ? chars : Math.max(Buffer.byteLength(name, 'utf8'), chars);
  if (bytes > MAX_NAME_BYTES) {
    return new MigrateError(ERROR_CODES.FOLDER_NAME_TOO_LONG, `The source folder "${shortName(name)}" has a name of more than ${MAX_NAME_BYTES} bytes; no IMAP server would hold it, so it was left out.`, { scope: 'folder' });
  }
  if (path.length > MAX_NAME_DEPTH) {
    return new MigrateError(ERROR_CODES.FOLDER_NAME_TOO_LONG, `The source folder "${shortName(name)}" is ${path.length} levels deep (more than ${MAX_NAME_DEPTH}); it was left out.`, { scope: 'folder' });
  }
  return undefined;
}
