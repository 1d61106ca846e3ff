/**
 * The store interface the engine works against. IMAP implements it today; local stores
 * (Maildir, mbox) will implement the same surface. The engine never asks which kind of store it
 * has: it branches on {@link StoreCaps}.
 */
import type { NameSpace } from '../core/mailbox-path.js';

/** What a store can do, as far as the engine cares. */
export interface StoreCaps {
  /** Several messages in one APPEND command (RFC 3502 MULTIAPPEND). */
  multiAppend: boolean;
  /** APPEND answers with the new UIDs (RFC 4315 UIDPLUS). */
  appendUid: boolean;
  /** Largest message the store accepts (RFC 7889 APPENDLIMIT), when it says. */
  appendLimit: number | undefined;
  /** Non-synchronising literals (RFC 7888): a batch goes out in one write. */
  literalPlus: boolean;
  /**
   * Folder levels the store must not be given, because the store keeps its own files or
   * directories under those names: patterns matched case-insensitively against one whole level,
   * `*` standing for any run of characters. The planner renames such a level (see folder-plan.ts).
   */
  reservedNames: readonly string[];
  /**
   * A folder holds either messages or children, never both (Dovecot's mbox layout: a name is a
   * file or a directory). The planner then puts the messages of a source folder that has
   * children into a child named like it ("Projects" into "Projects/Projects", see folder-plan.ts).
   */
  mailOrChildren: boolean;
  /** Runs IMAP search keys of the user's own (`UID SEARCH`, see {@link MailStore.searchUids}); local archives cannot. */
  search: boolean;
}

/** One folder as a store lists it. */
export interface FolderInfo {
  /** Path as segments, namespace prefix removed. */
  path: string[];
  /** The server's own name for it (decoded to Unicode), for messages and reports. */
  name: string;
  /** Hierarchy separator the server listed for this folder ('' when NIL). */
  delimiter: string;
  /** \Noselect or \NonExistent: holds children, cannot hold messages. */
  noSelect: boolean;
  subscribed: boolean;
  /** RFC 6154 attribute (e.g. '\\Sent'), when the server gave one. */
  specialUse: string | undefined;
  /** True for a folder outside the personal namespace (other users', shared); its `path` starts with the namespace's name. */
  outside?: boolean;
}

/** A message as listed (no body). */
export interface MessageMeta {
  uid: number;
  size: number;
  flags: string[];
  /**
   * INTERNALDATE in milliseconds since the epoch. A number, not a Date: a listing is held for the
   * whole copy of its folder, and a Date costs 112 bytes of heap where a number field costs 16
   * (20 MB of a 200,000-message folder's listing).
   */
  internalDate: number | undefined;
  /** Content identity from the identity headers (see core/message-key.ts); the planner adds the size. */
  key: string;
  messageId: string | undefined;
}

/** The folders of a store, and the raw listing lines it could not interpret. */
export interface FolderListing {
  folders: FolderInfo[];
  unreadable: string[];
  /** Prefixes of the other users' and shared namespaces the server announced. */
  otherNamespaces: string[];
  /** Folders the store knows of but cannot read (a damaged archive): each costs that folder, with its error. */
  broken?: { name: string; error: Error }[];
  /**
   * What the store leaves out by design, per folder and kind (a PST's calendar items, contacts,
   * OLE attachments): reported, not copied, and no cause for a partial run.
   */
  leftOut?: { folder: string; kind: string; count: number }[];
}

/** The messages of a folder, and those the server would not describe. */
export interface MessageListing {
  messages: MessageMeta[];
  failures: { uid: number; error: Error }[];
}

/** Status of an opened folder. */
export interface FolderStatus {
  uidValidity: bigint;
  uidNext: number | undefined;
  exists: number;
  /** RFC 7162 CONDSTORE: the highest mod-sequence of the folder, when the server keeps them. */
  highestModseq?: bigint | undefined;
  /** The bytes of all its messages (RFC 8438 STATUS=SIZE), when the store says (only from {@link MailStore.folderStatuses}). */
  bytes?: number | undefined;
}

/** A message to append. */
export interface AppendItem {
  body: Buffer;
  flags: string[];
  internalDate: Date | undefined;
  /**
   * The source message's content identity as listed (identity key and size, as the planner
   * matches them), when the engine copies a listed message: a store whose messages can be in
   * several folders at once (Gmail's labels) uses it to find a copy it already holds.
   */
  identity?: { key: string; size: number };
}

/**
 * Per-item outcome of an append batch. `labelled`: not appended, the store gave a message it
 * already held this folder's label (a Gmail destination; `uid` is then unknown). `fallback`:
 * appended because giving the label was refused, with the store's words.
 */
export type AppendOutcome = { ok: true; uid: number | undefined; labelled?: true; fallback?: string } | { ok: false; error: Error };

/**
 * Per-item outcome of a body fetch. `missing`: the store's answer did not include the message (it
 * may have been expunged, or the server left it out); the engine asks again, then asks whether it
 * still exists, before it calls it vanished. `fresh`: the body's memory was made for this answer
 * and nothing else refers to it, so the engine may free it as soon as the message is copied (see
 * core/release-memory.ts); a store that hands out buffers it keeps (a cache, a test's fixture) leaves
 * it unset.
 */
