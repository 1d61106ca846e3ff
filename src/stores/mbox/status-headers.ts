/**
 * The header fields mbox writers keep their own state in: Dovecot's and mutt's `Status:`,
 * `X-Status:`, `X-Keywords:`, `X-UID:`, `X-IMAPbase:`, `X-IMAP:` and `Content-Length:`, and
 * Thunderbird's `X-Mozilla-Status`, `X-Mozilla-Status2` and `X-Mozilla-Keys`. They are the
 * store's, not the message's: taken off when a message is read (wherever they stand in the header
 * block, as Dovecot does) and turned into flags and keywords, and written at the end of the header
 * block (where Dovecot writes them), so a message's own bytes read back exactly.
 *
 * A message that carries such a field itself (an mbox message forwarded as a file, a server that
 * kept its own `Content-Length:`) loses it, as it does in Dovecot's mbox.
 */

/** Field names (lowercase) that belong to the store. */
const STORE_FIELDS = new Set(['status', 'x-status', 'x-keywords', 'x-uid', 'x-imapbase', 'x-imap', 'content-length', 'x-mozilla-status', 'x-mozilla-status2', 'x-mozilla-keys']);

/** One header field of a header block: its name and byte range (continuation lines included). */
export interface HeaderField {
  name: string;
  start: number;
  end: number;
}

/** What the store fields of one message say. */
export interface StoreFields {
  flags: string[];
  uid: number | undefined;
  /**
   * `X-IMAPbase: UIDVALIDITY LAST-UID KEYWORD...` (the first message of a Dovecot or c-client
   * file): the second number is the last UID given out (UIDNEXT - 1), as Dovecot reads and writes it.
   */
  imapBase: ImapBase | undefined;
  /** Where the `X-IMAPbase:` field stands in the header block. */
  imapBaseField: HeaderField | undefined;
  contentLength: number | undefined;
}

/** The file's UID state, kept in its first message. */
export interface ImapBase {
  uidValidity: number;
  lastUid: number;
  /** The keywords the file names: Dovecot takes an `X-Keywords:` name only when it is listed here. */
  keywords: string[];
}

/** Splits a header block (without its blank line) into fields; a line that is no field continues the one before. */
export function splitFields(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = 0;
  while (pos < block.length) {
    const nl = block.indexOf(10, pos);
    const end = nl < 0 ? block.length : nl + 1;
    const first = block[pos];
    const colon = block.indexOf(58, pos);
    if ((first === 32 || first === 9) && fields.length > 0) fields[fields.length - 1]!.end = end;
    else fields.push({ name: colon > pos && colon < end ? block.subarray(pos, colon).toString('latin1').trim().toLowerCase() : '', start: pos, end });
    pos = end;
  }
  return fields;
}

/** True for a field the store keeps its state in. */
export function isStoreField(name: string): boolean {
  return STORE_FIELDS.has(name);
}

