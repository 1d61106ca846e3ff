/**
 * One Maildir folder as the engine sees it: every message file with a UID, and the folder's
 * UIDVALIDITY and UIDNEXT.
 *
 * UIDs come from `dovecot-uidlist` when the folder has one, so they are the UIDs Dovecot serves.
 * Files the uidlist does not name get UIDs after its last, in name order (Maildir names start
 * with the delivery time, so new mail sorts last). Without a uidlist (Courier, mutt, a copied
 * tree), or with files it does not name, those UIDs are only as stable as the set of files: the
 * UIDVALIDITY is then derived from the files' names, so that any change other than what the
 * uidlist accounts for shows as a new UIDVALIDITY and the engine plans the folder afresh by content
 * rather than trusting UIDs that may have moved.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMaildirName } from './info-flags.js';
import { readUidList, type UidList } from './uidlist.js';

export interface IndexedMessage {
  uid: number;
  /** Path relative to the folder directory (`cur/...` or `new/...`). */
  rel: string;
  base: string;
  letters: string;
  virtualSize: number | undefined;
  /** Set for an entry that is not a regular file (a link is never followed): reported, not read. */
  notAFile?: string;
}

export interface FolderIndex {
  dir: string;
  uidValidity: number;
  uidNext: number;
  messages: IndexedMessage[];
  byUid: Map<number, IndexedMessage>;
  /** The uidlist as read (undefined when the folder has none). */
  uidList: UidList | undefined;
  /** Files that are not regular files (links, devices) or lines of the uidlist that contradict it. */
  ignored: string[];
}

/** Reads a folder directory's messages and UIDs. */
export async function indexFolder(dir: string): Promise<FolderIndex> {
  const uidList = await readUidList(dir);
  const ignored = [...(uidList?.contradictions.map((l) => `${join(dir, 'dovecot-uidlist')}: ${l}`) ?? [])];
  const files: { rel: string; base: string; letters: string; virtualSize: number | undefined; notAFile?: string }[] = [];
  for (const sub of ['new', 'cur'] as const) {
    let entries: Dirent[];
    try {
      // File types from the directory itself (no stat per file): a quiet rerun of a big folder
      // costs one readdir.
      entries = await readdir(join(dir, sub), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (const entry of entries) {
      const name = entry.name;
      if (name.startsWith('.') || entry.isDirectory()) continue;
      // Some file systems do not report types in directories: ask them.
      const st = entry.isFile() || entry.isSymbolicLink() ? entry : await lstat(join(dir, sub, name)).catch(() => undefined);
      if (!st) continue; // gone since readdir (moved new/ -> cur/ by a live server)
      const parsed = parseMaildirName(name);
      const file = { rel: `${sub}/${name}`, base: parsed.base, letters: sub === 'new' ? '' : parsed.letters, virtualSize: parsed.virtualSize };
      if (!st.isFile()) {
        if (st.isDirectory()) continue;
        ignored.push(join(dir, sub, name));
        files.push({ ...file, notAFile: st.isSymbolicLink() ? 'a symbolic link (not followed)' : 'not a regular file' });
        continue;
      }
      files.push(file);
    }
  }
  // The same message in new/ and cur/ (seen mid-move): keep cur/'s.
  const byBase = new Map<string, (typeof files)[number]>();
  for (const f of files) if (!byBase.has(f.base) || f.rel.startsWith('cur/')) byBase.set(f.base, f);
  const listed: IndexedMessage[] = [];
  const unlisted: (typeof files)[number][] = [];
  for (const f of byBase.values()) {
    const uid = uidList?.uids.get(f.base);
    if (uid !== undefined) listed.push({ uid, ...f });
    else unlisted.push(f);
  }
  listed.sort((a, b) => a.uid - b.uid);
  unlisted.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  let next = uidList?.nextUid ?? 1;
  const messages = [...listed, ...unlisted.map((f) => ({ uid: next++, ...f }))];
  let uidValidity = uidList?.uidValidity ?? 0;
  if (!uidList || unlisted.length > 0) {
    const h = createHash('sha256').update(String(uidList?.uidValidity ?? 0));
    for (const f of unlisted) h.update('\u0000' + f.base);
    uidValidity = (h.digest().readUInt32BE(0) >>> 1) + 1;
  }
  return { dir, uidValidity, uidNext: next, messages, byUid: new Map(messages.map((m) => [m.uid, m])), uidList, ignored };
}
