/**
 * Indexes an mbox file in one streaming pass: where each message starts and ends (byte offsets),
 * its flags, `From ` line date and UID. Bodies are not kept: a message is read by its range when
 * fetched, so a file of many gigabytes costs memory by its number of messages only.
 *
 * A message starts at every line that starts with `From ` (mboxo, mboxrd: a body line `From `
 * that nobody quoted is a boundary, as in every mbox reader that does not trust Content-Length),
 * except inside the range a valid `Content-Length:` gives. Content-Length is valid when it
 * points exactly at the next `From ` line (after the blank line that ends a message, or without
 * it) or at the end of the file; otherwise it is ignored. The blank line before a `From ` line and
 * at the end of the file ends the message and is not part of it.
 *
 * UIDs: Dovecot's and c-client's `X-IMAPbase:`/`X-UID:` (mailmover writes them too) when every
 * message has one, in rising order, none above the last UID of X-IMAPbase: then UIDVALIDITY and
 * UIDNEXT are the file's, and stay across runs and rewrites. Otherwise the message's position
 * (1, 2, ...) with a UIDVALIDITY derived from the file's identity and first message, and no
 * UIDNEXT, so that nothing trusts positions across a rewrite of the file.
 *
 * With `offset`, only the messages from that offset on are indexed (what was appended since the
 * last pass): positions count on from `firstUid`, each entry keeps its `X-UID:` (`xuid`), and the
 * caller decides the UIDs (see mbox-file.ts).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { parseFromLine } from './messages.js';
import { readStoreFields, splitFields, type ImapBase } from './status-headers.js';

const CHUNK = 1024 * 1024;
/** A header block is kept for parsing up to this size (the store fields come first or last, in practice within it). */
const MAX_HEADER = 1024 * 1024;

export interface MboxEntry {
  /** Offset of the `From ` line. */
  from: number;
  /** Offset of the message's first byte (after the `From ` line). */
  start: number;
  /** Offset after its last byte (the blank line that ends it excluded). */
  end: number;
  /** A valid Content-Length bounded it: its `>From ` lines are its own (no quoting to undo). */
  unquoted: boolean;
  flags: string[];
  internalDate: Date | undefined;
  uid: number;
  /** Set when the message cannot be served (cut off, no header): why. */
  broken?: string | undefined;
  /** `X-Gmail-Labels:` as written (Gmail Takeout), when asked for. */
  labels?: string | undefined;
  /** Its `X-UID:`, when it has one. */
  xuid?: number | undefined;
}

export interface MboxIndex {
  messages: MboxEntry[];
  uidValidity: number;
  uidNext: number | undefined;
  /** The file's X-IMAPbase, when the UIDs are the file's own (see above). */
  base: ImapBase | undefined;
  /** Where the first message's `X-IMAPbase:` field stands in the file (byte range, line end included). */
  baseAt: { start: number; end: number } | undefined;
  size: number;
  /**
   * The last message is cut off (the file ends inside it: no line end, or before its
   * Content-Length): where the file must be cut back to, before anything is appended.
   */
  cutAt: number | undefined;
  /** What to write before the next appended message so that the last one keeps its end. */
  appendPrefix: string;
}

/** Thrown when the file does not start with a `From ` line: it is not an mbox. */
export class NotAnMboxError extends Error {}

interface Open {
  entry: MboxEntry;
  header: Buffer[];
  headerBytes: number;
  bodyStart: number | undefined;
  clEnd: number | undefined;
  /** Its Content-Length points beyond the end of the file. */
  clPastEnd: boolean;
  /** Start and length of the last line seen in the body. */
  lastLine: { start: number; blank: number } | undefined;
}

