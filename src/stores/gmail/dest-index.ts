/**
 * Gmail as a destination: the messages already in the account, by content identity (the
 * identity headers' key and the size, as the planner matches them), shared by every connection of
 * one run. Built once, when the first message is to be copied, from "All Mail" (the folder with
 * the \All attribute): each message's UID there, flags and X-GM-LABELS. What the run appends
 * itself is added with the UID the server gave (APPENDUID), in the folder it went to: a message
 * can be labelled from any folder that shows it.
 *
 * A per-identity lock keeps two connections from appending the same message into two folders at
 * once (each would find the other's copy missing): the second waits, then labels the first's.
 */
import { pathKey } from '../../core/mailbox-path.js';
import type { FolderInfo } from '../mail-store.js';
import type { ImapStore } from '../imap/imap-store.js';
import { fetchLabels } from './dest-commands.js';
import { hasLabel } from './dest-labels.js';

/** A message of the account, where it can be addressed. */
export interface IndexedMessage {
  /** The folder whose UID is known: All Mail, or the folder this run appended it to. */
  folder: { path: string[]; name: string };
  uid: number;
  /** Its labels as far as known, as sent on the wire (user labels in modified UTF-7 unless UTF8=ACCEPT). */
  labels: Set<string>;
  /** Its flags as far as known (shared by every view of the message). */
  flags: string[];
}

/** The content identity the planner matches by: identity key and size. */
export const identityOf = (key: string, size: number): string => `${key}|${size}`;

export class GmailDestIndex {
  private readonly messages = new Map<string, IndexedMessage[]>();
  private readonly folders = new Map<string, FolderInfo>();
  private built: Promise<void> | undefined;
  private readonly locks = new Map<string, Promise<void>>();

  /**
   * Builds the index on `store`'s connection the first time it is asked (later calls wait for the
   * same build). A build that failed (a lost connection) is tried again by the next caller.
   */
  async ready(store: ImapStore, signal?: AbortSignal): Promise<void> {
    this.built ??= this.build(store, signal).catch((err: unknown) => {
      this.built = undefined;
      throw err;
    });
    return this.built;
  }

  private async build(store: ImapStore, signal?: AbortSignal): Promise<void> {
    const listing = await store.listFolders();
    for (const f of listing.folders) if (!f.outside) this.folders.set(pathKey(f.path), f);
    const all = listing.folders.find((f) => !f.outside && !f.noSelect && f.specialUse?.toLowerCase() === '\\all');
    if (!all) return;
    await store.openFolder(all.path, true, all.name);
    try {
      const listed = await store.listMessages(signal);
      const labels = await fetchLabels(store, signal);
      for (const m of listed.messages) {
        this.add(identityOf(m.key, m.size), { folder: { path: all.path, name: all.name }, uid: m.uid, labels: new Set(labels.get(m.uid) ?? []), flags: [...m.flags] });
      }
    } finally {
      await store.closeFolder();
    }
  }

  /** The destination folder at `path` as listed when the index was built (undefined for one created since). */
  folder(path: readonly string[]): FolderInfo | undefined {
    return this.folders.get(pathKey(path));
  }

  /** A message of this identity that does not carry `label` yet (wire form), if any. */
  find(identity: string, label: string): IndexedMessage | undefined {
    return this.messages.get(identity)?.find((m) => !hasLabel(m.labels, label));
  }

  add(identity: string, message: IndexedMessage): void {
    const list = this.messages.get(identity);
    if (list) list.push(message);
    else this.messages.set(identity, [message]);
  }

  /**
   * Holds the given identities until the returned function is called. Taken in sorted order, so
   * that two connections holding overlapping sets never wait for each other in a cycle.
   */
  async lock(identities: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const id of [...new Set(identities)].sort()) {
      const before = this.locks.get(id) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      const held = before.then(() => mine);
      this.locks.set(id, held);
      await before;
      releases.push(() => {
        release();
        if (this.locks.get(id) === held) this.locks.delete(id);
      });
    }
    return () => releases.forEach((r) => r());
  }
}
