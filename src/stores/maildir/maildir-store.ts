/**
 * A Maildir tree (Dovecot, Courier, mutt) as a {@link MailStore}: read straight off the disk,
 * written by the Maildir rules (see messages.ts), with Dovecot's uidlist and keyword files kept so
 * that a Dovecot pointed at the tree serves the same UIDs, flags, keywords and dates.
 *
 * A source tree is only read; files are written only below the root, through names checked in
 * layout.ts, and no symbolic link is followed.
 */
import { lstat, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NameSpace } from '../../core/mailbox-path.js';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { extractMessageId, messageKey } from '../../core/message-key.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, MessageMeta, StoreCaps } from '../mail-store.js';
import { flagsOf, keywordsText, lettersFor, readKeywords } from './info-flags.js';
import { indexFolder, type FolderIndex } from './folder-index.js';
import { addSubscription, folderDir, isMaildir, layoutDelimiter, listDiskFolders, MAILDIR_SUBDIRS, makeFolder, readSubscriptions, type MaildirLayout } from './layout.js';
import { readHeaderBlock, readServed, servedSize, syncDir } from '../local/message-file.js';
import { deliver } from './messages.js';
import { updateUidList } from './uidlist.js';
import { localFolderStatuses, pollForChange } from '../local/folder-statuses.js';
import { type ListingRequest, listingWanted } from '../local/listing-filter.js';

export interface MaildirStoreOptions {
  root: string;
  layout: MaildirLayout;
  side: 'source' | 'destination';
}


export class MaildirStore implements MailStore {
  private open: { path: string[]; index: FolderIndex; keywords: (string | undefined)[] } | undefined;
  private closed = false;