/** Indexes the file open as `handle`. */
export async function indexMbox(handle: FileHandle, identity: string, opts: { labels?: boolean | undefined; signal?: AbortSignal | undefined; offset?: number; firstUid?: number } = {}): Promise<MboxIndex> {
  const offset = opts.offset ?? 0;
  const firstUid = opts.firstUid ?? 1;
  const { size } = await handle.stat();
  const messages: MboxEntry[] = [];
  const xuids: (number | undefined)[] = [];
  let firstHead = Buffer.alloc(0);
  let imapBase: ImapBase | undefined;
  let baseAt: MboxIndex['baseAt'];
  let cur: Open | undefined;
  let cutAt: number | undefined;
  let lastByte = -1;

  const close = (at: number, eof: boolean) => {
    if (!cur) return;
    const e = cur.entry;
    const last = cur.lastLine;
    if (cur.clEnd !== undefined) e.end = cur.clEnd;
    else if (cur.bodyStart !== undefined && last && last.blank > 0 && last.start >= cur.bodyStart && last.start + last.blank === at) e.end = last.start;
    else e.end = at;
    // At the end of the file: a message the file ends inside is cut off (no line end, a header
    // block that never ended, or a Content-Length beyond the end).
    if (eof && cur.clEnd === undefined && (lastByte !== 10 || cur.bodyStart === undefined || cur.clPastEnd)) {
      e.broken = `the file ends inside this message (at byte ${size}): it was cut off`;
      cutAt = e.from;
    }
    if (!e.broken) {
      const fields = splitFields(Buffer.concat(cur.header));
      if (fields.length > 0 && fields[0]!.name === '') e.broken = 'it does not start with a header field';
      else if (fields.length === 0) e.broken = 'it has no header';
    }
    messages.push(e);
    cur = undefined;
  };

  for await (const lines of readLines(handle, size, offset, opts.signal)) for (const line of lines) {
    const b = line.bytes;
    const isFrom = b.length >= 5 && b[0] === 70 && b[1] === 114 && b[2] === 111 && b[3] === 109 && b[4] === 32;
    if (messages.length === 0 && !cur && !isFrom) throw new NotAnMboxError('it does not start with a "From " line');
    lastByte = line.lastByte;
    if (isFrom && (!cur || cur.clEnd === undefined || line.start >= cur.clEnd)) {
      close(line.start, false);
      xuids.push(undefined);
      cur = {
        entry: { from: line.start, start: line.end, end: line.end, unquoted: false, flags: [], internalDate: parseFromLine(b.subarray(0, 1024).toString('latin1').replace(/\r?\n$/, '')), uid: firstUid + messages.length },
        header: [],
        headerBytes: 0,
        bodyStart: undefined,
        clEnd: undefined,
        clPastEnd: false,
        lastLine: undefined,
      };
      continue;
    }
    if (!cur) continue;
    const blank = b.length === 1 && b[0] === 10 ? 1 : b.length === 2 && b[0] === 13 && b[1] === 10 ? 2 : 0;
    cur.lastLine = { start: line.start, blank };
    if (cur.bodyStart !== undefined) continue;
    if (blank === 0) {
      if (cur.headerBytes < MAX_HEADER) {
        // A copy: the line is a view of the read buffer, which the next read overwrites.
        cur.header.push(Buffer.from(b));
        cur.headerBytes += b.length;
      }
      continue;
    }
    cur.bodyStart = line.end;
    const block = Buffer.concat(cur.header);
    const fields = splitFields(block);
    const st = readStoreFields(block, fields);
    cur.entry.flags = st.flags;
    xuids[xuids.length - 1] = st.uid;
    cur.entry.xuid = st.uid;
    if (messages.length === 0 && offset === 0) {
      firstHead = block.subarray(0, 4096);
      imapBase = st.imapBase;
      if (st.imapBaseField) baseAt = { start: cur.entry.start + st.imapBaseField.start, end: cur.entry.start + st.imapBaseField.end };
    }
    if (opts.labels) cur.entry.labels = gmailLabels(block, fields);
    if (st.contentLength !== undefined) {
      const at = line.end + st.contentLength;
      if (await clPointsAtBoundary(handle, size, at)) {
        cur.clEnd = at;
        cur.entry.unquoted = true;
      } else cur.clPastEnd = at > size;
    }
  }
  close(size, true);

  // UIDs from X-UID when every message has one, rising, none above X-IMAPbase's last UID.
  let uidValidity: number;
  let uidNext: number | undefined;
  const base = imapBase;
  const trusted = !!base && base.uidValidity > 0 && messages.length > 0 && uidsConsistent(xuids, 0, base.lastUid);
  if (trusted) {
    messages.forEach((m, i) => (m.uid = xuids[i]!));
    uidValidity = base.uidValidity;
    uidNext = base.lastUid + 1;
  } else {
    const h = createHash('sha256').update(identity).update('\u0000').update(firstHead);
    uidValidity = (h.digest().readUInt32BE(0) >>> 1) + 1;
    uidNext = undefined;
  }
  const tail = cutAt === undefined ? await appendPrefix(handle, size, messages[messages.length - 1]) : '';
  return { messages, uidValidity, uidNext, base: trusted ? base : undefined, baseAt: trusted ? baseAt : undefined, size, cutAt, appendPrefix: tail };
}

