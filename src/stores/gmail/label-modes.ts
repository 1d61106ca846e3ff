/**
 * Where a Gmail message goes, from its labels (issue 17). Pure: no I/O, tested with tables.
 *
 * A source with X-GM-EXT-1 keeps each message once, in All Mail, with labels; IMAP shows each
 * label as a folder. `--gmail-labels` says how the labels become folders:
 * - `folders`: one copy in each label's folder, as Gmail's IMAP shows it (the default);
 * - `first`: one copy, in the folder of the first label by {@link labelRank};
 * - `keywords`: one copy, in INBOX when the message has \Inbox, else Drafts (\Draft), Sent
 *   (\Sent) or Archive, with every user label as a keyword ({@link keywordMap});
 * - `off`: no label handling, every folder copied as listed (mailmover before issue 17).
 *
 * In every mode: \Starred is the \Flagged flag, \Important the keyword $Important, \Sent and
 * \Draft are the source's Sent and Drafts folders (mapped onto the destination's by special-use),
 * and a message with no label that places it (archived) goes to Archive.
 */
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { MAX_KEYWORD_LENGTH } from '../../core/flags.js';

export type GmailLabelMode = 'folders' | 'first' | 'keywords' | 'off';
export const GMAIL_LABEL_MODES: readonly string[] = ['folders', 'first', 'keywords', 'off', 'none'];

/** The place of an archived message (no label places it), and of a keywords-mode message outside INBOX. */
export const ARCHIVE = '\\Archive';
/** The keyword \Important becomes. */
export const IMPORTANT_KEYWORD = '$Important';

const SYSTEM = new Map([
  ['\\inbox', '\\Inbox'],
  ['\\sent', '\\Sent'],
  ['\\draft', '\\Draft'],
  ['\\important', '\\Important'],
  ['\\starred', '\\Starred'],
  ['\\spam', '\\Spam'],
  ['\\trash', '\\Trash'],
]);

/** A label as mailmover compares it: system labels spelled canonically, user labels as given. */
export function canonicalLabel(label: string): string {
  return label.startsWith('\\') ? (SYSTEM.get(label.toLowerCase()) ?? label) : label;
}

/** True for a label that is a folder of its own in Gmail's IMAP (a user label, \Inbox, \Sent, \Draft). */
export function placesMessage(label: string): boolean {
  const l = canonicalLabel(label);
  return !l.startsWith('\\') || l === '\\Inbox' || l === '\\Sent' || l === '\\Draft';
}

