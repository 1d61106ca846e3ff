/**
 * One run's view of a Gmail source by labels, shared by every source connection of the run:
 * All Mail listed once (size, flags, date, identity, then X-GM-MSGID/THRID/LABELS), each message
 * placed by label-modes.ts, and the label folders that result, each a list of All Mail UIDs.
 * Built when the source's folders are first listed (before planning); label-view.ts serves the
 * folders from it.
 */
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { isInbox, pathKey } from '../../core/mailbox-path.js';
import { viewRoleOf } from '../../plan/special-use.js';
import type { MailboxRecord } from '../../state/types.js';
import type { ImapSession } from '../imap/session.js';
import type { FolderInfo, FolderStatus, MailStore, MessageMeta } from '../mail-store.js';
import { fetchGmailFacts, type GmailFacts } from './label-fetch.js';
import { PlacementLedger, recordingPlacements } from './label-ledger.js';
import { ARCHIVE, keywordMap, parseLabelMode, parseLabelPriority, placeMessage, type GmailLabelMode } from './label-modes.js';
import type { GmailLabelReport, OtherLabelsRecord } from './label-report.js';

export interface LabelRunOptions {
  mode: Exclude<GmailLabelMode, 'off'>;
  /** `first`: the admin's label priority (parsed). */
  priority: readonly string[];
  /** A move was asked for: refused once the source turns out to be Gmail. */
  deleteSource?: boolean;
  logger?: Logger | undefined;
}

/** One label folder of the run: what the source lists (or would), and its messages. */
export interface LabelFolder {
  info: FolderInfo;
  members: MessageMeta[];
  failures: { uid: number; error: Error }[];
}

interface Snapshot {
  allMail: FolderInfo;
  allMailValidity: bigint;
  /** The UIDVALIDITY label folders report: All Mail's, moved above 32 bits by the mode, so that no real folder's marks are ever taken for a label folder's. */
  validity: bigint;
  folders: Map<string, LabelFolder>;
  report: GmailLabelReport;
}

const MODE_CODE = { folders: 1n, first: 2n, keywords: 3n } as const;

export class LabelRun {
  private snap: Snapshot | undefined;
  private loading: Promise<Snapshot> | undefined;
  private ledger: PlacementLedger | undefined;
  private facts = new Map<number, GmailFacts>();

  constructor(readonly options: LabelRunOptions) {}

  /** The ledger of the run's mailbox (none without --state or in a plan). */
  attachState(state: MailboxRecord | undefined): void {
    this.ledger = state ? new PlacementLedger(state) : undefined;
  }

  /** The mailbox record for the copy engine: label folders also record where each message was copied (`first`, `keywords`). */
  wrapState(state: MailboxRecord | undefined): MailboxRecord | undefined {
    if (!state || this.options.mode === 'folders') return state;
    return recordingPlacements(state, (name) => !!this.snap?.folders.has(name), (folder, uids) => this.remember(folder, uids));
  }

  /** True once a Gmail source was read by its labels. */
  get active(): boolean {
    return !!this.snap;
  }

  /** The report's part, once active. */
  report(): GmailLabelReport | undefined {
    return this.snap?.report;
  }

  /** The label folder of that source name, when it is one. */
  folder(name: string | undefined): LabelFolder | undefined {
    return name === undefined ? undefined : this.snap?.folders.get(name);
  }

  /** The name of the label folder at a path (its pathKey), when there is one. */
  folderNameOf(key: string): string | undefined {
    if (!this.snap) return undefined;
    for (const f of this.snap.folders.values()) if (pathKey(f.info.path) === key) return f.info.name;
    return undefined;
  }

  /** All Mail, once loaded. */
  allMail(): { info: FolderInfo; validity: bigint } | undefined {
    return this.snap && { info: this.snap.allMail, validity: this.snap.allMailValidity };
  }

  /** The status a label folder reports (no UIDNEXT: a label folder is always planned from the listing). */
  status(f: LabelFolder): FolderStatus {
    return { uidValidity: this.snap!.validity, uidNext: undefined, exists: f.members.length + f.failures.length, bytes: f.members.reduce((n, m) => n + m.size, 0) };
  }

