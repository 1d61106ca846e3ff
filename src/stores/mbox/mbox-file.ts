/**
 * The mbox files of one store: their indexes (kept while a file's size, inode and mtime stay; a
 * file that only grew is indexed from where the last pass ended), message reads by byte range, and
 * the writes: append (under the dotlock, whole messages, fsync) and rewrite (flags changed or
 * messages removed: a new file beside the old one, synced and renamed over it, so that a crash
 * leaves one or the other).
 *
 * A destination file whose last message is cut off (a run killed mid-write, a full disk) is cut
 * back to the end of its last whole message before anything is written, and the cut is logged.
 */
import { chmod, open, rename, stat, truncate, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AppendItem } from '../mail-store.js';
import { withDotlock } from './dotlock.js';
import { indexMbox, type MboxEntry, type MboxIndex } from './mbox-index.js';
import { serializeMessage, serveMessage } from './messages.js';

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
      if (old && had.ino === ino && Number(st.size) > old.size && old.uidNext === undefined && old.cutAt === undefined && old.appendPrefix === '') {
        // Only grown: index what was appended, after the messages already known.
        const more = await indexMbox(handle, ino, { labels: this.opts.labels, signal, offset: old.size, firstUid: old.messages.length + 1 }).catch(() => undefined);
        index = more ? { ...more, messages: [...old.messages, ...more.messages], uidValidity: old.uidValidity, uidNext: undefined } : await indexMbox(handle, ino, { labels: this.opts.labels, signal });
      } else index = await indexMbox(handle, ino, { labels: this.opts.labels, signal });
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

  /**
   * Cuts a destination file back to its last whole message when its tail is cut off. Call with
   * the dotlock held.
   */
  async repair(file: string, signal?: AbortSignal): Promise<MboxIndex> {
    const index = await this.index(file, signal);
    if (index.cutAt === undefined) return index;
    await truncate(file, index.cutAt);
    this.opts.logger?.warn({ file, from: index.size, to: index.cutAt }, `mbox ${file} ended inside a message (a write that was cut off): cut back from ${index.size} to ${index.cutAt} bytes`);
    return this.index(file, signal);
  }

  /** The index of a destination file, its cut tail cut back first (under the dotlock) when it has one. */
  async repaired(file: string, signal?: AbortSignal): Promise<MboxIndex> {
    const index = await this.index(file, signal);
    return index.cutAt === undefined ? index : withDotlock(file, () => this.repair(file, signal), signal);
  }

  /** Appends whole messages under the dotlock, synced; returns their UIDs (positions). */
  async append(file: string, items: readonly AppendItem[], signal?: AbortSignal): Promise<({ uid: number } | { error: Error })[]> {
    return withDotlock(file, async () => {
      const index = await this.repair(file, signal);
      const handle = await open(file, 'a', 0o600);
      const out: ({ uid: number } | { error: Error })[] = [];
      try {
        let prefix = index.appendPrefix;
        let uid = index.messages.length + 1;
        for (const item of items) {
          signal?.throwIfAborted();
          let bytes: Buffer;
          try {
            bytes = serializeMessage(item);
          } catch (err) {
            out.push({ error: err as Error });
            continue;
          }
          // One write per message: what a crash leaves is whole messages and at most one cut tail.
          await handle.write(prefix ? Buffer.concat([Buffer.from(prefix, 'latin1'), bytes]) : bytes);
          prefix = '';
          out.push({ uid: uid++ });
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      return out;
    }, signal);
  }

  /**
   * Rewrites a file with each message's flags replaced (`flags` gives new ones by UID) and the
   * messages in `drop` left out. The new file is written beside the old one and renamed over it.
   */
  async rewrite(file: string, flags: ReadonlyMap<number, string[]>, drop: ReadonlySet<number>, signal?: AbortSignal): Promise<void> {
    await withDotlock(file, async () => {
      const index = await this.repair(file, signal);
      const tmp = `${file}.${process.pid}.mailmover-tmp`;
      const out = await open(tmp, 'wx', 0o600);
      try {
        const source = await open(file, 'r');
        try {
          for (const m of index.messages) {
            signal?.throwIfAborted();
            if (drop.has(m.uid)) continue;
            const lineBuf = Buffer.alloc(m.start - m.from);
            await source.read(lineBuf, 0, lineBuf.length, m.from);
            const fromLine = lineBuf.toString('latin1').replace(/\r?\n$/, '');
            const raw = Buffer.alloc(m.end - m.start);
            await source.read(raw, 0, raw.length, m.start);
            if (m.broken) {
              // Not a message it can read: kept as it is.
              await out.write(Buffer.concat([lineBuf, raw, Buffer.from('\n\n')]));
              continue;
            }
            const body = serveMessage(raw, m.unquoted);
            await out.write(serializeMessage({ body, flags: flags.get(m.uid) ?? m.flags, internalDate: m.internalDate }, fromLine));
          }
        } finally {
          await source.close();
        }
        await out.sync();
      } catch (err) {
        await out.close().catch(() => undefined);
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      await out.close();
      const mode = (await stat(file)).mode & 0o777;
      await chmod(tmp, mode);
      await rename(tmp, file);
    }, signal);
  }
}
