/**
 * Writing mbox files, under the write locks (dotlock.ts), in Dovecot's form: every message carries
 * `X-UID:`, the first one `X-IMAPbase: UIDVALIDITY LAST-UID KEYWORDS...`, so that Dovecot and
 * mailmover see the same UIDs on every run, and Dovecot takes the `X-Keywords:` names.
 *
 * - append: whole messages, one write each, fsync. The new last UID (and any new keyword) is
 *   written into the first message's X-IMAPbase in place before the messages: a run killed in
 *   between leaves a gap in the UIDs, never a UID given twice. A file that has no UIDs of its own
 *   yet (another program's) is rewritten once with its positions as UIDs; one whose X-IMAPbase has
 *   no room left for a new keyword is rewritten with a longer one.
 * - rewrite (flags changed, messages removed): a new file beside the old one, synced and renamed
 *   over it, so that a crash leaves one or the other, never a mix. A message that stays keeps its
 *   bytes and its UID; only its store fields are written anew.
 */
import { chmod, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeAsync as checkpoint } from '../../state/checkpoint.js';
import type { AppendItem } from '../mail-store.js';
import { withWriteLocks } from './dotlock.js';
import { emptyValidity, type MboxFiles } from './mbox-file.js';
import type { MboxEntry, MboxIndex } from './mbox-index.js';
import { headerEnd, serializeMessage, serveMessage } from './messages.js';
import { imapBaseText, keywordsOf, splitFields, storeFieldsText, withoutStoreFields, type ImapBase } from './status-headers.js';

/** The suffix of the file a rewrite writes before renaming it into place. */
export const REWRITE_SUFFIX = '.mailmover-tmp';

export type Written = { uid: number } | { error: Error };

/** Appends whole messages under the write locks, synced; returns their UIDs. */
export async function appendMessages(files: MboxFiles, file: string, items: readonly AppendItem[], signal?: AbortSignal): Promise<Written[]> {
  return withWriteLocks(file, async () => {
    let index = await files.repair(file, signal);
    const keywords = [...new Set(items.flatMap((i) => keywordsOf(i.flags)))];
    if (index.messages.length > 0) {
      const missing = index.base ? keywords.filter((k) => !index.base!.keywords.includes(k)) : keywords;
      // Another program's file (no UIDs of its own), or no room for a new keyword: rewritten once.
      if (!index.base || (missing.length > 0 && !(await writeBase(file, index, { ...index.base, keywords: [...index.base.keywords, ...missing] })))) {
        await rewriteLocked(files, file, index, { flags: new Map(), drop: new Set(), keywords: missing }, signal);
        index = await files.index(file, signal);
      }
    }
    // Still no UIDs of its own (its first message is not one mailmover can read, so it cannot
    // carry X-IMAPbase): the new messages' UIDs are their positions, as for the others.
    const own = index.messages.length === 0 || index.base !== undefined;
    const base: ImapBase = index.base ?? { uidValidity: index.messages.length > 0 ? index.uidValidity : emptyValidity(file), lastUid: own ? 0 : index.messages.length, keywords };
    const next: ImapBase = { ...base, lastUid: base.lastUid + items.length, keywords: [...new Set([...base.keywords, ...keywords])] };
    // The UIDs are claimed before the messages are written.
    if (index.base && !(await writeBase(file, index, next))) throw new Error(`the X-IMAPbase field of ${file} changed while it was locked`);
    const handle = await open(file, 'a', 0o600);
    const out: Written[] = [];
    try {
      let prefix = index.appendPrefix;
      let first = index.messages.length === 0;
      let uid = base.lastUid;
      for (const item of items) {
        signal?.throwIfAborted();
        const bytes = serializeMessage(item, { uid: own ? ++uid : undefined, base: first ? next : undefined });
        if (!own) ++uid;
        first = false;
        // One write per message: what a crash leaves is whole messages and at most one cut tail.
        await checkpoint('mboxAppend', () => handle.write(prefix ? Buffer.concat([Buffer.from(prefix, 'latin1'), bytes]) : bytes));
        prefix = '';
        out.push({ uid });
      }
      await handle.sync();
    } finally {
      await handle.close();
      // The cached index stays: the next index() sees the file grew and reads only what was
      // appended (mbox-file.ts), or indexes it whole when that does not add up (a cut tail).
    }
    return out;
  }, signal);
}

/**
 * Writes a new X-IMAPbase into the first message's field in place, padded to its length; false
 * when it does not fit (or the field is not where the index saw it).
 */
