/**
 * An Outlook PST or OST file as a read-only source {@link MailStore}: `pst:/abs/file.pst`.
 *
 * Folders are the file's mail tree (below "Top of Personal Folders" / IPM_SUBTREE); a folder's
 * messages are its mail items, each composed into an RFC 5322 message (compose.ts) when it is
 * listed and again when it is fetched, so that only one message is in memory at a time. UIDs are
 * the items' node ids and UIDVALIDITY comes from the file's record key, so a rerun, with or
 * without the ledger, finds the same messages. Items that are not mail (calendar, contacts,
 * tasks, notes) are counted by class and reported ({@link FolderListing.leftOut}), never turned
 * into messages. Nothing is ever written: writes and --delete-source are refused.
 */
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import type { NameSpace } from '../../core/mailbox-path.js';
import { extractMessageId, messageKey } from '../../core/message-key.js';
import type { AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import { localFolderStatuses, pollForChange } from '../local/folder-statuses.js';
import { type ListingRequest, listingWanted } from '../local/listing-filter.js';
import { composeItem } from './compose.js';
import { indexFolder, type PstFolderIndex } from './folder-index.js';
import { itemDate, itemFlags } from './item-meta.js';
import type { PstArchive, PstFolderNode } from './pst-file.js';
import { acquireArchive, releaseArchive, type SharedArchive } from './shared-archive.js';
import { timeOf } from '../../core/internal-date.js';

export interface PstStoreOptions {
  file: string;
  side: 'source' | 'destination';
}

export class PstStore implements MailStore {
  private archive: PstArchive | undefined;
  private shared: { key: string; shared: SharedArchive } | undefined;
  private current: PstFolderIndex | undefined;
  private closed = false;

  constructor(private readonly opts: PstStoreOptions) {}

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.opts.side === 'destination') throw new MigrateError(ERROR_CODES.CONFIG_URL, `A PST file is a source only: mailmover does not write ${this.opts.file}.`, { scope: 'config' });
    this.shared = await acquireArchive(this.opts.file);
    this.archive = this.shared.shared.archive;
  }

  caps(): StoreCaps {
    return { multiAppend: false, appendUid: false, appendLimit: undefined, literalPlus: false, reservedNames: [], mailOrChildren: false, search: false };
  }

  namespace(): NameSpace {
    return { prefix: '', delimiter: '/' };
  }

  async listFolders(): Promise<FolderListing> {
    const listing: FolderListing = { folders: [], unreadable: [], otherNamespaces: [], broken: [], leftOut: [] };
    const tree = this.tree();
    // Every folder is indexed here, so that what is left out is in the report even for folders the rules leave out.
    const holdsMail = new Set<string>();
    for (const f of tree) {
      if (f.broken) continue;
      let index: PstFolderIndex;
      try {
        index = this.index(f);
      } catch {
        holdsMail.add(f.path.join('\u0000')); // listed, so that opening it reports what is wrong
        continue;
      }
      for (const [kind, count] of index.leftOut) listing.leftOut!.push({ folder: f.path.join('/'), kind, count });
      if (index.uids.length > 0) for (let i = 1; i <= f.path.length; i++) holdsMail.add(f.path.slice(0, i).join('\u0000'));
    }
    for (const f of tree) {
      const name = f.path.join('/');
      if (f.broken) listing.broken!.push({ name, error: this.folderError(f, f.broken) });
      // A calendar, contacts or tasks folder with no mail in or below it is not made at the destination (its items are counted above).
      else if (isMailContainer(f.containerClass) || holdsMail.has(f.path.join('\u0000'))) {
        listing.folders.push({ path: f.path, name, delimiter: '/', noSelect: false, subscribed: true, specialUse: f.specialUse });
      }
    }
    return listing;
  }

  createFolder(): Promise<{ created: boolean; name: string }> {
    return Promise.reject(this.readOnly('create folders in'));
  }

  async subscribe(): Promise<void> {}

  async openFolder(path: readonly string[]): Promise<FolderStatus> {
    this.current = this.load(path);
    return this.statusOf(this.current);
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    return this.statusOf(this.load(path));
  }

  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    // No bytes: a message's size is known only once it has been composed.
    return localFolderStatuses(folders, signal, async (f) => this.statusOf(this.load(f.path, signal)));
  }

  async closeFolder(): Promise<void> {
    this.current = undefined;
  }

  async listMessages(signal?: AbortSignal, options: ListingRequest = {}): Promise<MessageListing> {
    const cur = this.requireOpen();
    const wanted = listingWanted(options);
    const listing: MessageListing = { messages: [], failures: [] };
    for (const uid of cur.uids) {
      signal?.throwIfAborted();
      if (!wanted(uid)) continue;
      const read = await this.read(cur, uid);
      if ('error' in read) {
        listing.failures.push({ uid, error: read.error });
        continue;
      }
      const { body, flags, internalDate } = read;
      const end = body.indexOf('\r\n\r\n');
      const headers = body.subarray(0, end < 0 ? body.length : end + 4);
      listing.messages.push({ uid, size: body.length, flags, internalDate: timeOf(internalDate), key: messageKey(headers), messageId: extractMessageId(headers) });
    }
    return listing;
  }

  async listUids(): Promise<number[]> {
    return [...this.requireOpen().uids];
  }

  async listFlags(): Promise<{ uid: number; flags: string[] }[]> {
    const cur = this.requireOpen();
    const out: { uid: number; flags: string[] }[] = [];
    for (const uid of cur.uids) {
      if (cur.broken.has(uid)) continue;
      try {
        out.push({ uid, flags: itemFlags(this.archive!.loadItem(cur.nodes.get(uid)!)) });
      } catch {
        // An item that cannot be read has no flags to give; listMessages reports it.
      }
    }
    return out;
  }

  setFlags(): Promise<void> {
    return Promise.reject(this.readOnly('change flags in'));
  }

  deleteMessages(): Promise<void> {
    return Promise.reject(this.readOnly('delete messages from'));
  }

  async *fetchBodies(uids: readonly number[], signal?: AbortSignal): AsyncIterable<FetchOutcome> {
    const cur = this.requireOpen();
    for (const uid of uids) {
      signal?.throwIfAborted();
      if (!cur.nodes.has(uid)) {
        yield { uid, missing: true };
        continue;
      }
      const read = await this.read(cur, uid);
      yield 'error' in read ? { uid, error: read.error } : { uid, body: read.body };
    }
  }

  searchUids(): Promise<number[]> {
    return Promise.reject(new MigrateError(ERROR_CODES.CONFIG_OPTION, 'A PST file has no IMAP SEARCH: select messages with --since, --before, --max-age, --min-age or --min-size instead of --search.', { scope: 'mailbox' }));
  }

  async existingUids(uids: readonly number[]): Promise<Set<number>> {
    const cur = this.requireOpen();
    return new Set(uids.filter((u) => cur.nodes.has(u)));
  }

  appendBatch(): Promise<AppendOutcome[]> {
    return Promise.reject(this.readOnly('write to'));
  }

  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    // The file is read once per run (its tree is cached): a PST that changes is read again by the next run.
    return pollForChange(async () => this.statusOf(this.load(path)), timeoutMs, signal, sinceUidNext);
  }

  isUsable(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current = undefined;
    if (this.shared) releaseArchive(this.shared.key);
    this.shared = undefined;
    this.archive = undefined;
  }

  /** Composes one item: its message, flags and date, or the error that costs it (with its folder and subject). */
  private async read(cur: PstFolderIndex, uid: number): Promise<{ body: Buffer; flags: string[]; internalDate: Date | undefined } | { error: MigrateError }> {
    const broken = cur.broken.get(uid);
    if (broken !== undefined) return { error: this.itemError(cur, uid, undefined, broken) };
    let subject: string | undefined;
    try {
      const item = this.archive!.loadItem(cur.nodes.get(uid)!);
      subject = item.subject;
      const composed = await composeItem(item, `${this.archive!.storeKey}/${uid}`, this.archive!.size);
      return { body: composed.body, flags: itemFlags(item), internalDate: itemDate(item) };
    } catch (err) {
      return { error: this.itemError(cur, uid, subject, (err as Error).message, err) };
    }
  }

  private statusOf(f: PstFolderIndex): FolderStatus {
    // No UIDNEXT: node ids are not handed out in order, so no promise can be made about later items.
    return { uidValidity: BigInt(f.uidValidity), uidNext: undefined, exists: f.uids.length };
  }

  private tree(): PstFolderNode[] {
    if (!this.archive) throw new MigrateError(ERROR_CODES.INTERNAL, 'The PST store is not connected.', { scope: 'mailbox' });
    const shared = this.shared!.shared;
    shared.folders ??= this.archive.folders();
    return shared.folders;
  }

  private load(path: readonly string[], signal?: AbortSignal): PstFolderIndex {
    const key = path.join('\u0000');
    const folder = this.tree().find((f) => f.path.join('\u0000') === key);
    if (!folder) throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${path.join('/')}" does not exist in ${this.opts.file}.`, { scope: 'folder' });
    if (folder.broken) throw this.folderError(folder, folder.broken);
    return this.index(folder, signal);
  }

  private index(folder: PstFolderNode, signal?: AbortSignal): PstFolderIndex {
    const indexes = this.shared!.shared.indexes;
    let index = indexes.get(folder.nid);
    if (index) return index;
    try {
      index = indexFolder(this.archive!, folder, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw this.folderError(folder, (err as Error).message, err);
    }
    indexes.set(folder.nid, index);
    return index;
  }

  private requireOpen(): PstFolderIndex {
    if (!this.current) throw new MigrateError(ERROR_CODES.INTERNAL, 'No PST folder is open.', { scope: 'folder' });
    return this.current;
  }

  private readOnly(what: string): MigrateError {
    return new MigrateError(ERROR_CODES.CONFIG_OPTION, `mailmover does not ${what} a PST file: ${this.opts.file} is only read, so --delete-source is not available for a PST source.`, { scope: 'mailbox' });
  }

  private folderError(folder: PstFolderNode, why: string, cause?: unknown): MigrateError {
    return new MigrateError(ERROR_CODES.PST_CORRUPT, `${this.opts.file}, folder "${folder.path.join('/')}" (node ${folder.nid}) cannot be read: ${why}; the folder was left out.`, { scope: 'folder', ...(cause ? { cause } : {}) });
  }

  private itemError(cur: PstFolderIndex, uid: number, subject: string | undefined, why: string, cause?: unknown): MigrateError {
    const what = subject !== undefined ? `the item "${subject}"` : `an item whose subject cannot be read`;
    return new MigrateError(ERROR_CODES.PST_ITEM, `${this.opts.file}, folder "${cur.folder.path.join('/')}": ${what} (node ${uid}) cannot be read: ${why}; it was left out.`, { scope: 'message', ...(cause ? { cause } : {}) });
  }
}

/** Folders made for mail: IPF.Note (and its kinds), IPF.Imap, IPF.Post, and folders with no class. */
function isMailContainer(containerClass: string): boolean {
  return containerClass === '' || /^IPF(\.(Note|Imap|Post)(\.|$)|$)/i.test(containerClass);
}