/** The value of one field, unfolded, without its name. */
export function fieldValue(block: Buffer, f: HeaderField): string {
  const text = block.subarray(f.start, f.end).toString('utf8');
  return text.slice(text.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ').trim();
}

/** Reads the store fields of a header block. */
export function readStoreFields(block: Buffer, fields: readonly HeaderField[]): StoreFields {
  const flags = new Set<string>();
  let uid: number | undefined;
  let imapBase: StoreFields['imapBase'];
  let imapBaseField: HeaderField | undefined;
  let contentLength: number | undefined;
  for (const f of fields) {
    if (!STORE_FIELDS.has(f.name)) continue;
    const v = fieldValue(block, f);
    switch (f.name) {
      case 'status':
        if (v.includes('R')) flags.add('\\Seen');
        break;
      case 'x-status':
        for (const [letter, flag] of X_STATUS) if (v.includes(letter)) flags.add(flag);
        break;
      case 'x-keywords':
      case 'x-mozilla-keys':
        for (const k of v.split(/[\s,]+/)) if (k && !k.startsWith('\\')) flags.add(k);
        break;
      case 'x-uid':
        if (/^\d{1,10}$/.test(v)) uid = Number(v);
        break;
      case 'x-imapbase': {
        const m = /^(\d{1,10})\s+(\d{1,10})(.*)$/.exec(v);
        if (m) {
          imapBase = { uidValidity: Number(m[1]), lastUid: Number(m[2]), keywords: m[3]!.split(/\s+/).filter((k) => k !== '') };
          imapBaseField = f;
        }
        break;
      }
      case 'content-length':
        if (/^\d{1,15}$/.test(v)) contentLength = Number(v);
        break;
      case 'x-mozilla-status': {
        const n = /^[0-9a-f]{1,8}$/i.test(v) ? parseInt(v, 16) : 0;
        for (const [bit, flag] of MOZILLA_STATUS) if (n & bit) flags.add(flag);
        break;
      }
      default:
        break;
    }
  }
  return { flags: [...flags], uid, imapBase, imapBaseField, contentLength };
}

/** The header block without the store fields. */
export function withoutStoreFields(block: Buffer, fields: readonly HeaderField[]): Buffer {
  if (!fields.some((f) => STORE_FIELDS.has(f.name))) return block;
  return Buffer.concat(fields.filter((f) => !STORE_FIELDS.has(f.name)).map((f) => block.subarray(f.start, f.end)));
}

/** Room left after the keywords of a new `X-IMAPbase:` field, so that new keywords and UIDs are written in place. */
export const IMAPBASE_ROOM = 64;

/**
 * The `X-IMAPbase:` field (LF line end), the last UID in ten digits as Dovecot writes it so that
 * it can be rewritten in place, padded with spaces to `width` bytes when given; undefined when it
 * does not fit in `width`.
 */
export function imapBaseText(base: ImapBase, width?: number): string | undefined {
  const text = `X-IMAPbase: ${base.uidValidity} ${String(base.lastUid).padStart(10, '0')}${base.keywords.map((k) => ` ${k}`).join('')}`;
  const w = width ?? Buffer.byteLength(text, 'latin1') + IMAPBASE_ROOM + 1;
  const len = Buffer.byteLength(text, 'latin1') + 1;
  return len > w ? undefined : `${text}${' '.repeat(w - len)}\n`;
}

/** The keywords of a set of flags (no system flags, none twice, as written in `X-Keywords:`). */
export function keywordsOf(flags: readonly string[]): string[] {
  return [...new Set(flags.filter((f) => !f.startsWith('\\') && /^[\x21-\x7e]+$/.test(f)))];
}

/**
 * The store fields written for a message (LF line ends): `X-IMAPbase:` on the file's first
 * message, `X-UID:` when it has a UID, `Status:` always (`O`: not new; `R` for \Seen),
 * `X-Status:` and `X-Keywords:` when there is something to say, and `Content-Length:` when given.
 */
export function storeFieldsText(flags: readonly string[], contentLength: number | undefined, uid?: number, base?: ImapBase): string {
  const has = (f: string) => flags.some((x) => x.toLowerCase() === f.toLowerCase());
  let out = base ? imapBaseText(base)! : '';
  if (uid !== undefined) out += `X-UID: ${uid}\n`;
  out += `Status: ${has('\\Seen') ? 'RO' : 'O'}\n`;
  const xs = X_STATUS.filter(([, flag]) => has(flag)).map(([l]) => l).join('');
  if (xs) out += `X-Status: ${xs}\n`;
  const keywords = keywordsOf(flags);
  if (keywords.length > 0) out += `X-Keywords: ${keywords.join(' ')}\n`;
  if (contentLength !== undefined) out += `Content-Length: ${contentLength}\n`;
  return out;
}

const X_STATUS: readonly (readonly [string, string])[] = [
  ['A', '\\Answered'],
  ['F', '\\Flagged'],
  ['T', '\\Draft'],
  ['D', '\\Deleted'],
];

/** Thunderbird's message flags (nsMsgMessageFlags) that have an IMAP counterpart. */
const MOZILLA_STATUS: readonly (readonly [number, string])[] = [
  [0x0001, '\\Seen'],
  [0x0002, '\\Answered'],
  [0x0004, '\\Flagged'],
  [0x0008, '\\Deleted'],
  [0x1000, '$Forwarded'],
];