  /**
   * The folders a Gmail source shows: the listed ones that are not labels (Trash, Spam, the views
   * All Mail, Starred and Important, which the planner leaves out, \Noselect parents) and the label
   * folders in place of the listed label folders. Lists All Mail the first time (on `inner`).
   */
  async folders(inner: MailStore & ImapSession, listed: readonly FolderInfo[]): Promise<FolderInfo[] | undefined> {
    const allMail = listed.find((f) => !f.outside && f.specialUse?.toLowerCase() === '\\all');
    if (!allMail) {
      this.options.logger?.warn({}, 'the source offers X-GM-EXT-1 but lists no \\All folder: its folders are copied as listed');
      return undefined;
    }
    if (this.options.deleteSource) {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, '--delete-source: the source is Gmail read by its labels (--gmail-labels), where one message is in several folders; mailmover does not remove messages from it. Copy without --delete-source, or pass --gmail-labels off.', { scope: 'mailbox' });
    }
    if (!this.snap) {
      this.loading ??= this.build(inner, allMail, listed).finally(() => (this.loading = undefined));
      this.snap = await this.loading;
    }
    const replaced = (f: FolderInfo) => !f.outside && !f.noSelect && !viewRoleOf(f) && !isTrashOrSpam(f);
    return [...listed.filter((f) => !replaced(f)), ...[...this.snap.folders.values()].map((f) => f.info)];
  }

  private async build(inner: MailStore & ImapSession, allMail: FolderInfo, listed: readonly FolderInfo[]): Promise<Snapshot> {
    const { mode, priority } = this.options;
    const status = await inner.openFolder(allMail.path, true, allMail.name);
    const listing = await inner.listMessages();
    this.facts = await fetchGmailFacts(inner);
    await inner.closeFolder();
    const recorded = mode === 'folders' ? new Map<string, string>() : ((await this.ledger?.load()) ?? new Map<string, string>());

    const personal = listed.filter((f) => !f.outside && !f.noSelect);
    const byName = new Map(personal.map((f) => [f.name, f]));
    const special = (use: string, name: string): FolderInfo => personal.find((f) => f.specialUse?.toLowerCase() === use.toLowerCase()) ?? virtual([name], use);
    const inbox = personal.find((f) => isInbox(f.path)) ?? virtual(['INBOX'], undefined);
    const labelled = byName.get('Archive');
    const infoOf = (place: string): FolderInfo => {
      if (place === '\\Inbox') return inbox;
      if (place === '\\Sent') return special('\\Sent', 'Sent');
      if (place === '\\Draft') return special('\\Drafts', 'Drafts');
      // A user label named Archive takes the archived messages too (one folder, not a collision).
      if (place === ARCHIVE) return labelled && !labelled.specialUse ? labelled : virtual(['Archive'], '\\Archive');
      return byName.get(place) ?? { ...virtual(place.split('/'), undefined), name: place, delimiter: '/' };
    };
    const folders = new Map<string, LabelFolder>();
    const add = (info: FolderInfo) => {
      let f = folders.get(info.name);
      if (!f) folders.set(info.name, (f = { info, members: [], failures: [] }));
      return f;
    };
    for (const p of ['\\Inbox', '\\Sent', '\\Draft']) add(infoOf(p));
    // Label folders as Gmail lists them, empty ones too (keywords mode has no label folders).
    if (mode !== 'keywords') for (const f of personal) if (!viewRoleOf(f) && !isTrashOrSpam(f) && f.specialUse === undefined) add(f);

    const allLabels = new Set<string>();
    for (const f of this.facts.values()) for (const l of f.labels) allLabels.add(l);
    const keywords = mode === 'keywords' ? keywordMap(allLabels) : new Map<string, string>();
    const report: GmailLabelReport = { mode, allMail: allMail.name, messages: listing.messages.length + listing.failures.length, copies: 0, extraCopies: 0, archived: 0 };
    const others: OtherLabelsRecord[] = [];
    let kept = 0;
    for (const meta of listing.messages) {
      const facts = this.facts.get(meta.uid);
      if (!facts) {
        add(infoOf(ARCHIVE)).failures.push({ uid: meta.uid, error: new MigrateError(ERROR_CODES.LIST_INCOMPLETE, `Gmail did not say the labels of UID ${meta.uid} in "${allMail.name}"; it is not copied and is tried again next run`, { scope: 'message', retry: 'later' }) });
        continue;
      }
      const p = placeMessage(facts.labels, mode, priority, keywords);
      let names = p.places.map((place) => infoOf(place).name);
      const earlier = recorded.get(facts.msgId);
      if (earlier !== undefined) {
        if (earlier !== names[0]) kept++;
        names = [earlier];
        if (!folders.has(earlier)) add({ ...virtual(earlier.split('/'), undefined), name: earlier, delimiter: '/' });
      } else if (p.otherLabels.length > 0) {
        others.push({ msgId: facts.msgId, uid: meta.uid, folder: names[0]!, labels: p.otherLabels });
      }
      const flags = p.addFlags.length > 0 ? [...new Set([...meta.flags, ...p.addFlags])] : meta.flags;
      const placed = flags === meta.flags ? meta : { ...meta, flags };
      for (const n of names) add(folders.get(n)?.info ?? infoOf(n)).members.push(placed);
      if (p.places[0] === ARCHIVE) report.archived++;
      report.copies += names.length;
    }
    for (const fail of listing.failures) {
      const facts = this.facts.get(fail.uid);
      const place = facts ? placeMessage(facts.labels, mode, priority, keywords).places[0]! : ARCHIVE;
      add(infoOf(place)).failures.push(fail);
    }
    report.extraCopies = report.copies - listing.messages.length;
    if (mode !== 'folders') report.keptInEarlierFolder = kept;
    if (mode === 'keywords') report.keywords = Object.fromEntries(keywords);
    if (mode === 'first') {
      report.otherLabelMessages = others.length;
      report.otherLabels = others;
    }
    const validity = (MODE_CODE[mode] << 32n) | status.uidValidity;
    return { allMail, allMailValidity: status.uidValidity, validity, folders, report };
  }

  /** Records that these All Mail UIDs have a copy in `folder` (first, keywords). */
  private async remember(folder: string, uids: readonly number[]): Promise<void> {
    if (!this.ledger || uids.length === 0) return;
    const sizes = new Map(this.snap?.folders.get(folder)?.members.map((m) => [m.uid, m.size]));
    const items = uids.flatMap((uid) => {
      const f = this.facts.get(uid);
      return f ? [{ msgId: f.msgId, size: sizes.get(uid) ?? 0 }] : [];
    });
    await this.ledger.remember(folder, items);
  }
}

function virtual(path: string[], specialUse: string | undefined): FolderInfo {
  return { path, name: path.join('/'), delimiter: '/', noSelect: false, subscribed: true, specialUse };
}

function isTrashOrSpam(f: FolderInfo): boolean {
  const use = f.specialUse?.toLowerCase();
  return use === '\\trash' || use === '\\junk';
}

/**
 * The run's Gmail label handling from the caller's options, checked before anything connects
 * (undefined for `--gmail-labels off`). migrate and verify take the same options, so that verify
 * compares the folders migrate made.
 */
export function labelRunFor(options: { gmailLabels?: string | undefined; labelPriority?: string | undefined; deleteSource?: boolean | undefined; logger?: LabelRunOptions['logger'] }): LabelRun | undefined {
  const mode = parseLabelMode(options.gmailLabels ?? 'folders');
  const priority = options.labelPriority !== undefined ? parseLabelPriority(options.labelPriority) : [];
  if (priority.length > 0 && mode !== 'first') {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--label-priority decides the folder of --gmail-labels first (the mode is ${mode}).`, { scope: 'config' });
  }
  if (mode === 'off') return undefined;
  return new LabelRun({ mode, priority, deleteSource: !!options.deleteSource, logger: options.logger });
}
