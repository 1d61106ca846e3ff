/**
 * One message of an mbox file: from its bytes on disk to the bytes IMAP would serve, and back.
 *
 * Written as mboxrd: every line matching /^>*From / gets one more `>`, so quoting is reversible.
 * A message with no such line (the most) also gets `Content-Length:`, as Dovecot writes it; a
 * reader that honours it (Dovecot, mutt, mailmover) then finds the message's end without looking
 * for `From ` lines, which also keeps a message without a final line end exact. Reading undoes the
 * quoting only for a message without a valid `Content-Length:` (mboxrd, mboxo): a message with one
 * was written unquoted (Dovecot, mboxcl2), so its `>From ` lines are its own.
 *
 * On disk lines end in LF, as Dovecot writes mbox; served, each bare LF becomes CRLF. Two kinds
 * of message cannot come back byte for byte, since an mbox has no way to mark where they end: one
 * with a line that starts with `From ` and no line end at its very end gets one, and one that is a
 * header block only (no blank line, no body) gets the line end and the blank line.
 */
import { bareLfCount } from '../local/message-file.js';
import type { AppendItem } from '../mail-store.js';
import { splitFields, storeFieldsText, withoutStoreFields, type ImapBase } from './status-headers.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * The message as IMAP serves it, from its bytes on disk after the `From ` line: store fields taken
 * off, quoting undone unless `unquoted` (a valid Content-Length), bare LF made CRLF.
 */
export function serveMessage(disk: Buffer, unquoted: boolean): Buffer {
  const split = headerEnd(disk);
  const block = disk.subarray(0, split);
  let out: Buffer = Buffer.concat([withoutStoreFields(block, splitFields(block)), disk.subarray(split)]);
  if (!unquoted) out = unquote(out);
  return toCrlf(out);
}

/** Where the header block ends (before its blank line), or the whole message when it has none. */
export function headerEnd(bytes: Buffer): number {
  if (bytes[0] === 10) return 0;
  if (bytes[0] === 13 && bytes[1] === 10) return 0;
  const lf = bytes.indexOf('\n\n');
  const crlf = bytes.indexOf('\n\r\n');
  const ends = [lf, crlf].filter((i) => i >= 0);
  return ends.length === 0 ? bytes.length : Math.min(...ends) + 1;
}

/** Removes one `>` from each line matching /^>+From /. */
function unquote(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  if (!/(^|\n)>+From /.test(text)) return bytes;
  return Buffer.from(text.replace(/(^|\n)>(>*From )/g, '$1$2'), 'latin1');
}

/** Adds one `>` to each line matching /^>*From /. */
function quote(text: string): string {
  return text.replace(/(^|\n)(>*From )/g, '$1>$2');
}

function toCrlf(bytes: Buffer): Buffer {
  const n = bareLfCount(bytes);
  if (n === 0) return bytes;
  const out = Buffer.alloc(bytes.length + n);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10 && (i === 0 || bytes[i - 1] !== 13)) out[o++] = 13;
    out[o++] = bytes[i]!;
  }
  return out;
}

/** Where a message stands in its file: its UID, and the file's X-IMAPbase when it is the first. */
export interface Placement {
  uid?: number | undefined;
  base?: ImapBase | undefined;
  /** An existing message's own `From ` line (without line end), kept when a file is rewritten. */
  fromLine?: string | undefined;
}

/**
 * The bytes of one message as appended to an mbox: `From ` line, header block, store fields,
 * blank line, body (quoted when needed), and the blank line that ends every message.
 */
export function serializeMessage(item: AppendItem, at: Placement = {}): Buffer {
  // Work in latin1 so every byte is one character and comes back as itself. Lines end in LF on
  // disk, unless the message has a CR before a CRLF: LF would serve it back without that CR, so
  // it is written as it is (a reader serves a CRLF line as it stands).
  const given = item.body.toString('latin1');
  const text = given.includes('\r\r\n') ? given : given.replace(/\r\n/g, '\n');
  const split = headerEnd(Buffer.from(text, 'latin1'));
  const head = text.slice(0, split);
  const body = text.slice(split).replace(/^\r?\n/, '');
  const needsQuoting = /(^|\n)>*From /.test(text);
  const qHead = needsQuoting ? quote(head) : head;
  const qBody = needsQuoting ? quote(body) : body;
  const fields = storeFieldsText(item.flags, needsQuoting ? undefined : Buffer.byteLength(qBody, 'latin1'), at.uid, at.base);
  const endsWithLf = qBody.endsWith('\n') || (qBody === '' && split === text.length);
  // A body without a final line end is followed by the blank line only: its Content-Length
  // points at "\nFrom " (or the end of the file), as Dovecot expects.
  const tail = endsWithLf || !needsQuoting ? '\n' : '\n\n';
  const line = at.fromLine ?? makeFromLine(senderOf(head), item.internalDate);
  // A message that is a header block only gets its line end before the store fields.
  const headLines = qHead === '' || qHead.endsWith('\n') ? qHead : `${qHead}\n`;
  return Buffer.from(`${line}\n${headLines}${fields}\n${qBody}${tail}`, 'latin1');
}

/** `From SENDER DATE` with the date in asctime form, in UTC (as Dovecot writes and reads it). */
export function makeFromLine(sender: string, date: Date | undefined): string {
  const d = date && !Number.isNaN(date.getTime()) ? date : new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  return `From ${sender} ${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** The address of the message's `From:` field, or MAILER-DAEMON when it has none usable. */
function senderOf(head: string): string {
  const m = /(?:^|\n)from:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)/i.exec(head);
  const value = m?.[1] ?? '';
  const addr = /<([^<>\s]+@[^<>\s]+)>/.exec(value)?.[1] ?? /([^\s<>"(),;:]+@[^\s<>"(),;:]+)/.exec(value)?.[1];
  return addr && /^[\x21-\x7e]+$/.test(addr) ? addr : 'MAILER-DAEMON';
}

/**
 * The date of a `From ` line (asctime, optionally with a zone or the year before it), or
 * undefined. Without a zone the date is UTC, as Dovecot writes it.
 */
export function parseFromLine(line: string): Date | undefined {
  const m = /(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s+(?:([A-Z]{1,5}|[+-]\d{4})\s+)?(\d{4})(?:\s+([+-]\d{4}))?\s*$/.exec(line);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1]!);
  let ms = Date.UTC(Number(m[7]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? 0));
  const zone = /^[+-]\d{4}$/.test(m[6] ?? '') ? m[6] : m[8];
  if (zone) ms -= (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
