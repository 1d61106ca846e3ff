/**
 * Message flags as they are copied.
 *
 * \Recent is session state, not a stored flag: a client cannot set it (RFC 3501 §2.3.2) and it
 * must never be copied. Everything else (system flags and keywords) is kept as the source says.
 */

/** Flags to store at the destination for a message whose source flags are `flags`. */
export function flagsToCopy(flags: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const flag of flags) {
    if (!flag || flag.toLowerCase() === '\\recent') continue;
    out.add(canonicalSystemFlag(flag));
  }
  return [...out].sort();
}

const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];

/** System flags are case-insensitive; servers answer `\seen` or `\Seen`. Keywords are kept as they are. */
function canonicalSystemFlag(flag: string): string {
  if (!flag.startsWith('\\')) return flag;
  return SYSTEM_FLAGS.find((f) => f.toLowerCase() === flag.toLowerCase()) ?? flag;
}
