/**
 * INTERNALDATE as a listing keeps it: milliseconds since the epoch (see MessageMeta.internalDate
 * in stores/mail-store.ts for why a number and not a Date), and the conversions at the edges.
 */

/** A listed time from whatever a store reads (a Date, an IMAP date string, a number), or undefined when it is not a valid time. */
export function timeOf(value: unknown): number | undefined {
  const t = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : NaN;
  return Number.isFinite(t) ? t : undefined;
}

/** The Date an APPEND or a file's mtime needs, from a listed time. */
export function dateOf(time: number | undefined): Date | undefined {
  return time === undefined ? undefined : new Date(time);
}
