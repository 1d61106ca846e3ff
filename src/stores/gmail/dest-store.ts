/**
 * Gmail as a destination: a {@link MailStore} over the destination's IMAP store that appends each
 * message once. When the server offers X-GM-EXT-1 (never judged by its host name), a message that
 * is already in the account (same identity key and size, as the planner matches them: found in
 * All Mail, or appended by this run into another folder) is not appended again into a further
 * folder: it is given that folder's label (`UID STORE n +X-GM-LABELS (label)`, see dest-labels.ts),
 * and any flag of the new copy it lacks (Gmail keeps one set of flags per message). A label the
 * server refuses falls back to an APPEND of that message, with the server's words in the outcome.
 *
 * The outcome of a labelled copy is `{ ok: true, uid: undefined, labelled: true }`: its UID in the
 * target folder is not known, as after an APPEND to a server without UIDPLUS; the folder's listing
 * shows it, so reruns, flag repair, moves and `verify` find it by content like any other copy.
 * Everything else, and every destination without X-GM-EXT-1, goes straight to the IMAP store.
 */
import type { Logger } from 'pino';
import { ERROR_CODES, isMigrateError } from '../../core/errors.js';
import type { NameSpace } from '../../core/mailbox-path.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import type { ImapStore } from '../imap/imap-store.js';
import { hasGmailExtensions, storeAdd, wireLabel } from './dest-commands.js';
import { identityOf, type GmailDestIndex, type IndexedMessage } from './dest-index.js';
import { labelOfFolder } from './dest-labels.js';

/** One message of a batch to be labelled instead of appended. */
interface ToLabel {
  i: number;
  message: IndexedMessage;
}

export class GmailDestStore implements MailStore {
  constructor(
    private readonly inner: ImapStore,
    private readonly index: GmailDestIndex,
    private readonly log?: Logger,
  ) {}

