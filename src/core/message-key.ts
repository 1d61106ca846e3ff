/**
 * Content identity of a message, computed from what both servers can report cheaply.
 *
 * A rerun must find what is already at the destination without a state file and without
 * downloading bodies. The identity is a SHA-256 over a few header fields (Message-ID, Date,
 * From, To, Subject, normalised) plus RFC822.SIZE. It works for messages without a Message-ID
 * (the other fields and the exact size still separate them) and it is the same on both sides
 * because mailmover never changes a byte of the message. Identical keys are counted, not
 * merged: the planner treats them as a multiset, so byte-identical duplicates all arrive.
 */
import { createHash } from 'node:crypto';

/** The header fields that make up the identity (fetched with BODY.PEEK[HEADER.FIELDS (...)]). */
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

/** The identity key of a message: hex SHA-256 of its normalised identity headers and its size. */
export function messageKey(rawHeaders: Buffer | string | undefined, size: number): string {
  return createHash('sha256').update(normaliseIdentityHeaders(rawHeaders)).update(`\nsize:${size}`).digest('hex');
}

/** Extracts the Message-ID (without angle brackets) from a raw header block, for reports. */
export function extractMessageId(rawHeaders: Buffer | string | undefined): string | undefined {
  const line = normaliseIdentityHeaders(rawHeaders)
    .split('\n')
    .find((l) => l.startsWith('message-id:'));
  if (!line) return undefined;
  const value = line.slice('message-id:'.length).trim();
  const m = /<([^>]*)>/.exec(value);
  return (m ? m[1] : value) || undefined;
}
