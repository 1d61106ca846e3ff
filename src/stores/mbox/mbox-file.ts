/**
 * The mbox files of one store: their indexes (kept while a file's size, inode and mtime stay; a
 * file that only grew is indexed from where the last pass ended: with UIDs of its own when the new
 * messages' X-UIDs follow on and X-IMAPbase, re-read in place, covers them) and message reads by
 * byte range. The writes are in mbox-writer.ts.
 *
 * A destination file whose last message is cut off (a run killed mid-write, a full disk) is cut
 * back to the end of its last whole message before anything is written, and the cut is logged.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, truncate } from 'node:fs/promises';
import type { Logger } from 'pino';
import { withWriteLocks } from './dotlock.js';
import { indexMbox, type MboxEntry, type MboxIndex } from './mbox-index.js';
import { serveMessage } from './messages.js';
import { readStoreFields, splitFields } from './status-headers.js';

/**
 * The UIDVALIDITY of a file that holds no message (or does not exist yet), from its path: the
 * same before and after its first message is written (which carries it in X-IMAPbase), so that a
 * run that listed the folder empty finds it unchanged after writing. Its UIDNEXT is 1.
 */
export function emptyValidity(file: string): number {
  return (createHash('sha256').update(file).digest().readUInt32BE(0) >>> 1) + 1;
}

/**
 * The index of a file with its own UIDs that grew: the new messages indexed from the old end, and
 * the first message's X-IMAPbase read again where it stood (it is rewritten in place, same width).
 * Undefined, for a whole new pass, unless the UIDVALIDITY is the same and every new message has an
 * X-UID above the last one known and within X-IMAPbase's last UID.
 */
async function grownWithOwnUids(handle: FileHandle, ino: string, old: MboxIndex, labels: boolean | undefined, signal: AbortSignal | undefined): Promise<MboxIndex | undefined> {
  if (!old.base || !old.baseAt || old.messages.length === 0) return undefined;
  const more = await indexMbox(handle, ino, { labels, signal, offset: old.size, firstUid: old.messages.length + 1 }).catch(() => undefined);
  if (!more || more.cutAt !== undefined || more.messages.length === 0) return undefined;
  const line = Buffer.alloc(old.baseAt.end - old.baseAt.start);
  const { bytesRead } = await handle.read(line, 0, line.length, old.baseAt.start);
  if (bytesRead !== line.length) return undefined;
  const base = readStoreFields(line, splitFields(line)).imapBase;
  if (!base || base.uidValidity !== old.base.uidValidity) return undefined;
  let last = old.messages[old.messages.length - 1]!.uid;
  for (const m of more.messages) {
    if (m.xuid === undefined || m.xuid <= last || m.xuid > base.lastUid) return undefined;
    last = m.uid = m.xuid;
  }
  return { ...more, messages: [...old.messages, ...more.messages], uidValidity: old.uidValidity, uidNext: base.lastUid + 1, base, baseAt: old.baseAt };
}

interface Cached {
  stamp: string;
  ino: string;
  index: MboxIndex;
}

export class MboxFiles {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly opts: { labels?: boolean; logger?: Logger | undefined }) {}

  /** The index of a file, from the cache when the file has not changed. */
  async index(file: string, signal?: AbortSignal): Promise<MboxIndex> {
    const handle = await open(file, 'r');
    try {
      const st = await handle.stat({ bigint: true });
      const ino = `${st.dev}:${st.ino}`;
      const stamp = `${ino}:${st.size}:${st.mtimeNs}`;
      const had = this.cache.get(file);
      if (had?.stamp === stamp) return had.index;
      let index: MboxIndex;
      const old = had?.index;
      if (old && old.messages.length > 0 && had.ino === ino && Number(st.size) > old.size && old.uidNext === undefined && old.cutAt === undefined && old.appendPrefix === '') {
        // Only grown: index what was appended, after the messages already known.
        const more = await indexMbox(handle, ino, { labels: this.opts.labels, signal, offset: old.size, firstUid: old.messages.length + 1 }).catch(() => undefined);
        index = more ? { ...more, messages: [...old.messages, ...more.messages], uidValidity: old.uidValidity, uidNext: undefined, base: undefined, baseAt: undefined } : await indexMbox(handle, ino, { labels: this.opts.labels, signal });
      } else if (old?.base && had?.ino === ino && Number(st.size) > old.size && old.cutAt === undefined && old.appendPrefix === '') {
        // A file with UIDs of its own that grew (our appends): without this, every append batch
        // would index the whole file again, quadratic in its size.
        index = (await grownWithOwnUids(handle, ino, old, this.opts.labels, signal)) ?? (await indexMbox(handle, ino, { labels: this.opts.labels, signal }));
      } else index = await indexMbox(handle, ino, { labels: this.opts.labels, signal });
      // No message: the first one written gets UID 1 (see mbox-writer.ts).
      if (index.messages.length === 0) index = { ...index, uidValidity: emptyValidity(file), uidNext: 1 };
      this.cache.set(file, { stamp, ino, index });
      return index;
    } finally {
      await handle.close();
    }
  }

  /** The bytes of a message on disk, after its `From ` line. */
  async raw(file: string, m: MboxEntry): Promise<Buffer> {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(m.end - m.start);
      const { bytesRead } = await handle.read(buf, 0, buf.length, m.start);
      if (bytesRead !== buf.length) throw Object.assign(new Error(`the file is shorter than its index (byte ${m.start + bytesRead})`), { code: 'ESHORT' });
      return buf;
    } finally {
      await handle.close();
    }
  }

  /** A message as IMAP serves it. */
  async served(file: string, m: MboxEntry): Promise<Buffer> {
    return serveMessage(await this.raw(file, m), m.unquoted);
  }

  /** Forgets what is known of a file (after it was written). */
  forget(file: string): void {
    this.cache.delete(file);
  }

  /**
   * Cuts a destination file back to its last whole message when its tail is cut off. Call with
   * the write locks held.
   */
  async repair(file: string, signal?: AbortSignal): Promise<MboxIndex> {
    const index = await this.index(file, signal);
    if (index.cutAt === undefined) return index;
    await truncate(file, index.cutAt);
    this.opts.logger?.warn({ file, from: index.size, to: index.cutAt }, `mbox ${file} ended inside a message (a write that was cut off): cut back from ${index.size} to ${index.cutAt} bytes`);
    return this.index(file, signal);
  }

  /** The index of a destination file, its cut tail cut back first (under the write locks) when it has one. */
  async repaired(file: string, signal?: AbortSignal): Promise<MboxIndex> {
    const index = await this.index(file, signal);
    return index.cutAt === undefined ? index : withWriteLocks(file, () => this.repair(file, signal), signal);
  }
}