  async appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]> {
    if (!this.inner.isUsable() || !hasGmailExtensions(this.inner) || !items.some((i) => i.identity)) return this.inner.appendBatch(path, items);
    await this.index.ready(this.inner, signal);
    const info = this.index.folder(path);
    const name = info?.name ?? this.inner.serverName(path);
    const target = labelOfFolder(info, name);
    const ids = items.map((it) => (it.identity ? identityOf(it.identity.key, it.identity.size) : undefined));
    const release = await this.index.lock(ids.filter((id): id is string => id !== undefined));
    try {
      const label = target.kind === 'label' ? wireLabel(this.inner, target.label, target.system) : undefined;
      const out: AppendOutcome[] = new Array<AppendOutcome>(items.length);
      const toLabel: ToLabel[] = [];
      let toAppend: number[] = [];
      items.forEach((_, i) => {
        const found = label !== undefined && ids[i] !== undefined ? this.index.find(ids[i]!, label) : undefined;
        if (found) {
          // Taken at once: a second copy of the same message in this batch is appended.
          found.labels.add(label!);
          toLabel.push({ i, message: found });
        } else {
          toAppend.push(i);
        }
      });
      const refused = toLabel.length > 0 && target.kind === 'label' ? await this.label(toLabel, items, { label: target.label, system: target.system }, signal) : new Map<number, string>();
      for (const t of toLabel) {
        if (refused.has(t.i)) {
          t.message.labels.delete(label!);
          toAppend.push(t.i);
        } else {
          out[t.i] = { ok: true, uid: undefined, labelled: true };
        }
      }
      toAppend = toAppend.sort((a, b) => a - b);
      if (toAppend.length > 0) {
        const appended = await this.inner.appendBatch(
          path,
          toAppend.map((i) => items[i]!),
        );
        appended.forEach((o, k) => {
          const i = toAppend[k]!;
          const why = refused.get(i);
          out[i] = o.ok && why !== undefined ? { ...o, fallback: why } : o;
          const id = ids[i];
          // Trash, Spam and Starred hold messages outside All Mail (or are no label): not reused.
          const indexed = target.kind === 'label' || target.indexed;
          if (o.ok && o.uid !== undefined && id !== undefined && indexed) {
            this.index.add(id, { folder: { path: [...path], name }, uid: o.uid, labels: new Set(label !== undefined ? [label] : []), flags: [...items[i]!.flags] });
          }
        });
      }
      return out;
    } finally {
      release();
    }
  }

  /**
   * Gives each of `toLabel` the label, from the folder whose UID the index knows, and any flag of
   * the new copy it lacks. Returns the ones the server refused, with its words.
   */
  private async label(toLabel: readonly ToLabel[], items: readonly AppendItem[], label: { label: string; system: boolean }, signal?: AbortSignal): Promise<Map<number, string>> {
    const refused = new Map<number, string>();
    const byFolder = new Map<string, ToLabel[]>();
    for (const t of toLabel) {
      const group = byFolder.get(t.message.folder.name);
      if (group) group.push(t);
      else byFolder.set(t.message.folder.name, [t]);
    }
    for (const group of byFolder.values()) {
      const folder = group[0]!.message.folder;
      let why: string | undefined;
      try {
        await this.inner.openFolder(folder.path, false, folder.name);
      } catch (err) {
        if (!isMigrateError(err) || err.code === ERROR_CODES.CONNECTION_LOST || signal?.aborted) throw err;
        why = err.serverResponse ?? err.message;
      }
      try {
        why ??= await storeAdd(
          this.inner,
          group.map((t) => t.message.uid),
          label,
          signal,
        );
        if (why !== undefined) {
          for (const t of group) refused.set(t.i, why);
          this.log?.warn({ folder: folder.name, label: label.label, messages: group.length, err: why }, 'the destination refused the Gmail label; appending those messages instead');
          continue;
        }
        for (const t of group) {
          const have = new Set(t.message.flags.map((f) => f.toLowerCase()));
          const missing = items[t.i]!.flags.filter((f) => !have.has(f.toLowerCase()));
          if (missing.length === 0) continue;
          const no = await storeAdd(this.inner, [t.message.uid], { flags: missing }, signal);
          if (no === undefined) t.message.flags.push(...missing);
          else this.log?.warn({ folder: folder.name, uid: t.message.uid, flags: missing, err: no }, 'flags of a labelled message not updated');
        }
      } finally {
        await this.leave(folder);
      }
    }
    return refused;
  }

  /** Leaves a folder selected read-write without expunging (EXAMINE, then CLOSE: see ImapStore). */
  private async leave(folder: { path: string[]; name: string }): Promise<void> {
    if (!this.inner.isUsable()) return;
    try {
      await this.inner.openFolder(folder.path, true, folder.name);
      await this.inner.closeFolder();
    } catch {
      // Best effort: the next SELECT or the logout leaves it without expunging as well.
    }
  }

  // Everything else is the IMAP store's.
  connect(signal?: AbortSignal): Promise<void> {
    return this.inner.connect(signal);
  }
  caps(): StoreCaps {
    return this.inner.caps();
  }
  namespace(): NameSpace {
    return this.inner.namespace();
  }
  listFolders(options?: { otherNamespaces?: boolean }): Promise<FolderListing> {
    return this.inner.listFolders(options);
  }
  createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    return this.inner.createFolder(path);
  }
  subscribe(path: readonly string[]): Promise<void> {
    return this.inner.subscribe(path);
  }
  openFolder(path: readonly string[], readOnly: boolean, name?: string): Promise<FolderStatus> {
    return this.inner.openFolder(path, readOnly, name);
  }
  folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    return this.inner.folderStatus(path);
  }
  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    return this.inner.folderStatuses(folders, signal);
  }
  closeFolder(): Promise<void> {
    return this.inner.closeFolder();
  }
  listMessages(signal?: AbortSignal, options?: { sinceUid?: number; uids?: readonly number[] }): Promise<MessageListing> {
    return this.inner.listMessages(signal, options);
  }
  listUids(signal?: AbortSignal): Promise<number[]> {
    return this.inner.listUids(signal);
  }
  listFlags(signal?: AbortSignal, options?: { changedSince?: bigint }): Promise<{ uid: number; flags: string[] }[]> {
    return this.inner.listFlags(signal, options);
  }
  setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    return this.inner.setFlags(path, items);
  }
  deleteMessages(path: readonly string[], uids: readonly number[], listedName?: string): Promise<void> {
    return this.inner.deleteMessages(path, uids, listedName);
  }
  fetchBodies(uids: readonly number[], signal?: AbortSignal, options?: { maxBytes?: number }): AsyncIterable<FetchOutcome> {
    return this.inner.fetchBodies(uids, signal, options);
  }
  searchUids(keys: string, signal?: AbortSignal): Promise<number[]> {
    return this.inner.searchUids(keys, signal);
  }
  existingUids(uids: readonly number[], signal?: AbortSignal): Promise<Set<number>> {
    return this.inner.existingUids(uids, signal);
  }
  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    return this.inner.waitForChange(path, timeoutMs, signal, sinceUidNext);
  }
  isUsable(): boolean {
    return this.inner.isUsable();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