  constructor(private readonly opts: MaildirStoreOptions) {}

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const { root } = this.opts;
    const st = await lstat(root).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === 'ENOENT' && this.opts.side === 'destination') {
        // A new archive: its parent must exist, so that a mistyped path is not created far away.
        const parent = await stat(dirname(root)).catch(() => undefined);
        if (!parent?.isDirectory()) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The destination Maildir ${root} does not exist, nor does its parent directory: create the parent first.`, { scope: 'mailbox' });
        await makeFolder(root, this.opts.layout, ['INBOX']);
        return;
      }
      throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The ${this.opts.side} Maildir ${root} cannot be opened: ${st.code === 'ENOENT' ? 'it does not exist' : st.message}.`, { scope: 'mailbox' });
    }
    if (!st.isDirectory()) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The ${this.opts.side} Maildir ${root} is not a directory.`, { scope: 'mailbox' });
    if (!(await isMaildir(root))) {
      if (this.opts.side === 'source') throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `${root} is not a Maildir: it has no cur/ directory. Name the directory that holds cur/, new/ and tmp/ (for Dovecot, usually ~/Maildir).`, { scope: 'mailbox' });
      await makeFolder(root, this.opts.layout, ['INBOX']);
    }
  }

  caps(): StoreCaps {
    return {
      multiAppend: true,
      appendUid: true,
      appendLimit: undefined,
      literalPlus: false,
      // A level starting with "." would be hidden, or climb out ("..") in LAYOUT=fs, or end up an
      // empty level of a Maildir++ name: the planner renames such levels (and the fs layout's own
      // directory names), as it does for an IMAP server's reserved names.
      reservedNames: this.opts.layout === 'fs' ? ['.*', ...MAILDIR_SUBDIRS, 'dovecot*'] : ['.*'],
      mailOrChildren: false,
      search: false,
    };
  }

  namespace(): NameSpace {
    return { prefix: '', delimiter: layoutDelimiter(this.opts.layout) };
  }

  async listFolders(): Promise<FolderListing> {
    const { root, layout } = this.opts;
    const { folders, skipped } = await listDiskFolders(root, layout);
    const subscribed = new Set((await readSubscriptions(root, layout)).map((p) => p.join('\u0000')));
    const delimiter = layoutDelimiter(layout);
    const out: FolderInfo[] = folders.map((f) => ({
      path: f.path,
      name: f.path.join(delimiter),
      delimiter,
      noSelect: !f.selectable,
      subscribed: subscribed.has(f.path.join('\u0000')),
      specialUse: undefined,
    }));
    return { folders: out, unreadable: skipped.map((p) => `${p} (not a folder: a link or an entry that cannot be named)`), otherNamespaces: [] };
  }

  async createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    const name = path.join(layoutDelimiter(this.opts.layout));
    try {
      return { created: await makeFolder(this.opts.root, this.opts.layout, path), name };
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, `Creating folder "${name}" in the Maildir ${this.opts.root} failed: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
  }

  async subscribe(path: readonly string[]): Promise<void> {
    await addSubscription(this.opts.root, this.opts.layout, path);
  }

  async openFolder(path: readonly string[], readOnly: boolean): Promise<FolderStatus> {
    const index = await this.index(path);
    const dir = index.dir;
    if (!readOnly && this.opts.side === 'destination' && index.messages.some((m) => !index.uidList?.uids.has(m.base))) {
      // Files no uidlist names (a run stopped between delivering and recording, or another
      // writer): recorded now, as Dovecot would, so their UIDs stay.
      await updateUidList(dir, (list) => {
        for (const m of index.messages) if (!list.uids.has(m.base)) list.uids.set(m.base, list.nextUid++);
        return list;
      });
      return this.openFolder(path, readOnly);
    }
    this.open = { path: [...path], index, keywords: await readKeywords(join(dir, 'dovecot-keywords')) };
    return { uidValidity: BigInt(index.uidValidity), uidNext: index.uidNext, exists: index.messages.length };
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    const index = await this.index(path);
    return { uidValidity: BigInt(index.uidValidity), uidNext: index.uidNext, exists: index.messages.length };
  }

  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    return localFolderStatuses(folders, signal, async (f) => {
      const index = await this.index(f.path);
      // Bytes only when every file name says its size (Dovecot's W=): no file is opened for a count.
      const sizes = index.messages.map((m) => m.virtualSize);
      const bytes = sizes.every((s) => s !== undefined) ? sizes.reduce((n: number, s) => n + s!, 0) : undefined;
      return { uidValidity: BigInt(index.uidValidity), uidNext: index.uidNext, exists: index.messages.length, ...(bytes !== undefined ? { bytes } : {}) };
    });
  }

  async closeFolder(): Promise<void> {
    this.open = undefined;
  }

  async listMessages(signal?: AbortSignal, options: ListingRequest = {}): Promise<MessageListing> {
    const open = this.requireOpen();
    const wanted = listingWanted(options);
    const listing: MessageListing = { messages: [], failures: [] };
    for (const m of open.index.messages) {
      signal?.throwIfAborted();
      if (!wanted(m.uid)) continue;
      const file = join(open.index.dir, m.rel);
      if (m.notAFile) {
        listing.failures.push({ uid: m.uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${file} is ${m.notAFile}; it was left out.`, { scope: 'message' }) });
        continue;
      }
      try {
        const [{ headers, fileSize, looksLikeMessage }, st] = await Promise.all([readHeaderBlock(file), lstat(file)]);
        if (!looksLikeMessage) {
          listing.failures.push({ uid: m.uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${file} is not a message (${fileSize === 0 ? 'an empty file' : 'it does not start with a header field'}); it was left out.`, { scope: 'message' }) });
          continue;
        }
        const size = m.virtualSize ?? servedSize(await readFile(file));
        const meta: MessageMeta = {
          uid: m.uid,
          size,
          flags: flagsOf(m.letters, open.keywords),
          internalDate: st.mtimeMs,
          key: messageKey(headers),
          messageId: extractMessageId(headers),
        };
        listing.messages.push(meta);
      } catch (err) {
        listing.failures.push({ uid: m.uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${file} could not be read: ${(err as Error).message}`, { scope: 'message', cause: err }) });
      }
    }
    return listing;
  }

  async listUids(): Promise<number[]> {
    return this.requireOpen().index.messages.map((m) => m.uid);
  }

  async listFlags(): Promise<{ uid: number; flags: string[] }[]> {
    const open = this.requireOpen();
    return open.index.messages.map((m) => ({ uid: m.uid, flags: flagsOf(m.letters, open.keywords) }));
  }

  async setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    await this.openFolder(path, false);
    const open = this.requireOpen();
    const keywords = [...open.keywords];
    const renames: { from: string; to: string }[] = [];
    for (const item of items) {
      const m = open.index.byUid.get(item.uid);
      if (!m) continue;
      const { letters } = lettersFor(item.flags, keywords);
      renames.push({ from: join(open.index.dir, m.rel), to: join(open.index.dir, 'cur', `${m.base}:2,${letters}`) });
    }
    await this.writeKeywords(open.index.dir, open.keywords, keywords);
    for (const r of renames) if (r.from !== r.to) await rename(r.from, r.to);
    await this.openFolder(path, false);
  }

  async deleteMessages(path: readonly string[], uids: readonly number[]): Promise<void> {
    await this.openFolder(path, false);
    const open = this.requireOpen();
    for (const uid of uids) {
      const m = open.index.byUid.get(uid);
      if (m) await unlink(join(open.index.dir, m.rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    await syncDir(join(open.index.dir, 'cur'));
    await this.openFolder(path, false);
  }

  async *fetchBodies(uids: readonly number[], signal?: AbortSignal): AsyncIterable<FetchOutcome> {
    const open = this.requireOpen();
    for (const uid of uids) {
      signal?.throwIfAborted();
      const m = open.index.byUid.get(uid);
      if (!m) {
        yield { uid, missing: true };
        continue;
      }
      if (m.notAFile) {
        yield { uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${join(open.index.dir, m.rel)} is ${m.notAFile}; it was left out.`, { scope: 'message' }) };
        continue;
      }
      try {
        yield { uid, body: await readServed(join(open.index.dir, m.rel)) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') yield { uid, missing: true };
        else yield { uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${join(open.index.dir, m.rel)} could not be read: ${(err as Error).message}`, { scope: 'message', cause: err }) };
      }
    }
  }

  searchUids(): Promise<number[]> {
    return Promise.reject(new MigrateError(ERROR_CODES.CONFIG_OPTION, 'A Maildir has no IMAP SEARCH: select messages with --since, --before, --max-age, --min-age or --min-size instead of --search.', { scope: 'mailbox' }));
  }

  async existingUids(uids: readonly number[]): Promise<Set<number>> {
    const open = this.requireOpen();
    const fresh = await indexFolder(open.index.dir);
    return new Set(uids.filter((u) => fresh.byUid.has(u) && fresh.byUid.get(u)!.base === open.index.byUid.get(u)?.base));
  }

  async appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]> {
    const dir = folderDir(this.opts.root, this.opts.layout, path);
    if (!(await isMaildir(dir))) await makeFolder(this.opts.root, this.opts.layout, path);
    const before = await readKeywords(join(dir, 'dovecot-keywords'));
    const keywords = [...before];
    const planned = items.map((item) => lettersFor(item.flags, keywords));
    // The keyword table is written before any file that uses its letters.
    await this.writeKeywords(dir, before, keywords);
    const delivered: ({ base: string } | { error: Error })[] = [];
    for (const [i, item] of items.entries()) {
      signal?.throwIfAborted();
      try {
        delivered.push(await deliver(dir, item.body, planned[i]!.letters, item.internalDate));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
          throw new MigrateError(ERROR_CODES.DEST_OVERQUOTA, `The destination Maildir ${this.opts.root} is full (${e.code}): free space, then run again.`, { scope: 'mailbox', cause: err });
        }
        delivered.push({ error: new MigrateError(ERROR_CODES.APPEND_FAILED, `Writing a message into ${dir} failed: ${e.message}`, { scope: 'message', cause: err }) });
      }
    }
    await syncDir(join(dir, 'cur'));
    const uids = new Map<string, number>();
    await updateUidList(dir, (list) => {
      for (const d of delivered) if ('base' in d) {
        uids.set(d.base, list.nextUid);
        list.uids.set(d.base, list.nextUid++);
      }
      return list;
    });
    if (this.open && this.open.index.dir === dir) this.open = undefined;
    return delivered.map((d) => ('base' in d ? { ok: true, uid: uids.get(d.base) } : { ok: false, error: d.error }));
  }

  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    return pollForChange(async () => (await this.folderStatus(path))!, timeoutMs, signal, sinceUidNext);
  }

  isUsable(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.open = undefined;
  }

  private requireOpen(): NonNullable<MaildirStore['open']> {
    if (!this.open) throw new MigrateError(ERROR_CODES.INTERNAL, 'No Maildir folder is open.', { scope: 'folder' });
    return this.open;
  }

  private async index(path: readonly string[]): Promise<FolderIndex> {
    let dir: string;
    try {
      dir = folderDir(this.opts.root, this.opts.layout, path);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${path.join('/')}" cannot be stored in a Maildir: ${(err as Error).message}`, { scope: 'folder' });
    }
    if (!(await isMaildir(dir))) throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${path.join(layoutDelimiter(this.opts.layout))}" does not exist in the Maildir ${this.opts.root}.`, { scope: 'folder' });
    try {
      return await indexFolder(dir);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `Reading the Maildir folder ${dir} failed: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
  }

  private async writeKeywords(dir: string, before: readonly (string | undefined)[], after: readonly (string | undefined)[]): Promise<void> {
    if (after.length === before.length && after.every((k, i) => k === before[i])) return;
    const tmp = join(dir, `.dovecot-keywords.${process.pid}.tmp`);
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, keywordsText(after), { mode: 0o600 });
    await rename(tmp, join(dir, 'dovecot-keywords'));
  }
}