async function writeBase(file: string, index: MboxIndex, base: ImapBase): Promise<boolean> {
  const at = index.baseAt;
  if (!at) return false;
  const text = imapBaseText(base, at.end - at.start);
  if (text === undefined) return false;
  const handle = await open(file, 'r+');
  try {
    const had = Buffer.alloc(at.end - at.start);
    await handle.read(had, 0, had.length, at.start);
    if (!/^X-IMAPbase:/i.test(had.toString('latin1')) || had[had.length - 1] !== 10) return false;
    const bytes = Buffer.from(text, 'latin1');
    // Keep the field's own line end (CRLF in a CRLF file).
    if (had[had.length - 2] === 13) bytes[bytes.length - 2] = 13;
    await handle.write(bytes, 0, bytes.length, at.start);
    await handle.sync();
    return true;
  } finally {
    await handle.close();
  }
}

export interface RewriteOptions {
  /** New flags by UID. */
  flags: ReadonlyMap<number, string[]>;
  /** UIDs of the messages to leave out. */
  drop: ReadonlySet<number>;
  /** Keywords to name in X-IMAPbase besides those of the messages. */
  keywords?: readonly string[];
  /** Called with the file's index under the locks, before anything is written: throws to stop. */
  check?: (index: MboxIndex) => void | Promise<void>;
  /** A source's file: a cut-off last message is kept as it is, not cut back. */
  keepCutTail?: boolean;
}

/** Rewrites a file under the write locks (see the module comment). */
export async function rewriteFile(files: MboxFiles, file: string, opts: RewriteOptions, signal?: AbortSignal): Promise<void> {
  await withWriteLocks(file, async () => {
    const index = opts.keepCutTail ? await files.index(file, signal) : await files.repair(file, signal);
    await opts.check?.(index);
    await rewriteLocked(files, file, index, opts, signal);
  }, signal);
}

async function rewriteLocked(files: MboxFiles, file: string, index: MboxIndex, opts: RewriteOptions, signal?: AbortSignal): Promise<void> {
  // Under the locks, a file a rewrite left behind is a dead run's.
  for (const name of await readdir(dirname(file))) if (name.startsWith(`${basename(file)}.`) && name.endsWith(REWRITE_SUFFIX)) await unlink(join(dirname(file), name)).catch(() => undefined);
  const tmp = `${file}.${process.pid}${REWRITE_SUFFIX}`;
  const kept = index.messages.filter((m) => !opts.drop.has(m.uid));
  const flagsOf = (m: MboxEntry) => opts.flags.get(m.uid) ?? m.flags;
  const base: ImapBase = {
    uidValidity: index.messages.length > 0 ? index.uidValidity : emptyValidity(file),
    lastUid: index.uidNext !== undefined ? index.uidNext - 1 : Math.max(0, ...index.messages.map((m) => m.uid)),
    keywords: [...new Set([...(index.base?.keywords ?? []), ...kept.flatMap((m) => keywordsOf(flagsOf(m))), ...(opts.keywords ?? [])])],
  };
  const out = await open(tmp, 'wx', 0o600);
  try {
    const source = await open(file, 'r');
    try {
      let first = true;
      for (const m of kept) {
        signal?.throwIfAborted();
        const head = Buffer.alloc(m.start - m.from);
        await source.read(head, 0, head.length, m.from);
        const raw = Buffer.alloc(m.end - m.start);
        await source.read(raw, 0, raw.length, m.start);
        if (m.broken) {
          // Not a message it can read: kept as it is (a cut-off tail without anything after it).
          const tail = raw.subarray(-2).toString('latin1');
          const end = index.cutAt === m.from || tail === '\n\n' ? '' : tail.endsWith('\n') ? '\n' : '\n\n';
          await out.write(Buffer.concat([head, raw, Buffer.from(end)]));
          continue;
        }
        const fromLine = head.toString('latin1').replace(/\r?\n$/, '');
        await out.write(restamp(raw, m, { fromLine, flags: flagsOf(m), uid: m.uid, base: first ? base : undefined }));
        first = false;
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
  await chmod(tmp, (await stat(file)).mode & 0o777);
  await checkpoint('mboxRename', () => rename(tmp, file));
  files.forget(file);
}

/**
 * A message of the file with its store fields written anew and its own bytes as they were (its
 * quoting too): `From ` line, header block, store fields, the rest, and the blank line after it.
 */
function restamp(raw: Buffer, m: MboxEntry, at: { fromLine: string; flags: string[]; uid: number; base: ImapBase | undefined }): Buffer {
  const split = headerEnd(raw);
  const rest = raw.subarray(split);
  if (rest.length === 0) return serializeMessage({ body: serveMessage(raw, m.unquoted), flags: at.flags, internalDate: m.internalDate }, at);
  const block = raw.subarray(0, split);
  const blank = rest[0] === 13 ? 2 : 1;
  const fields = storeFieldsText(at.flags, m.unquoted ? rest.length - blank : undefined, at.uid, at.base);
  return Buffer.concat([Buffer.from(`${at.fromLine}\n`, 'latin1'), withoutStoreFields(block, splitFields(block)), Buffer.from(fields, 'latin1'), rest, Buffer.from('\n')]);
}