export type FetchOutcome = { uid: number; body: Buffer; fresh?: true } | { uid: number; error: Error } | { uid: number; missing: true };

/** One connection's worth of access to a mail store. */
export interface MailStore {
  /** Connects and authenticates; throws MigrateError (scope 'mailbox') on failure. */
  connect(signal?: AbortSignal): Promise<void>;
  caps(): StoreCaps;
  /** The personal namespace, as the server reported it. */
  namespace(): NameSpace;
  /**
   * Lists the folders of the personal namespace, and of other users' and shared namespaces when
   * asked. LIST lines the store could not interpret come back raw in `unreadable`.
   */
  listFolders(options?: { otherNamespaces?: boolean }): Promise<FolderListing>;
  /** Creates a folder; an existing folder is not an error. */
  createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }>;
  subscribe(path: readonly string[]): Promise<void>;
  /**
   * Selects a folder (read-only when asked) and returns its status. `name` is the server's own
   * name as listed, when known: a listed name is opened exactly as listed, never re-spelled.
   */
  openFolder(path: readonly string[], readOnly: boolean, name?: string): Promise<FolderStatus>;
  /**
   * UIDVALIDITY, UIDNEXT and message count of a folder without selecting it (STATUS); undefined
   * when the server does not say.
   */
  folderStatus(path: readonly string[]): Promise<FolderStatus | undefined>;
  /**
   * The status of many listed folders at once, without selecting them: message count, UIDNEXT,
   * UIDVALIDITY and, where the store says, bytes. Keyed by the folder's listed name; a folder
   * the store does not describe is absent (never an error: the survey before copying is
   * information, not a condition).
   */
  folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>>;
  /** Leaves the open folder (so that later APPENDs are not filtered by its read-only state). */
  closeFolder(): Promise<void>;
  /**
   * Lists every message of the open folder (uid, size, flags, date, identity). A message the
   * server will not describe is returned in `failures`, not thrown: it costs that message only.
   * With `sinceUid`, only messages with that UID or higher (what arrived since a known UIDNEXT);
   * with `uids`, only those.
   */
  listMessages(signal?: AbortSignal, options?: { sinceUid?: number; uids?: readonly number[] }): Promise<MessageListing>;
  /** The UIDs of the open folder (cheap: no message is read). */
  listUids(signal?: AbortSignal): Promise<number[]>;
  /**
   * The flags of the open folder's messages (UID and FLAGS only), or with `changedSince` only of
   * those whose mod-sequence is higher (CONDSTORE); `changedSince` is ignored without CONDSTORE.
   */
  listFlags(signal?: AbortSignal, options?: { changedSince?: bigint }): Promise<{ uid: number; flags: string[] }[]>;
  /** Replaces the flags of messages in a folder (selected read-write for it). */
  setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void>;
  /**
   * Removes messages from a folder by UID: \Deleted, then UID EXPUNGE of exactly those UIDs.
   * Needs UIDPLUS (a plain EXPUNGE would remove every \Deleted message): without it, throws.
   */
  deleteMessages(path: readonly string[], uids: readonly number[], listedName?: string): Promise<void>;
  /**
   * Fetches full bodies of the open folder by UID; one bad message does not fail the others.
   * `maxBytes` is the largest listed size among them: a store may refuse a body far larger
   * than that before reading it (a hostile server's endless literal).
   */
  fetchBodies(uids: readonly number[], signal?: AbortSignal, options?: { maxBytes?: number }): AsyncIterable<FetchOutcome>;
  /**
   * The UIDs of the open folder's messages that match `keys`, IMAP search keys checked by
   * plan/search-keys.ts and sent as given (`UID SEARCH keys`). A server's BAD or NO is thrown as
   * MM-SEARCH-REFUSED (scope 'mailbox': the same keys would be refused in every folder). Only
   * where {@link StoreCaps.search}; other stores throw MM-CONFIG-OPTION.
   */
  searchUids(keys: string, signal?: AbortSignal): Promise<number[]>;
  /** Which of `uids` the open folder still holds (UID SEARCH: no message is read). */
  existingUids(uids: readonly number[], signal?: AbortSignal): Promise<Set<number>>;
  /**
   * Appends messages to a folder; one bad message does not fail the others. Throws a mailbox-scope
   * error when the destination is out of quota, and CONNECTION_LOST when the outcome is unknown.
   */
  appendBatch(path: readonly string[], items: readonly AppendItem[], signal?: AbortSignal): Promise<AppendOutcome[]>;
  /**
   * Waits until the folder changes (a new or removed message) or `timeoutMs` passes: IDLE
   * (RFC 2177) where the server has it, otherwise a plain wait. Resolves true when woken by a change,
   * or at once when the folder's UIDNEXT is already above `sinceUidNext`.
   */
  waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean>;
  /** False once the connection is gone; the engine then builds a new store. */
  isUsable(): boolean;
  close(): Promise<void>;
}
