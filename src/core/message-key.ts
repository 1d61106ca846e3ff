/**
 * Content identity of a message, computed from what both servers can report cheaply.
 *
 * A rerun must find what is already at the destination without a state file and without
 * downloading bodies. The identity is a SHA-256 over a few header fields (Message-ID, Date,
 * From, To, Subject), picked out and normalised here from the whole header block
 * (BODY.PEEK[HEADER]). Not from the server's HEADER.FIELDS: servers disagree on what it returns
 * (Courier leaves out `Subject :` with a space before the colon, Dovecot keeps it), while the
 * raw header bytes are the same on both sides because mailmover never changes a byte.
 * The planner combines the key with RFC822.SIZE, flags and date (see plan/message-plan.ts), and
 * counts identical keys as a multiset, so byte-identical duplicates all arrive.
 */
import { createHash } from 'node:crypto';

/** The header fields that make up the identity. */
export const IDENTITY_HEADERS = ['message-id', 'date', 'from', 'to', 'subject'] as const;

/**
 * Normalises a raw header block: unfolds continuation lines, lower-cases field names, trims and
 * collapses white space in values, keeps only the identity fields and sorts them. Servers differ in
 * how they return HEADER.FIELDS (trailing blank line, folding), so only the content counts.
 */
export function normaliseIdentityHeaders(raw: Buffer | string | undefined): string {
  if (!raw) return '';
  const text = Buffer.isBuffer(raw) ? raw.toString('latin1') : raw; // byte-faithful, charset-agnostic
  const unfolded = text.replace(/\r?\n[ \t]+/g, ' ');
  const lines: string[] = [];
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!(IDENTITY_HEADERS as readonly string[]).includes(name)) continue;
    const value = line.slice(colon + 1).replace(/\s+/g, ' ').trim();
    lines.push(`${name}:${value}`);
  }
  return lines.sort().join('\n');
}

/** The identity key of a message: hex SHA-256 of its normalised identity headers. */
export function messageKey(rawHeaders: Buffer | string | undefined): string {
  return createHash('sha256').update(normaliseIdentityHeaders(rawHeaders)).digest('hex');
}

/** Extracts the Message-ID (without angle brackets) from a raw header block, for reports. */
export function extractMessageId(rawHeaders: Buffer | string | undefined): string | undefined {
  const line = normaliseIdentityHeaders(rawHeaders)
    .split('\n')
    .find((l) => l.startsWith('message-id:'));
  if (!line) return undefined;
  const value = line.slice('message-id:'.length).trim();
  const m = /<([^>]*)>/.exec(value);
  const id = (m ? m[1] : value) || undefined;
  // A copy of its own: V8 makes a substring a view that keeps the whole (normalised) header block
  // alive, about 0.3 KB per listed message for as long as the listing lives.
  return id === undefined ? undefined : Buffer.from(id, 'utf8').toString('utf8');
}
