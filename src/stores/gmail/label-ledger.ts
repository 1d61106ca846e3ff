/**
 * Where each Gmail message was copied, by X-GM-MSGID, kept in the state ledger without a new
 * schema: one folder record of the mailbox, named {@link PLACEMENT_RECORD}, holds a row per
 * message (source UID: a 52-bit number derived from the X-GM-MSGID; key: the X-GM-MSGID and the
 * source folder (label) its copy is in). The copy engine never plans, resets or lists that
 * record: it is not a folder of the plan. Both ledger backends keep it like any folder's rows.
 *
 * In `first` and `keywords` modes a message already copied stays where it was copied when its
 * labels change (see label-run.ts), so a rerun does not copy it again into its new place.
 */
import { createHash } from 'node:crypto';
import type { FolderRecord, MailboxRecord } from '../../state/types.js';

/** The ledger folder record that holds the placements (shown by `mailmover report` as a folder of the mailbox). */
export const PLACEMENT_RECORD = '[mailmover] Gmail placements by X-GM-MSGID';

/** The row's number for an X-GM-MSGID: 52 bits of its SHA-256, plus one (a safe integer, never 0). */
export function placementUid(msgId: string): number {
  return parseInt(createHash('sha256').update(msgId).digest('hex').slice(0, 13), 16) + 1;
}

/** The placements recorded in a mailbox's ledger. */
export class PlacementLedger {
  private record: FolderRecord | undefined;
  private readonly known = new Map<string, string>();

  constructor(private readonly state: MailboxRecord) {}

  /** X-GM-MSGID -> the source folder (label) its copy is in, as recorded by earlier runs. */
  async load(): Promise<Map<string, string>> {
    this.record = await this.state.folder(PLACEMENT_RECORD, '');
    const { rows } = await this.record.copies();
    for (const r of rows) {
      const tab = r.key.indexOf('\t');
      if (tab > 0) this.known.set(r.key.slice(0, tab), r.key.slice(tab + 1));
    }
    return new Map(this.known);
  }

  /** Records that these messages have a copy in `folder` (those recorded already are left as they are). */
  async remember(folder: string, items: readonly { msgId: string; size: number }[]): Promise<void> {
    const fresh = items.filter((i) => !this.known.has(i.msgId));
    if (fresh.length === 0) return;
    this.record ??= await this.state.folder(PLACEMENT_RECORD, '');
    await this.record.recordPresent(fresh.map((i) => ({ source: { uid: placementUid(i.msgId), key: `${i.msgId}\t${folder}`, size: i.size, flags: [] }, destUid: 0 })));
    for (const i of fresh) this.known.set(i.msgId, folder);
  }
}

/**
 * The mailbox record the copy engine uses, with the folder records of `folders` (the label
 * folders) telling `onCopied` what they record as copied or found present.
 */
export function recordingPlacements(state: MailboxRecord, isLabelFolder: (name: string) => boolean, onCopied: (folder: string, uids: number[]) => Promise<void>): MailboxRecord {
  return {
    release: () => state.release(),
    async folder(sourceName, destName) {
      const r = await state.folder(sourceName, destName);
      if (!isLabelFolder(sourceName)) return r;
      return {
        trusted: () => r.trusted(),
        skippedUids: () => r.skippedUids(),
        reset: () => r.reset(),
        async recordPresent(pairs) {
          await r.recordPresent(pairs);
          await onCopied(sourceName, pairs.map((p) => p.source.uid));
        },
        intend: (items) => r.intend(items),
        async settle(done, failed) {
          await r.settle(done, failed);
          await onCopied(sourceName, done.map((d) => d.uid));
        },
        skip: (uid, code, reason, attempts) => r.skip(uid, code, reason, attempts),
        markSynced: (m) => r.markSynced(m),
        unmark: () => r.unmark(),
        copies: () => r.copies(),
        updateFlags: (items) => r.updateFlags(items),
        forget: (uids) => r.forget(uids),
      };
    },
  };
}
