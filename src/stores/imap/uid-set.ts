/**
 * Compact IMAP sequence sets (RFC 3501 §9 `sequence-set`) from lists of UIDs, so that a batch
 * of thousands of UIDs stays a short command line.
 */

/** Packs UIDs into `1:5,7,9:12` form (sorted, de-duplicated). */
export function packUids(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i]!;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) end = sorted[++i]!;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}
