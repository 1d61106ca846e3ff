/**
 * One open PST per file for the whole process: the engine opens a source store per connection
 * lane (and again after a reconnect), and each would otherwise read the file's node tree and
 * index every folder again. Stores of the same file (same path, inode, size and mtime) share one
 * {@link PstArchive} and its folder indexes; it is closed when the last of them closes.
 * pst-extractor's calls are synchronous, so stores sharing it never interleave inside one.
 */
import { stat } from 'node:fs/promises';
import type { PstFolderIndex } from './folder-index.js';
import { PstArchive, type PstFolderNode } from './pst-file.js';

export interface SharedArchive {
  archive: PstArchive;
  /** The folder tree, once walked. */
  folders?: PstFolderNode[];
  /** Folder indexes by the folder's node id. */
  indexes: Map<number, PstFolderIndex>;
}

interface Entry {
  opened: Promise<SharedArchive>;
  refs: number;
}

const open = new Map<string, Entry>();

/** The shared archive of a file, opened when no store has it open; pair with {@link releaseArchive}. */
export async function acquireArchive(file: string): Promise<{ key: string; shared: SharedArchive }> {
  const st = await stat(file).catch(() => undefined);
  // A file that is not there is opened (and reported) by PstArchive.open, never shared.
  const key = st ? `${file}\u0000${st.ino}\u0000${st.size}\u0000${st.mtimeMs}` : `${file}\u0000missing\u0000${Math.random()}`;
  let entry = open.get(key);
  if (!entry) {
    entry = { opened: PstArchive.open(file).then((archive) => ({ archive, indexes: new Map() })), refs: 0 };
    open.set(key, entry);
    entry.opened.catch(() => open.delete(key));
  }
  entry.refs++;
  try {
    return { key, shared: await entry.opened };
  } catch (err) {
    entry.refs--;
    throw err;
  }
}

export function releaseArchive(key: string): void {
  const entry = open.get(key);
  if (!entry || --entry.refs > 0) return;
  open.delete(key);
  void entry.opened.then((s) => s.archive.close()).catch(() => undefined);
}
