/**
 * Message flags as they are copied.
 *
 * \Recent is session state, not a stored flag: a client cannot set it (RFC 3501 §2.3.2) and it
 * must never be copied. The five other system flags are kept, spelled canonically. Keywords are
 * kept only when they are what RFC 3501 §9 calls a flag keyword: an atom (printable US-ASCII
 * without atom-specials, no `]`), of a length servers accept. Anything else a source lists
 * (`\NonExistentSystemFlag`, `foo]bar`, `\*`, a keyword with a space or a non-ASCII letter) is
 * dropped and reported, never sent: a destination answers such an APPEND line with BAD, and a
 * message literal that was already on its way would then be read as commands.
 */

const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];
const SYSTEM_BY_LOWER = new Map(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/**
 * Longest keyword sent. Dovecot refuses keywords over 50 bytes (mail_max_keyword_length), with a
 * BAD on the command line; other servers allow longer ones, but no client creates them.
 */
export const MAX_KEYWORD_LENGTH = 50;

/** RFC 3501 §9: atom-char is any CHAR except atom-specials; flag-keyword is an atom, and `]` is excluded too (resp-specials). */
const ATOM = /^[\x21\x23\x24\x26\x27\x2B-\x5B\x5E-\x7A\x7C-\x7E]+$/;

/** Flags to store at the destination for a message whose source flags are `flags` (invalid ones left out). */
export function flagsToCopy(flags: Iterable<string>): string[] {
  return splitFlags(flags).keep;
}

/** The flags of `flags` that cannot be sent (see the module comment), as listed. */
export function invalidFlags(flags: Iterable<string>): string[] {
  return splitFlags(flags).dropped;
}

/** True when some flag of `flags` is a keyword (not a system flag): a server may refuse a keyword it does not allow. */
export function hasKeyword(flags: Iterable<string>): boolean {
  for (const f of flags) if (!f.startsWith('\\')) return true;
  return false;
}

function splitFlags(flags: Iterable<string>): { keep: string[]; dropped: string[] } {
  const keep = new Set<string>();
  const dropped: string[] = [];
  for (const flag of flags) {
    if (typeof flag !== 'string' || flag === '' || flag.toLowerCase() === '\\recent') continue;
    if (flag.startsWith('\\')) {
      const system = SYSTEM_BY_LOWER.get(flag.toLowerCase());
      if (system) keep.add(system);
      else dropped.push(flag);
    } else if (flag.length <= MAX_KEYWORD_LENGTH && ATOM.test(flag)) keep.add(flag);
    else dropped.push(flag);
  }
  return { keep: [...keep].sort(), dropped };
}
