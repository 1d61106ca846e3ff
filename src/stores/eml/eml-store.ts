/**
 * A tree of `.eml` files (one message per file; Outlook, Thunderbird add-ons and many exporters
 * write these) as a {@link MailStore}: `eml:/abs/dir`. Folder `A/B` is the directory `A/B`
 * (names in UTF-8, as people read them), INBOX is `INBOX/` (or, in a tree without one, the `.eml`
 * files at the top). Each folder written by mailmover has a manifest (manifest.ts) with UIDs,
 * flags and dates, so a round trip keeps them.
 *
 * A source tree is only read; files are written only below the root, through names checked here,
 * and no symbolic link is followed.
 */
import { lstat, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { safeSegment, type NameSpace } from '../../core/mailbox-path.js';
import { extractMessageId, messageKey } from '../../core/message-key.js';
import { readHeaderBlock, readServed, servedSize, syncDir } from '../local/message-file.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import { indexEmlFolder, isRealDir, MANIFEST, newManifest, readManifest, writeManifest, type EmlIndex, type Manifest } from './manifest.js';
import { localFolderStatuses, pollForChange } from '../local/folder-statuses.js';
import { type ListingRequest, listingWanted } from '../local/listing-filter.js';
import { timeOf } from '../../core/internal-date.js';

const SUBSCRIPTIONS = '.mailmover-subscriptions.json';
const MAX_DEPTH = 64;

export interface EmlStoreOptions {
  root: string;
  side: 'source' | 'destination';
}

export class EmlStore implements MailStore {
  private current: { path: string[]; dir: string; index: EmlIndex } | undefined;
  private closed = false;

  constructor(private readonly opts: EmlStoreOptions) {}

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const { root, side } = this.opts;
    const st = await lstat(root).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === 'ENOENT' && side === 'destination') {
        const parent = await stat(dirname(root)).catch(() => undefined);
        if (!parent?.isDirectory()) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The destination EML folder ${root} does not exist, nor does its parent directory: create the parent first.`, { scope: 'mailbox' });
        await mkdir(root, { mode: 0o700 });
        return;
      }
      throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The ${side} EML folder ${root} cannot be opened: ${st.code === 'ENOENT' ? 'it does not exist' : st.message}.`, { scope: 'mailbox' });
    }
    if (!st.isDirectory()) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The ${side} EML folder ${root} is not a directory.`, { scope: 'mailbox' });
  }

  caps(): StoreCaps {
    // Hidden levels (".", "..", ".x") are renamed by the planner: never a directory that climbs out or hides.
    return { multiAppend: true, appendUid: true, appendLimit: undefined, literalPlus: false, reservedNames: ['.*'], mailOrChildren: false, search: false };
  }

  namespace(): NameSpace {
    return { prefix: '', delimiter: '/' };
  }

  async listFolders(): Promise<FolderListing> {
    const { root } = this.opts;
    const subscribed = new Set((await this.subscriptions()).map((p) => p.join('\u0000')));
    const folders: FolderInfo[] = [];
    const unreadable: string[] = [];
    const add = (path: string[], noSelect = false) => folders.push({ path, name: path.join('/'), delimiter: '/', noSelect, subscribed: subscribed.has(path.join('\u0000')), specialUse: undefined });
    add(['INBOX']);
    const walk = async (dir: string, prefix: string[], depth: number): Promise<void> => {
      if (depth > MAX_DEPTH) return;
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (entry.name.startsWith('.')) continue;
        if (!entry.isDirectory()) {
          // A link to a directory is a folder this store will not read (links are never followed).
          if (entry.isSymbolicLink() && !/\.eml$/i.test(entry.name)) unreadable.push(`${join(dir, entry.name)} (a symbolic link: not followed)`);
          continue;
        }
        const path = [...prefix, entry.name];
        // A directory with neither a manifest nor .eml files is only a parent (IMAP's \Noselect):
        // what mailmover creates as a folder gets a manifest at once.
        if (!(path.length === 1 && path[0]!.toUpperCase() === 'INBOX')) add(path, !(await holdsMessages(join(dir, entry.name))));
        await walk(join(dir, entry.name), path, depth + 1);
      }
    };
    await walk(root, [], 0);
    return { folders, unreadable, otherNamespaces: [] };
  }

  async createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    const dir = await this.folderDir(path);
    const existed = await isRealDir(dir);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (!(await readManifest(dir))) await writeManifest(dir, newManifest());
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_CREATE_FAILED, `Creating folder "${path.join('/')}" in ${this.opts.root} failed: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
    return { created: !existed, name: path.join('/') };
  }

  async subscribe(path: readonly string[]): Promise<void> {
    const current = await this.subscriptions();
    if (current.some((p) => p.join('\u0000') === path.join('\u0000'))) return;
    current.push([...path]);
    const tmp = join(this.opts.root, `${SUBSCRIPTIONS}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(current), { mode: 0o600 });
    await rename(tmp, join(this.opts.root, SUBSCRIPTIONS));
  }

  async openFolder(path: readonly string[], readOnly: boolean): Promise<FolderStatus> {
    const dir = await this.folderDir(path);
    let index = await this.index(path, dir);
    if (!readOnly && this.opts.side === 'destination' && (await isRealDir(dir))) index = await this.adopt(dir, index);
    this.current = { path: [...path], dir, index };
    return { uidValidity: BigInt(index.uidValidity), uidNext: index.uidNext, exists: index.messages.length };
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    const index = await this.index(path, await this.folderDir(path));
    return { uidValidity: BigInt(index.uidValidity), uidNext: index.uidNext, exists: index.messages.length };
  }

  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    return localFolderStatuses(folders, signal, (f) => this.folderStatus(f.path));
  }

  async closeFolder(): Promise<void> {
    this.current = undefined;
  }

  async listMessages(signal?: AbortSignal, options: ListingRequest = {}): Promise<MessageListing> {
    const cur = this.requireOpen();
    const wanted = listingWanted(options);
    const listing: MessageListing = { messages: [], failures: [] };
    for (const m of cur.index.messages) {
      signal?.throwIfAborted();
      if (!wanted(m.uid)) continue;
      const file = join(cur.dir, m.file);
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
        listing.messages.push({
          uid: m.uid,
          size: servedSize(await readFile(file)),
          flags: m.flags,
          internalDate: timeOf(m.internalDate) ?? Math.floor(st.mtimeMs / 1000) * 1000,
          key: messageKey(headers),
          messageId: extractMessageId(headers),
        });
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
    return this.requireOpen().index.messages.map((m) => ({ uid: m.uid, flags: m.flags }));
  }

  async setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    await this.openFolder(path, false);
    const cur = this.requireOpen();
    const manifest = cur.index.manifest!;
    for (const item of items) {
      const m = cur.index.byUid.get(item.uid);
      if (m && manifest.messages[m.file]) manifest.messages[m.file]!.flags = [...item.flags];
    }
    await writeManifest(cur.dir, manifest);
    await this.openFolder(path, false);
  }

  async deleteMessages(path: readonly string[], uids: readonly number[]): Promise<void> {
    await this.openFolder(path, false);
    const cur = this.requireOpen();
    for (const uid of uids) {
      const m = cur.index.byUid.get(uid);
      if (!m) continue;
      await unlink(join(cur.dir, m.file)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      if (cur.index.manifest) delete cur.index.manifest.messages[m.file];
    }
    if (cur.index.manifest) await writeManifest(cur.dir, cur.index.manifest);
    await syncDir(cur.dir);
    await this.openFolder(path, false);
  }

  async *fetchBodies(uids: readonly number[], signal?: AbortSignal): AsyncIterable<FetchOutcome> {
    const cur = this.requireOpen();
    for (const uid of uids) {
      signal?.throwIfAborted();
      const m = cur.index.byUid.get(uid);
      if (!m) {
        yield { uid, missing: true };
        continue;
      }
      if (m.notAFile) {
        yield { uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${join(cur.dir, m.file)} is ${m.notAFile}; it was left out.`, { scope: 'message' }) };
        continue;
      }
      try {
        yield { uid, body: await readServed(join(cur.dir, m.file)) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') yield { uid, missing: true };
        else yield { uid, error: new MigrateError(ERROR_CODES.ARCHIVE_MESSAGE, `${join(cur.dir, m.file)} could not be read: ${(err as Error).message}`, { scope: 'message', cause: err }) };
      }
    }
  }

  searchUids(): Promise<number[]> {
    return Promise.reject(new MigrateError(ERROR_CODES.CONFIG_OPTION, 'An EML tree has no IMAP SEARCH: select messages with --since, --before, --max-age, --min-age or --min-size instead of --search.', { scope: 'mailbox' }));
  }

  async existingUids(uids: readonly number[]): Promise<Set<number>> {
    const cur = this.requireOpen();
    const fresh = await indexEmlFolder(cur.dir);
    return new Set(uids.filter((u) => fresh.byUid.get(u)?.file === cur.index.byUid.get(u)?.file && fresh.byUid.has(u)));
  }

  async appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]> {
    const dir = await this.folderDir(path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const index = await this.adopt(dir, await indexEmlFolder(dir));
    const manifest = index.manifest!;
    const existing = new Set(index.messages.map((m) => m.file));
    const planned = items.map((item) => {
      const uid = manifest.nextUid++;
      let file = `${String(uid).padStart(6, '0')}.eml`;
      for (let n = 2; existing.has(file) || manifest.messages[file]; n++) file = `${String(uid).padStart(6, '0')}-${n}.eml`;
      manifest.messages[file] = { uid, flags: [...item.flags], ...(item.internalDate ? { internalDate: item.internalDate.toISOString() } : {}) };
      return { uid, file, item };
    });
    // The manifest first: a crash leaves entries for files that never arrived (ignored), never a
    // file without its flags and date.
    await writeManifest(dir, manifest);
    const out: AppendOutcome[] = [];
    for (const { uid, file, item } of planned) {
      signal?.throwIfAborted();
      try {
        await writeMessageFile(dir, file, item);
        out.push({ ok: true, uid });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOSPC' || e.code === 'EDQUOT') throw new MigrateError(ERROR_CODES.DEST_OVERQUOTA, `The destination ${this.opts.root} is full (${e.code}): free space, then run again.`, { scope: 'mailbox', cause: err });
        out.push({ ok: false, error: new MigrateError(ERROR_CODES.APPEND_FAILED, `Writing ${join(dir, file)} failed: ${e.message}`, { scope: 'message', cause: err }) });
      }
    }
    await syncDir(dir);
    if (this.current?.dir === dir) this.current = undefined;
    return out;
  }

  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    return pollForChange(async () => (await this.folderStatus(path))!, timeoutMs, signal, sinceUidNext);
  }

  isUsable(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current = undefined;
  }

  private requireOpen(): NonNullable<EmlStore['current']> {
    if (!this.current) throw new MigrateError(ERROR_CODES.INTERNAL, 'No EML folder is open.', { scope: 'folder' });
    return this.current;
  }

  /** A folder's directory; names that could leave the root are refused. */
  private async folderDir(path: readonly string[]): Promise<string> {
    const { root } = this.opts;
    // Spelled as an IMAP store spells a name for its server (core/mailbox-path.ts), then checked again.
    path = path.map((raw) => safeSegment(raw, '/'));
    for (const seg of path) {
      // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
      if (seg === '' || seg.startsWith('.') || /[/\u0000-\u001f]/.test(seg)) {
        throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder name segment "${seg}" cannot be a directory of an EML tree.`, { scope: 'folder' });
      }
    }
    if (path.length === 1 && path[0]!.toUpperCase() === 'INBOX') {
      const inbox = join(root, 'INBOX');
      if (await isRealDir(inbox)) return inbox;
      // A tree without INBOX/ (one exported folder): the .eml files at the top are its INBOX.
      const top = await readdir(root).catch(() => [] as string[]);
      return top.some((n) => /\.eml$/i.test(n)) ? root : inbox;
    }
    return join(root, ...path);
  }

  private async index(path: readonly string[], dir: string): Promise<EmlIndex> {
    if (!(await isRealDir(dir))) {
      if (path.length === 1 && path[0]!.toUpperCase() === 'INBOX') return { uidValidity: 1, uidNext: 1, messages: [], byUid: new Map(), manifest: undefined, ignored: [] };
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `The folder "${path.join('/')}" does not exist in ${this.opts.root}.`, { scope: 'folder' });
    }
    try {
      return await indexEmlFolder(dir);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.FOLDER_SELECT_FAILED, `Reading ${dir} failed: ${(err as Error).message}`, { scope: 'folder', cause: err });
    }
  }

  /** Destination only: files no manifest names (another writer's) are recorded, so new UIDs never collide with them. */
  private async adopt(dir: string, index: EmlIndex): Promise<EmlIndex> {
    const manifest: Manifest = index.manifest ?? (await readManifest(dir)) ?? newManifest();
    const missing = index.messages.filter((m) => !manifest.messages[m.file]);
    if (missing.length === 0 && index.manifest) return index;
    for (const m of missing) {
      const st = await lstat(join(dir, m.file)).catch(() => undefined);
      manifest.messages[m.file] = { uid: manifest.nextUid++, flags: [], ...(st ? { internalDate: new Date(Math.floor(st.mtimeMs / 1000) * 1000).toISOString() } : {}) };
    }
    await writeManifest(dir, manifest);
    return indexEmlFolder(dir);
  }

  private async subscriptions(): Promise<string[][]> {
    try {
      const parsed = JSON.parse(await readFile(join(this.opts.root, SUBSCRIPTIONS), 'utf8')) as unknown;
      return Array.isArray(parsed) ? parsed.filter((p): p is string[] => Array.isArray(p) && p.every((s) => typeof s === 'string')) : [];
    } catch {
      return [];
    }
  }
}

/** True when a directory is a folder of its own: it has a manifest or .eml files. */
async function holdsMessages(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.some((n) => n === MANIFEST || /\.eml$/i.test(n));
}

/** Writes one .eml file: a hidden temporary name, synced, dated, renamed into place. */
async function writeMessageFile(dir: string, file: string, item: AppendItem): Promise<void> {
  const tmp = join(dir, `.${file}.${process.pid}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(item.body);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  if (item.internalDate && !Number.isNaN(item.internalDate.getTime())) await utimes(tmp, item.internalDate, item.internalDate);
  await rename(tmp, join(dir, file));
}
