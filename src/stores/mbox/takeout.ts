/**
 * Gmail Takeout: one mbox file ("All mail Including Spam and Trash.mbox") whose messages carry
 * their Gmail labels in `X-Gmail-Labels:` (comma-separated; a label that holds a comma is quoted).
 * Read as folders (`?labels=folders`: one folder per label) or as keywords (`?labels=keywords`:
 * each message once, in INBOX or Archive, its labels as keywords).
 *
 * Labels that are states, not places, become flags in both modes: `Starred` is \Flagged,
 * `Unread` takes \Seen away (every other message is \Seen; `Opened` says so), `Important` is
 * the keyword `$Important`, and `Category ...` labels are keywords. `Sent`, `Drafts`, `Spam` and
 * `Trash` are folders with the special-use attribute of their role, so the planner puts them in
 * the destination's own Sent, Drafts, Junk and Trash. A message that has no folder label is in
 * `Archive`. The header fields stay in the message: they are the Takeout's bytes.
 */
import { encodeMutf7 } from '../maildir/mutf7.js';

export type LabelMode = 'folders' | 'keywords';

/** What a message's labels make of it. */
export interface Labelled {
  /** Folders (as paths) the message is in; none twice. */
  folders: string[][];
  /** Flags and keywords to add to the message's own. */
  flags: string[];
  /** Flags to take away (\Seen for `Unread`). */
  unflags: string[];
}

/** Folders with the special-use attribute they get. */
export const SPECIAL_LABELS: ReadonlyMap<string, { path: string[]; specialUse: string }> = new Map([
  ['sent', { path: ['Sent'], specialUse: '\\Sent' }],
  ['drafts', { path: ['Drafts'], specialUse: '\\Drafts' }],
  ['spam', { path: ['Spam'], specialUse: '\\Junk' }],
  ['trash', { path: ['Trash'], specialUse: '\\Trash' }],
]);
export const ARCHIVE: { path: string[]; specialUse: string } = { path: ['Archive'], specialUse: '\\Archive' };

/** Splits an `X-Gmail-Labels:` value into labels (quotes and `\` escapes undone, encoded words decoded). */
export function splitLabels(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted && ch === '\\' && i + 1 < value.length) cur += value[++i];
    else if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return [...new Set(out.map((l) => decodeWords(l.trim())).filter((l) => l !== ''))];
}

/** Decodes RFC 2047 encoded words (UTF-8 or Latin-1, B or Q) in a label. */
function decodeWords(text: string): string {
  return text.replace(/=\?([^?]+)\?([bq])\?([^?]*)\?=/gi, (all, charset: string, enc: string, data: string) => {
    const cs = charset.toLowerCase().split('*')[0];
    const encoding = cs === 'utf-8' || cs === 'utf8' ? 'utf8' : cs === 'iso-8859-1' || cs === 'latin1' || cs === 'us-ascii' ? 'latin1' : undefined;
    if (!encoding) return all;
    const bytes = enc.toLowerCase() === 'b' ? Buffer.from(data, 'base64') : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    return bytes.toString(encoding);
  });
}

/**
 * A label as an IMAP keyword (an atom): spaces and the characters an atom cannot hold
 * (`( ) { % * " \ ]`, controls) become `_`, and non-ASCII is spelled in modified UTF-7, as
 * folder names are (`Über` becomes `&ANw-ber`).
 */
export function labelKeyword(label: string): string {
  // eslint-disable-next-line no-control-regex -- the point is to replace control characters
  const safe = label.replace(/[\s(){%*"\\\]\u0000-\u001f\u007f]/g, '_');
  const encoded = encodeMutf7(safe);
  return encoded.startsWith('\\') ? `_${encoded.slice(1)}` : encoded;
}

/** What the labels of one message make of it. */
export function applyLabels(labels: readonly string[], mode: LabelMode): Labelled {
  const folders = new Map<string, string[]>();
  const flags = new Set<string>();
  const unflags: string[] = [];
  let inbox = false;
  const put = (path: string[]) => folders.set(path.join('\u0000').toUpperCase() === 'INBOX' ? 'INBOX' : path.join('\u0000'), path);
  for (const label of labels) {
    const lower = label.toLowerCase();
    if (lower === 'inbox') inbox = true;
    else if (lower === 'starred') flags.add('\\Flagged');
    else if (lower === 'unread') unflags.push('\\Seen');
    else if (lower === 'opened') flags.add('\\Seen');
    else if (lower === 'important') flags.add('$Important');
    else if (lower === 'archived') continue;
    else if (lower.startsWith('category ') || mode === 'keywords') flags.add(labelKeyword(label));
    else if (SPECIAL_LABELS.has(lower)) put(SPECIAL_LABELS.get(lower)!.path);
    else {
      const path = label.split('/').filter((s) => s !== '');
      if (path.length > 0) put(path.length === 1 && path[0]!.toUpperCase() === 'INBOX' ? ['INBOX'] : path);
    }
  }
  if (inbox) put(['INBOX']);
  if (folders.size === 0) put(ARCHIVE.path);
  if (unflags.includes('\\Seen')) flags.delete('\\Seen');
  else flags.add('\\Seen');
  return { folders: [...folders.values()], flags: [...flags], unflags };
}
