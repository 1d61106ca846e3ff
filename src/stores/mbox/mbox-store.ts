/**
 * mbox files as a {@link MailStore}: `mbox:/abs/file` (one file, INBOX) or `mbox:/abs/dir` (a tree
 * of mbox files, see layout.ts), and a Gmail Takeout file read by its labels (`?labels=`, see
 * takeout.ts). Files are indexed in one streaming pass (mbox-index.ts) and messages read by byte
 * range, so a file of many gigabytes is never held in memory.
 *
 * A source is only read (no lock file is made beside it, nothing is rewritten), except by
 * `--delete-source`: then, once the copies are proven, the file is rewritten without the moved
 * messages under the write locks (mbox-writer.ts), and only when every message to remove is still
 * the one that was listed under that UID. A destination is written in Dovecot's layout, with
 * Dovecot's X-UID and X-IMAPbase, under the dotlock and the fcntl lock. No symbolic link inside a
 * tree is followed.
 */
import { lstat, mkdir, open, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import type { NameSpace } from '../../core/mailbox-path.js';
import { extractMessageId, messageKey } from '../../core/message-key.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import { addSubscription, folderFile, inboxFile, listTree, looksLikeMbox, makeParents, readSubscriptions } from './layout.js';
import { emptyValidity, MboxFiles } from './mbox-file.js';
import { appendMessages, rewriteFile } from './mbox-writer.js';
import { NotAnMboxError, type MboxEntry, type MboxIndex } from './mbox-index.js';
import { headerEnd } from './messages.js';
import { applyLabels, ARCHIVE, SPECIAL_LABELS, splitLabels, type LabelMode, type Labelled } from './takeout.js';
import { localFolderStatuses, pollForChange } from '../local/folder-statuses.js';
import { type ListingRequest, listingWanted } from '../local/listing-filter.js';
import { timeOf } from '../../core/internal-date.js';

export interface MboxStoreOptions {
  root: string;
  side: 'source' | 'destination';
  labels?: LabelMode | undefined;
  logger?: Logger | undefined;
}

/** One open folder: its file, and the messages of the file that are in it. */
interface OpenFolder {
  path: string[];
  file: string;
  index: MboxIndex;
  messages: MboxEntry[];
  byUid: Map<number, MboxEntry>;
  flags: Map<number, string[]>;
  /** The identity of each message listed (see core/message-key.ts). */
  keys: Map<number, string>;
}


export class MboxStore implements MailStore {
  private mode: 'file' | 'tree' = 'tree';
  private readonly files: MboxFiles;
  private current: OpenFolder | undefined;
  /** Each folder as last opened (listed), by path. */
  private readonly opened = new Map<string, OpenFolder>();
  private labelled: Labelled[] | undefined;
  private closed = false;

  constructor(private readonly opts: MboxStoreOptions) {
    this.files = new MboxFiles({ labels: !!opts.labels, logger: opts.logger });
  }

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const { root, side } = this.opts;
    const st = await stat(root).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === 'ENOENT' && side === 'destination') {
        // A new archive: its parent must exist, so that a mistyped path is not created far away.
        const parent = await stat(dirname(root)).catch(() => undefined);
        if (!parent?.isDirectory()) throw this.openError(`The destination mbox ${root} does not exist, nor does its parent directory: create the parent first.`);
        if (/\.(mbox|mbx)$/i.test(basename(root))) {
          await (await open(root, 'a', 0o600)).close();
          this.mode = 'file';
        } else await mkdir(root, { mode: 0o700 });
        return;
      }
      throw this.openError(`The ${side} mbox ${root} cannot be opened: ${st.code === 'ENOENT' ? 'it does not exist' : st.message}.`);
    }
    if (st.isDirectory()) {
      if (this.opts.labels) throw this.openError(`${root} is a directory: ?labels= reads one Gmail Takeout file (name the .mbox file).`);
      this.mode = 'tree';
      return;
    }
    if (!st.isFile()) throw this.openError(`The ${side} mbox ${root} is neither a file nor a directory.`);
    if (!(await looksLikeMbox(root))) throw this.openError(`${root} is not an mbox file: it does not start with a "From " line. Name an mbox file (or a directory of them).`);
    this.mode = 'file';
  }

  caps(): StoreCaps {
    // Hidden levels, Thunderbird's child directories and lock files are renamed by the planner.
    return { multiAppend: true, appendUid: true, appendLimit: undefined, literalPlus: false, reservedNames: ['.*', '*.sbd', '*.msf', '*.lock'], mailOrChildren: true, search: false };
  }

  namespace(): NameSpace {
    return { prefix: '', delimiter: '/' };
  }

  async listFolders(): Promise<FolderListing> {
    const info = (path: string[], noSelect: boolean, subscribed: boolean, specialUse?: string): FolderInfo => ({ path, name: path.join('/'), delimiter: '/', noSelect, subscribed, specialUse });
    if (this.opts.labels) {
      const paths = new Map<string, string[]>([['INBOX', ['INBOX']]]);
      for (const l of await this.labels()) for (const p of l.folders) paths.set(p.join('\u0000'), p);
      const special = new Map([...SPECIAL_LABELS.values(), ARCHIVE].map((s) => [s.path.join('\u0000'), s.specialUse]));
      const folders: FolderInfo[] = [];
      const seen = new Set<string>();
      for (const p of paths.values()) {
        for (let i = 1; i < p.length; i++) if (!paths.has(p.slice(0, i).join('\u0000')) && !seen.has(p.slice(0, i).join('\u0000'))) {
          seen.add(p.slice(0, i).join('\u0000'));
          folders.push(info(p.slice(0, i), true, false));
        }
        folders.push(info(p, false, true, special.get(p.join('\u0000'))));
      }
      return { folders, unreadable: [], otherNamespaces: [] };
    }
    if (this.mode === 'file') return { folders: [info(['INBOX'], false, true)], unreadable: [], otherNamespaces: [] };
    const { folders, skipped } = await listTree(this.opts.root);
    const subscribed = new Set((await readSubscriptions(this.opts.root)).map((p) => p.join('\u0000')));
    return {
      folders: folders.map((f) => info(f.path, !f.file && !isInbox(f.path), subscribed.has(f.path.join('\u0000')))),
      unreadable: skipped,
      otherNamespaces: [],
    };
  }

  async createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    const name = path.join('/');
    if (this.mode === 'file' || this.opts.labels) {
      if (isInbox(path)) return { created: false, name };
      throw new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, `Folder "${name}" cannot be created: ${this.opts.root} is a single mbox file, which holds INBOX only. Name a directory to write a tree of folders.`, { scope: 'folder' });
    }
    try {
      const file = folderFile(this.opts.root, path);
      const st = await lstat(file).catch(() => undefined);
      if (st) return { created: false, name };
      await makeParents(this.opts.root, path);
      await (await open(file, 'a', 0o600)).close();
      return { created: true, name };
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, `Creating folder "${name}" in ${this.opts.root} failed: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
  }

  async subscribe(path: readonly string[]): Promise<void> {
    if (this.mode === 'tree') await addSubscription(this.opts.root, path);
  }

  async openFolder(path: readonly string[]): Promise<FolderStatus> {
    this.current = await this.load(path);
    this.opened.set(path.join('\u0000'), this.current);
    return this.statusOf(this.current);
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    return this.statusOf(await this.load(path));
  }

  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    // No bytes: a message's size as served is known only once it has been read.
    return localFolderStatuses(folders, signal, async (f) => this.statusOf(await this.load(f.path, signal)));
  }

  async closeFolder(): Promise<void> {
    this.current = undefined;
  }

  async listMessages(signal?: AbortSignal, options: ListingRequest = {}): Promise<MessageListing> {
    const cur = this.requireOpen();
    const wanted = listingWanted(options);
    const listing: MessageListing = { messages: [], failures: [] };
    for (const m of cur.messages) {
      signal?.throwIfAborted();
      if (!wanted(m.uid)) continue;
      if (m.broken) {
        listing.failures.push({ uid: m.uid, error: this.messageError(cur.file, m, m.broken) });
        continue;
      }
      try {
        const body = await this.files.served(cur.file, m);
        const headers = body.subarray(0, headerEnd(body));
        const key = messageKey(headers);
        cur.keys.set(m.uid, key);
        listing.messages.push({ uid: m.uid, size: body.length, flags: cur.flags.get(m.uid)!, internalDate: timeOf(m.internalDate), key, messageId: extractMessageId(headers) });
      } catch (err) {
        listing.failures.push({ uid: m.uid, error: this.messageError(cur.file, m, `could not be read: ${(err as Error).message}`, err) });
      }
    }
    return listing;
  }

  async listUids(): Promise<number[]> {
    return this.requireOpen().messages.map((m) => m.uid);
  }

  async listFlags(): Promise<{ uid: number; flags: string[] }[]> {
    const cur = this.requireOpen();
    return cur.messages.map((m) => ({ uid: m.uid, flags: cur.flags.get(m.uid)! }));
  }

  async setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    const folder = await this.load(path);
    this.refuseSource('change flags in');
    await rewriteFile(this.files, folder.file, { flags: new Map(items.map((i) => [i.uid, i.flags])), drop: new Set(), check: (index) => this.sameFile(folder, index) });
    this.current = undefined;
  }

  async deleteMessages(path: readonly string[], uids: readonly number[]): Promise<void> {
    if (uids.length === 0) return;
    if (this.opts.labels) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `mailmover does not delete messages from a Gmail Takeout file read by its labels (${this.opts.root}): a message is in several folders there.`, { scope: 'mailbox' });
    // The folder as it was listed: its messages are what the UIDs name.
    const folder = this.opened.get(path.join('\u0000')) ?? (await this.load(path));
    const drop = new Set(uids);
    await rewriteFile(this.files, folder.file, {
      flags: new Map(),
      drop,
      keepCutTail: this.opts.side === 'source',
      // Under the locks: each UID still names the message that was listed under it.
      check: async (index) => {
        this.sameFile(folder, index);
        const now = new Map(index.messages.map((m) => [m.uid, m]));
        for (const uid of drop) {
          const was = folder.byUid.get(uid);
          const is = now.get(uid);
          // Positions (no X-UID): the message must also be where it was, with the identity it was listed with.
          if (was && is && (index.uidNext !== undefined || (is.from === was.from && is.end === was.end && (await this.keyOf(folder.file, is)) === folder.keys.get(uid)))) continue;
          throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `${folder.file} changed since it was listed (message UID ${uid} is not where it was): nothing was removed from it; run again.`, { scope: 'folder' });
        }
      },
    });
    this.current = undefined;
    this.opened.delete(path.join('\u0000'));
  }

  private async keyOf(file: string, m: MboxEntry): Promise<string | undefined> {
    if (m.broken) return undefined;
    const body = await this.files.served(file, m);
    return messageKey(body.subarray(0, headerEnd(body)));
  }

  /** Throws unless the file still has the UIDVALIDITY it was listed with. */
  private sameFile(folder: OpenFolder, index: { uidValidity: number; messages: unknown[] }): void {
    const listed = folder.messages.length > 0 ? folder.index.uidValidity : undefined;
    if (listed === undefined || index.messages.length === 0 || index.uidValidity === listed) return;
    throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `${folder.file} was rewritten by another program since it was listed (its UIDVALIDITY changed): it was left as it is; run again.`, { scope: 'folder' });
  }

  async *fetchBodies(uids: readonly number[], signal?: AbortSignal): AsyncIterable<FetchOutcome> {
    const cur = this.requireOpen();
    for (const uid of uids) {
      signal?.throwIfAborted();
      const m = cur.byUid.get(uid);
      if (!m) {
        yield { uid, missing: true };
        continue;
      }
      if (m.broken) {
        yield { uid, error: this.messageError(cur.file, m, m.broken) };
        continue;
      }
      try {
        yield { uid, body: await this.files.served(cur.file, m) };
      } catch (err) {
        yield { uid, error: this.messageError(cur.file, m, `could not be read: ${(err as Error).message}`, err) };
      }
    }
  }

  searchUids(): Promise<number[]> {
    return Promise.reject(new MigrateError(ERROR_CODES.CONFIG_OPTION, 'An mbox file has no IMAP SEARCH: select messages with --since, --before, --max-age, --min-age or --min-size instead of --search.', { scope: 'mailbox' }));
  }

  async existingUids(uids: readonly number[]): Promise<Set<number>> {
    const cur = this.requireOpen();
    const fresh = await this.load(cur.path);
    // UIDs of the file's own (X-UID) stay across rewrites; positions only while the message stays where it was.
    const own = fresh.index.uidNext !== undefined && fresh.index.uidValidity === cur.index.uidValidity;
    return new Set(uids.filter((u) => fresh.byUid.has(u) && (own || fresh.byUid.get(u)!.from === cur.byUid.get(u)?.from)));
  }

  async appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]> {
    this.refuseSource('write to');
    let file: string;
    try {
      file = await this.fileOf(path);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${path.join('/')}" cannot be written in ${this.opts.root}: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
    if (!(await lstat(file).catch(() => undefined))) await this.createFolder(path);
    try {
      const written = await appendMessages(this.files, file, items, signal);
      if (this.current?.file === file) this.current = undefined;
      return written.map((w) => ('uid' in w ? { ok: true, uid: w.uid } : { ok: false, error: new MigrateError(ERROR_CODES.APPEND_FAILED, `Writing a message into ${file} failed: ${w.error.message}`, { scope: 'message', cause: w.error }) }));
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT') throw new MigrateError(ERROR_CODES.DEST_OVERQUOTA, `The destination ${this.opts.root} is full (${e.code}): free space, then run again.`, { scope: 'mailbox', cause: err });
      throw new MigrateError(ERROR_CODES.APPEND_FAILED, `Writing into ${file} failed: ${e.message}`, { scope: 'folder', cause: err });
    }
  }

  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    return pollForChange(async () => this.statusOf(await this.load(path)), timeoutMs, signal, sinceUidNext);
  }

  isUsable(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current = undefined;
  }

  private statusOf(f: OpenFolder): FolderStatus {
    // UIDNEXT only where the file keeps UIDs (X-IMAPbase): positions are no promise for later.
    return { uidValidity: BigInt(f.index.uidValidity), uidNext: this.opts.labels ? undefined : f.index.uidNext, exists: f.messages.length };
  }

  /** Indexes a folder's file (a destination's cut tail cut back first). */
  private async load(path: readonly string[], signal?: AbortSignal): Promise<OpenFolder> {
    const name = path.join('/');
    let file: string;
    try {
      file = await this.fileOf(path);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${name}" cannot be in ${this.opts.root}: ${(err as Error).message}`, { scope: 'folder' });
    }
    const st = await lstat(file).catch(() => undefined);
    if (!st?.isFile()) {
      // A folder that holds only folders (a directory), and a tree's INBOX before its first message: empty.
      if ((st?.isDirectory() && !st.isSymbolicLink()) || (!st && isInbox(path) && this.mode === 'tree')) return this.view(path, file, { messages: [], uidValidity: emptyValidity(file), uidNext: 1, base: undefined, baseAt: undefined, size: 0, cutAt: undefined, appendPrefix: '' });
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${name}" ${st ? 'is not an mbox file' : 'does not exist'} in ${this.opts.root}.`, { scope: 'folder' });
    }
    try {
      // A destination is mailmover's to write: a tail cut off by an earlier run is cut back before it is listed.
      const index = this.opts.side === 'destination' ? await this.files.repaired(file, signal) : await this.files.index(file, signal);
      return this.view(path, file, index);
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      const why = err instanceof NotAnMboxError ? `it is not an mbox file (${err.message})` : (err as Error).message;
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `Reading ${file} failed: ${why}.`, { scope: 'folder', cause: err });
    }
  }

  /** The messages of a file that are in a folder (all of them, unless the file is read by labels). */
  private view(path: readonly string[], file: string, index: MboxIndex): OpenFolder {
    let messages = index.messages;
    const flags = new Map<number, string[]>();
    if (this.opts.labels) {
      const key = path.join('\u0000');
      const labelled = index.messages.map((m) => applyLabels(splitLabels(m.labels ?? ''), this.opts.labels!));
      this.labelled = labelled;
      messages = index.messages.filter((_, i) => labelled[i]!.folders.some((p) => p.join('\u0000') === key));
      index.messages.forEach((m, i) => {
        const l = labelled[i]!;
        flags.set(m.uid, [...new Set([...m.flags.filter((f) => !l.unflags.includes(f)), ...l.flags])]);
      });
    } else for (const m of messages) flags.set(m.uid, m.flags);
    return { path: [...path], file, index, messages, byUid: new Map(messages.map((m) => [m.uid, m])), flags, keys: new Map() };
  }

  /** The labels of every message of a Takeout file. */
  private async labels(): Promise<Labelled[]> {
    if (!this.labelled) this.view(['INBOX'], this.opts.root, await this.files.index(this.opts.root));
    return this.labelled!;
  }

  /** A folder's file: an existing one as listed (either layout), else where Dovecot's layout puts it. */
  private async fileOf(path: readonly string[]): Promise<string> {
    const { root } = this.opts;
    if (this.mode === 'file' || this.opts.labels) {
      if (isInbox(path) || this.opts.labels) return root;
      throw new Error(`${root} is a single mbox file, which holds INBOX only`);
    }
    if (isInbox(path)) return (await inboxFile(root)) ?? folderFile(root, path);
    const { folders } = await listTree(root);
    const found = folders.find((f) => f.file && f.path.join('\u0000') === path.join('\u0000'));
    return found?.file ?? folderFile(root, path);
  }

  private refuseSource(what: string): void {
    if (this.opts.side !== 'source') return;
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `mailmover does not ${what} a source mbox: ${this.opts.root} is only read (--delete-source removes moved messages, nothing else).`, { scope: 'mailbox' });
  }

  private requireOpen(): OpenFolder {
    if (!this.current) throw new MigrateError(ERROR_CODES.INTERNAL, 'No mbox folder is open.', { scope: 'folder' });
    return this.current;
  }

  private openError(message: string): MigrateError {
    return new MigrateError(ERROR_CODES.ARCHIVE_OPEN, message, { scope: 'mailbox' });
  }

  private messageError(file: string, m: MboxEntry, why: string, cause?: unknown): MigrateError {
    return new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${file}, message at byte ${m.from}: ${why}; it was left out.`, { scope: 'message', ...(cause ? { cause } : {}) });
  }
}

function isInbox(path: readonly string[]): boolean {
  return path.length === 1 && path[0]!.toUpperCase() === 'INBOX';
}
