/**
 * Gmail's label model for the scripted IMAP server (pure functions; the server keeps the state).
 *
 * In Gmail a message exists once and carries labels; IMAP shows each label as a folder, and
 * "[Gmail]/All Mail" holds every message (but Spam and Trash) once. A message with the labels
 * \Inbox and Work is listed in INBOX, in Work and in All Mail, with the same X-GM-MSGID, the same
 * flags (setting \Seen in one folder sets it in all) and the same X-GM-LABELS everywhere. These
 * functions say which folder a label is, which label a folder is, and which folders a labelled
 * message appears in. System labels are written as Gmail writes them (`\Inbox`, `\Sent`,
 * `\Draft`, `\Important`, `\Spam`, `\Trash`); `\Starred` is not a label but the \Flagged flag.
 */

/** A message of a Gmail user, given once with its labels. */
export interface GmailMessage {
  raw: Buffer;
  flags: string[];
  internalDate: Date;
  /** User labels ('Work', 'Work/Clients') and system labels ('\\Inbox', '\\Sent', ...). */
  labels: string[];
  /** X-GM-MSGID (default: assigned in order, from 1600000000000000001). */
  msgId?: bigint;
  /** X-GM-THRID (default: the message's own X-GM-MSGID). */
  thrId?: bigint;
}

/** What every view of one message shares. */
export interface GmailState {
  msgId: bigint;
  thrId: bigint;
  /** The labels, in the order they were given (mutated by STORE +/-X-GM-LABELS). */
  labels: string[];
}

export const ALL_MAIL = '[Gmail]/All Mail';
export const STARRED = '[Gmail]/Starred';
export const GMAIL_PARENT = '[Gmail]';

/** System labels and the folders that show them, with their special-use attribute. */
const SYSTEM: { label: string; folder: string; attribute?: string }[] = [
  { label: '\\Inbox', folder: 'INBOX' },
  { label: '\\Draft', folder: '[Gmail]/Drafts', attribute: '\\Drafts' },
  { label: '\\Sent', folder: '[Gmail]/Sent Mail', attribute: '\\Sent' },
  { label: '\\Spam', folder: '[Gmail]/Spam', attribute: '\\Junk' },
  { label: '\\Trash', folder: '[Gmail]/Trash', attribute: '\\Trash' },
  { label: '\\Important', folder: '[Gmail]/Important', attribute: '\\Important' },
];

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** The folder that shows a label. */
export function folderOfLabel(label: string): string {
  return SYSTEM.find((s) => same(s.label, label))?.folder ?? label;
}

/** The label a folder shows; undefined for All Mail and Starred (not labels) and the [Gmail] parent. */
export function labelOfFolder(folder: string): string | undefined {
  if (folder === ALL_MAIL || folder === STARRED || folder === GMAIL_PARENT) return undefined;
  return SYSTEM.find((s) => s.folder === folder || (s.folder === 'INBOX' && same(folder, 'INBOX')))?.label ?? folder;
}

/** True when the message is outside All Mail (Spam and Trash are not in it). */
export const outsideAllMail = (labels: readonly string[]) => labels.some((l) => same(l, '\\Spam') || same(l, '\\Trash'));

/** The system folders every Gmail account lists, in Gmail's order, with their attributes. */
export function systemFolders(): { name: string; attributes: string[] }[] {
  return [
    { name: 'INBOX', attributes: [] },
    { name: GMAIL_PARENT, attributes: ['\\Noselect'] },
    { name: ALL_MAIL, attributes: ['\\All'] },
    ...SYSTEM.filter((s) => s.attribute).map((s) => ({ name: s.folder, attributes: [s.attribute!] })),
    { name: STARRED, attributes: ['\\Flagged'] },
  ];
}

/** Every folder a message appears in: its labels' folders, All Mail (unless Spam/Trash), Starred when \Flagged. */
export function foldersOf(labels: readonly string[], flags: readonly string[]): string[] {
  const out = labels.map(folderOfLabel);
  if (!outsideAllMail(labels)) out.push(ALL_MAIL);
  if (flags.some((f) => same(f, '\\Flagged'))) out.push(STARRED);
  return [...new Set(out)];
}

/** The user label folders of a set of messages, parents first ('Work' before 'Work/Clients'). */
export function labelFolders(messages: readonly GmailMessage[]): string[] {
  const names = new Set<string>();
  for (const m of messages) {
    for (const l of m.labels) {
      if (SYSTEM.some((s) => same(s.label, l))) continue;
      const parts = l.split('/');
      for (let i = 1; i <= parts.length; i++) names.add(parts.slice(0, i).join('/'));
    }
  }
  return [...names].sort();
}

/** X-GM-LABELS as Gmail sends it: every label a quoted string, system labels with their backslash. */
export function wireLabels(labels: readonly string[]): string {
  return `(${labels.map((l) => `"${l.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(' ')})`;
}

/** The first X-GM-MSGID handed out (Gmail's are 64-bit numbers of this size). */
export const FIRST_MSGID = 1_600_000_000_000_000_001n;
