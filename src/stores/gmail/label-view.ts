/**
 * A Gmail source read by its labels: a MailStore over the real IMAP source store. When the
 * source offers X-GM-EXT-1 (the capability, not a host name), its folders are the label folders
 * of label-run.ts (plus Trash, Spam and the views the planner leaves out); opening a label folder
 * selects All Mail (read-only) and its listing is the run's All Mail listing cut down to that
 * folder's messages, with flags for \Starred, \Important and (keywords mode) the labels. Bodies
 * are fetched from All Mail by UID. Any other folder, and any source without X-GM-EXT-1, is
 * served by the store underneath as it is.
 */
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { pathKey } from '../../core/mailbox-path.js';
import type { ImapSession } from '../imap/session.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import type { NameSpace } from '../../core/mailbox-path.js';
import { ImapStore } from '../imap/imap-store.js';
import { hasGmailExtension } from './label-fetch.js';
import type { LabelFolder, LabelRun } from './label-run.js';

export class LabelViewStore implements MailStore {
  private gmail = false;
  /** The label folder open now (All Mail is selected for it). */
  private open: LabelFolder | undefined;

  constructor(
    private readonly inner: MailStore & ImapSession,
    private readonly run: LabelRun,
  ) {}

  async connect(signal?: AbortSignal): Promise<void> {
    await this.inner.connect(signal);
    this.gmail = hasGmailExtension(this.inner);
  }

  caps(): StoreCaps {
    return this.inner.caps();
  }

  namespace(): NameSpace {
    return this.inner.namespace();
  }

  async listFolders(options?: { otherNamespaces?: boolean }): Promise<FolderListing> {
    const listing = await this.inner.listFolders(options);
    if (!this.gmail) return listing;
    const folders = await this.run.folders(this.inner, listing.folders);
    return folders ? { ...listing, folders } : listing;
  }

  /** The label folder of a path (and listed name), when it is one. */
  private labelFolder(path: readonly string[], name?: string): LabelFolder | undefined {
    if (!this.run.active) return undefined;
    const byName = this.run.folder(name);
    if (byName || name !== undefined) return byName;
    const key = pathKey(path);
    return this.run.folder(this.run.folderNameOf(key));
  }

  createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    return this.inner.createFolder(path);
  }

  subscribe(path: readonly string[]): Promise<void> {
    return this.inner.subscribe(path);
  }

  async openFolder(path: readonly string[], readOnly: boolean, name?: string): Promise<FolderStatus> {
    const label = this.labelFolder(path, name);
    this.open = undefined;
    if (!label) return this.inner.openFolder(path, readOnly, name);
    const all = this.run.allMail()!;
    const status = await this.inner.openFolder(all.info.path, true, all.info.name);
    if (status.uidValidity !== all.validity) {
      throw new MigrateError(ERROR_CODES.CONNECTION_LOST, `The UIDVALIDITY of "${all.info.name}" changed during the run; the label folder "${label.info.name}" is left for the next run`, { scope: 'folder', retry: 'later' });
    }
    this.open = label;
    const { bytes: _bytes, ...rest } = this.run.status(label);
    return rest;
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    const label = this.labelFolder(path);
    return label ? this.run.status(label) : this.inner.folderStatus(path);
  }

  async folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    const real = folders.filter((f) => !this.labelFolder(f.path, f.name));
    const out = real.length > 0 ? await this.inner.folderStatuses(real, signal) : new Map<string, FolderStatus>();
    for (const f of folders) {
      const label = this.labelFolder(f.path, f.name);
      if (label) out.set(f.name, this.run.status(label));
    }
    return out;
  }

  async closeFolder(): Promise<void> {
    this.open = undefined;
    await this.inner.closeFolder();
  }

  async listMessages(signal?: AbortSignal, options: { sinceUid?: number; uids?: readonly number[] } = {}): Promise<MessageListing> {
    const label = this.open;
    if (!label) return this.inner.listMessages(signal, options);
    signal?.throwIfAborted();
    const since = options.sinceUid ?? 1;
    const only = options.uids ? new Set(options.uids) : undefined;
    const wanted = (uid: number) => uid >= since && (!only || only.has(uid));
    return { messages: label.members.filter((m) => wanted(m.uid)), failures: label.failures.filter((f) => wanted(f.uid)) };
  }

  async listUids(signal?: AbortSignal): Promise<number[]> {
    const label = this.open;
    if (!label) return this.inner.listUids(signal);
    const present = new Set(await this.inner.listUids(signal));
    return label.members.map((m) => m.uid).filter((u) => present.has(u));
  }

  async listFlags(signal?: AbortSignal, options?: { changedSince?: bigint }): Promise<{ uid: number; flags: string[] }[]> {
    const label = this.open;
    if (!label) return this.inner.listFlags(signal, options);
    // Label folders are never planned incrementally (no UIDNEXT); the run's listing is their truth.
    return label.members.map((m) => ({ uid: m.uid, flags: [...m.flags] }));
  }

  setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    this.refuseWrite(path, 'set flags in');
    return this.inner.setFlags(path, items);
  }

  deleteMessages(path: readonly string[], uids: readonly number[], listedName?: string): Promise<void> {
    this.refuseWrite(path, 'remove messages from', listedName);
    return this.inner.deleteMessages(path, uids, listedName);
  }

  fetchBodies(uids: readonly number[], signal?: AbortSignal, options?: { maxBytes?: number }): AsyncIterable<FetchOutcome> {
    return this.inner.fetchBodies(uids, signal, options);
  }

  async searchUids(keys: string, signal?: AbortSignal): Promise<number[]> {
    const found = await this.inner.searchUids(keys, signal);
    const label = this.open;
    if (!label) return found;
    const members = new Set(label.members.map((m) => m.uid));
    return found.filter((u) => members.has(u));
  }

  existingUids(uids: readonly number[], signal?: AbortSignal): Promise<Set<number>> {
    return this.inner.existingUids(uids, signal);
  }

  appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]> {
    this.refuseWrite(path, 'append to');
    return this.inner.appendBatch(path, items, signal);
  }

  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    const label = this.labelFolder(path);
    if (!label) return this.inner.waitForChange(path, timeoutMs, signal, sinceUidNext);
    // A label folder changes when All Mail does.
    return this.inner.waitForChange(this.run.allMail()!.info.path, timeoutMs, signal);
  }

  isUsable(): boolean {
    return this.inner.isUsable();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private refuseWrite(path: readonly string[], what: string, name?: string): void {
    const label = this.labelFolder(path, name);
    if (label) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `mailmover does not ${what} the Gmail label folder "${label.info.name}" of a source read by its labels.`, { scope: 'folder' });
  }
}

/** The source store of a run with Gmail labels: an IMAP store is read through its labels when it offers X-GM-EXT-1; any other store is returned as it is. */
export function withLabels(store: MailStore, run: LabelRun): MailStore {
  return store instanceof ImapStore ? new LabelViewStore(store, run) : store;
}
