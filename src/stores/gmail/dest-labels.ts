/**
 * Gmail as a destination: which label a destination folder is (pure). In Gmail a message exists
 * once and carries labels, and each folder is a view of one label; a second copy of a message in
 * another folder is that message with one more label (`UID STORE n +X-GM-LABELS (label)`), not a
 * second APPEND. System folders are known by their RFC 6154 attribute, never by their name
 * (which Gmail localises): INBOX is `\Inbox`, \Sent `\Sent`, \Drafts `\Draft`, \Important
 * `\Important`; any other folder is the label of its full name.
 */
import type { FolderInfo } from '../mail-store.js';

/** What a destination folder is, for the Gmail destination. */
export type FolderLabel =
  /** A label: a message already in the account is given it instead of being appended again. */
  | { kind: 'label'; label: string; system: boolean }
  /**
   * Appended as usual, not labelled: Trash and Spam hold messages outside All Mail, Starred is the
   * \Flagged flag, not a label. `indexed`: what is appended there is in All Mail (All Mail itself),
   * so later copies elsewhere may label it.
   */
  | { kind: 'append'; indexed: boolean };

const SYSTEM_LABELS: Record<string, string> = {
  '\\sent': '\\Sent',
  '\\drafts': '\\Draft',
  '\\important': '\\Important',
};

/**
 * The label of a destination folder. `info` is the folder as the destination listed it (undefined
 * for a folder created by this run: a user label), `serverName` its full name on the server.
 */
export function labelOfFolder(info: Pick<FolderInfo, 'specialUse' | 'name'> | undefined, serverName: string): FolderLabel {
  if (serverName.toUpperCase() === 'INBOX') return { kind: 'label', label: '\\Inbox', system: true };
  const use = info?.specialUse?.toLowerCase();
  if (use === '\\trash' || use === '\\junk' || use === '\\flagged') return { kind: 'append', indexed: false };
  if (use === '\\all') return { kind: 'append', indexed: true };
  const system = use ? SYSTEM_LABELS[use] : undefined;
  if (system) return { kind: 'label', label: system, system: true };
  return { kind: 'label', label: info?.name ?? serverName, system: false };
}

/** True when a message's labels (as the server sent them, any case) include `label`. */
export function hasLabel(labels: Iterable<string>, label: string): boolean {
  const want = label.toLowerCase();
  for (const l of labels) if (l.toLowerCase() === want) return true;
  return false;
}