/** True when every UID is there, each above the one before (the first above `after`), none above `last`. */
export function uidsConsistent(uids: readonly (number | undefined)[], after: number, last: number): boolean {
  let prev = after;
  for (const u of uids) {
    if (u === undefined || u <= prev || u > last) return false;
    prev = u;
  }
  return true;
}

/** What must be written before a new message so that the last one keeps its end: a line end, a blank line, or nothing. */
async function appendPrefix(handle: FileHandle, size: number, last: MboxEntry | undefined): Promise<string> {
  if (!last || size === 0) return '';
  const buf = Buffer.alloc(2);
  const { bytesRead } = await handle.read(buf, 0, Math.min(2, size), size - Math.min(2, size));
  const tail = buf.subarray(0, bytesRead).toString('latin1');
  if (last.unquoted) return last.end === size ? '\n' : '';
  return tail === '\n\n' ? '' : tail.endsWith('\n') ? '\n' : '\n\n';
}

/** True when a Content-Length ends at a `From ` line, the blank line before one, or the end of the file. */
async function clPointsAtBoundary(handle: FileHandle, size: number, at: number): Promise<boolean> {
  if (at > size) return false;
  if (at === size) return true;
  const buf = Buffer.alloc(7);
  const { bytesRead } = await handle.read(buf, 0, 7, at);
  const s = buf.subarray(0, bytesRead).toString('latin1');
  return s.startsWith('From ') || s.startsWith('\nFrom ') || s.startsWith('\r\nFrom') || (s === '\n' && at + 1 === size) || (s === '\r\n' && at + 2 === size);
}

/** The raw value of `X-Gmail-Labels:` (unfolded), or undefined. */
function gmailLabels(block: Buffer, fields: ReturnType<typeof splitFields>): string | undefined {
  const f = fields.find((x) => x.name === 'x-gmail-labels');
  if (!f) return undefined;
  const text = block.subarray(f.start, f.end).toString('utf8');
  return text.slice(text.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ').trim();
}

interface Line {
  start: number;
  end: number;
  /**
   * The line's bytes (a very long one: its first MAX_HEADER bytes); a view of the read buffer,
   * valid until the generator is resumed.
   */
  bytes: Buffer;
  lastByte: number;
}

/**
 * The file's lines, a chunk's worth at a time, without a copy per line (an index pass reads every
 * byte of the file).
 */
async function* readLines(handle: FileHandle, size: number, offset: number, signal: AbortSignal | undefined): AsyncGenerator<Line[]> {
  let pos = offset;
  let carry: Buffer = Buffer.alloc(0);
  let carryStart = 0;
  let carryDropped = 0;
  const buf = Buffer.alloc(CHUNK);
  while (pos < size) {
    signal?.throwIfAborted();
    const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, size - pos), pos);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    let from = 0;
    const lines: Line[] = [];
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      const part = chunk.subarray(from, nl + 1);
      const joined = carry.length > 0 || carryDropped > 0;
      const bytes = joined ? Buffer.concat([carry, part]) : part;
      lines.push({ start: joined ? carryStart : pos + from, end: pos + nl + 1, bytes, lastByte: 10 });
      carry = Buffer.alloc(0);
      carryDropped = 0;
      from = nl + 1;
    }
    yield lines;
    if (from < chunk.length) {
      if (carry.length === 0 && carryDropped === 0) carryStart = pos + from;
      const rest = chunk.subarray(from);
      // Keep at most MAX_HEADER bytes of one line.
      const room = Math.max(0, MAX_HEADER - carry.length);
      carry = Buffer.concat([carry, rest.subarray(0, room)]);
      carryDropped += Math.max(0, rest.length - room);
    }
    pos += bytesRead;
  }
  if (carry.length > 0 || carryDropped > 0) {
    yield [{ start: carryStart, end: size, bytes: carry, lastByte: carry[carry.length - 1] ?? -1 }];
  }
}