/** The mode from the option's text; `none` is `off`. Throws MM-CONFIG-OPTION for anything else. */
export function parseLabelMode(text: string, where = '--gmail-labels'): GmailLabelMode {
  const t = text.trim().toLowerCase();
  if (!GMAIL_LABEL_MODES.includes(t)) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${where} must be folders, first, keywords or off (got "${text}").`, { scope: 'config' });
  }
  return t === 'none' ? 'off' : (t as GmailLabelMode);
}

/**
 * The admin's priority list (`--label-priority "Work,Clients,\\Inbox"`): label names separated by
 * commas, each once; `Inbox`/`INBOX`, `Sent`, `Drafts` may name the system labels without the
 * backslash. Throws MM-CONFIG-OPTION for an empty name or a name given twice.
 */
export function parseLabelPriority(text: string, where = '--label-priority'): string[] {
  const names = text.split(',').map((s) => s.trim());
  const out: string[] = [];
  for (const n of names) {
    if (n === '') throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${where} is a comma-separated list of label names with no empty entry (got "${text}").`, { scope: 'config' });
    const label = priorityName(n);
    if (out.includes(label)) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${where} names the label "${n}" twice.`, { scope: 'config' });
    out.push(label);
  }
  return out;
}

function priorityName(n: string): string {
  const l = n.toLowerCase();
  if (l === 'inbox') return '\\Inbox';
  if (l === 'sent' || l === 'sent mail') return '\\Sent';
  if (l === 'drafts' || l === 'draft') return '\\Draft';
  return canonicalLabel(n);
}

/**
 * The default order of `first` when no priority names a label: \Draft (a draft stays editable),
 * then user labels (the user filed the message there; by name, case-insensitively, a nested label
 * before its parent's later siblings as names sort), then \Inbox, then \Sent. Lower is earlier.
 */
export function labelRank(label: string, priority: readonly string[]): [number, string] {
  const l = canonicalLabel(label);
  const given = priority.indexOf(l);
  if (given >= 0) return [given, ''];
  const base = priority.length;
  if (l === '\\Draft') return [base, ''];
  if (!l.startsWith('\\')) return [base + 1, l.toLowerCase()];
  if (l === '\\Inbox') return [base + 2, ''];
  return [base + 3, ''];
}

/** A message's placement: the labels (places) it is copied into, its extra flags, and the labels it does not take along. */
export interface Placement {
  /** Places: user labels, '\\Inbox', '\\Sent', '\\Draft' or {@link ARCHIVE}. */
  places: string[];
  /** Flags and keywords added to the message's own flags. */
  addFlags: string[];
  /** `first`: the placing labels the copy is not in (recorded in the report). */
  otherLabels: string[];
}

/**
 * Places one message of All Mail. `keywords` maps user labels to keywords (from {@link keywordMap});
 * it is only used in `keywords` mode.
 */
export function placeMessage(labels: readonly string[], mode: Exclude<GmailLabelMode, 'off'>, priority: readonly string[], keywords: ReadonlyMap<string, string>): Placement {
  const all = [...new Set(labels.map(canonicalLabel))];
  const addFlags: string[] = [];
  if (all.includes('\\Starred')) addFlags.push('\\Flagged');
  if (all.includes('\\Important')) addFlags.push(IMPORTANT_KEYWORD);
  const placing = all.filter(placesMessage);
  if (mode === 'folders') return { places: placing.length > 0 ? placing : [ARCHIVE], addFlags, otherLabels: [] };
  if (mode === 'first') {
    if (placing.length === 0) return { places: [ARCHIVE], addFlags, otherLabels: [] };
    const sorted = [...placing].sort((a, b) => compareRank(labelRank(a, priority), labelRank(b, priority)));
    return { places: [sorted[0]!], addFlags, otherLabels: sorted.slice(1) };
  }
  for (const l of placing) if (!l.startsWith('\\')) addFlags.push(keywords.get(l)!);
  const place = placing.includes('\\Inbox') ? '\\Inbox' : placing.includes('\\Draft') ? '\\Draft' : placing.includes('\\Sent') ? '\\Sent' : ARCHIVE;
  return { places: [place], addFlags, otherLabels: [] };
}

function compareRank(a: [number, string], b: [number, string]): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

/** RFC 3501 atom-chars that may appear in a keyword (no atom-specials, no `]`, no `\`). */
const KEYWORD_CHAR = /[\x21\x23\x24\x26\x27\x2B-\x5B\x5E-\x7A\x7C-\x7E]/;

/**
 * Label -> keyword for `keywords` mode, for every user label given: IMAP atom characters only
 * (anything else, a space or a non-ASCII letter, becomes `_`), at most MAX_KEYWORD_LENGTH
 * characters, never starting with `$` or `\` (those are the system's and registered keywords'),
 * and two labels never share a keyword (the later one by name gets `-2`, `-3`, ...). Labels are
 * taken in name order, so the mapping is the same on every run for the same labels.
 */
export function keywordMap(labels: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>([IMPORTANT_KEYWORD.toLowerCase()]);
  const sorted = [...new Set([...labels].map(canonicalLabel).filter((l) => !l.startsWith('\\')))].sort();
  for (const label of sorted) {
    let base = [...label].map((c) => (KEYWORD_CHAR.test(c) ? c : '_')).join('');
    if (base.startsWith('$')) base = `_${base.slice(1)}`;
    base = base.slice(0, MAX_KEYWORD_LENGTH);
    let kw = base;
    for (let n = 2; used.has(kw.toLowerCase()); n++) kw = `${base.slice(0, MAX_KEYWORD_LENGTH - String(n).length - 1)}-${n}`;
    used.add(kw.toLowerCase());
    out.set(label, kw);
  }
  return out;
}
