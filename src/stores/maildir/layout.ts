/**
 * Where a Maildir tree keeps its folders, in the two layouts Dovecot and Courier use:
 * - `maildirpp` (Maildir++, the default): the root is INBOX; folder `A/B` is the directory
 *   `<root>/.A.B` with a `maildirfolder` file; the hierarchy separator is `.`.
 * - `fs` (Dovecot's `LAYOUT=fs`): the root is INBOX; folder `A/B` is `<root>/A/B`; separator `/`.
 * Folder name segments are spelled in modified UTF-7 on disk, as Dovecot does. Nothing here
 * follows a symbolic link: a link inside the tree is left out, so no read or write leaves the root.
 */
import { lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { safeSegment } from '../../core/mailbox-path.js';
import { decodeMutf7, encodeMutf7 } from './mutf7.js';

export type MaildirLayout = 'maildirpp' | 'fs';

/** The directories every Maildir folder has. */
export const MAILDIR_SUBDIRS = ['cur', 'new', 'tmp'] as const;

/** A folder found on disk. */
export interface DiskFolder {
  path: string[];
  /** True when the directory holds messages (has cur/); false for a parent only. */
  selectable: boolean;
}

/** The separator the layout shows folder names with. */
export function layoutDelimiter(layout: MaildirLayout): string {
  return layout === 'fs' ? '/' : '.';
}

/**
 * The directory of a folder. Segments must already be safe (the planner replaces the separator,
 * `/`, NUL and control characters, and renames `.`/`..`); they are checked again here, so that no
 * path from a hostile source can name a directory outside the root.
 */
export function folderDir(root: string, layout: MaildirLayout, path: readonly string[]): string {
  if (path.length === 1 && path[0]!.toUpperCase() === 'INBOX') return root;
  // Spelled as an IMAP store spells a name for its server (core/mailbox-path.ts): the separator
  // and control characters replaced, "", "." and ".." prefixed; then checked again.
  // A "/" cannot be in a file name either (Maildir++ levels are parts of one directory name).
  const encoded = path.map((raw) => safeSegment(raw, layoutDelimiter(layout)).replace(/\//g, '_')).map((seg) => {
    // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
    if (seg === '' || seg === '.' || seg === '..' || /[/\u0000-\u001f]/.test(seg) || (layout === 'maildirpp' && seg.includes('.'))) {
      throw new Error(`the folder name segment "${seg}" cannot be stored in a Maildir`);
    }
    return encodeMutf7(seg);
  });
  return layout === 'fs' ? join(root, ...encoded) : join(root, `.${encoded.join('.')}`);
}

/** Lists the folders below the root (INBOX, the root itself, is always there). */
export async function listDiskFolders(root: string, layout: MaildirLayout): Promise<{ folders: DiskFolder[]; skipped: string[] }> {
  const folders: DiskFolder[] = [{ path: ['INBOX'], selectable: true }];
  const skipped: string[] = [];
  const seen = new Set<string>(['INBOX']);
  const add = (path: string[], selectable: boolean) => {
    // Parents that exist only as a name in a Maildir++ directory name are listed as holding no messages.
    for (let i = 1; i < path.length; i++) {
      const parent = path.slice(0, i);
      if (!seen.has(parent.join('\u0000'))) {
        seen.add(parent.join('\u0000'));
        folders.push({ path: parent, selectable: false });
      }
    }
    const key = path.join('\u0000');
    const existing = folders.find((f) => f.path.join('\u0000') === key);
    if (existing) existing.selectable ||= selectable;
    else {
      seen.add(key);
      folders.push({ path, selectable });
    }
  };
  if (layout === 'maildirpp') {
    for (const entry of await readdir(root, { withFileTypes: true })) {
      if (!entry.name.startsWith('.') || entry.name === '.' || entry.name === '..') continue;
      if (!entry.isDirectory()) {
        if (entry.isSymbolicLink()) skipped.push(join(root, entry.name));
        continue;
      }
      const segs = entry.name.slice(1).split('.');
      if (segs.some((s) => s === '')) {
        skipped.push(join(root, entry.name));
        continue;
      }
      add(segs.map(decodeMutf7), await isMaildir(join(root, entry.name)));
    }
  } else {
    const walk = async (dir: string, prefix: string[], depth: number): Promise<void> => {
      if (depth > 64) return;
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if ((MAILDIR_SUBDIRS as readonly string[]).includes(entry.name) || entry.name.startsWith('dovecot') || entry.name.startsWith('.')) continue;
        if (!entry.isDirectory()) {
          if (entry.isSymbolicLink()) skipped.push(join(dir, entry.name));
          continue;
        }
        const path = [...prefix, decodeMutf7(entry.name)];
        // INBOX is the root itself; a top-level INBOX directory holds only INBOX's children.
        if (path.length === 1 && path[0]!.toUpperCase() === 'INBOX') {
          await walk(join(dir, entry.name), ['INBOX'], depth + 1);
          continue;
        }
        add(path, await isMaildir(join(dir, entry.name)));
        await walk(join(dir, entry.name), path, depth + 1);
      }
    };
    await walk(root, [], 0);
  }
  return { folders, skipped };
}

/** True when a directory (not a link) has a `cur` directory (not a link). */
export async function isMaildir(dir: string): Promise<boolean> {
  try {
    const [d, cur] = await Promise.all([lstat(dir), lstat(join(dir, 'cur'))]);
    return d.isDirectory() && cur.isDirectory();
  } catch {
    return false;
  }
}

/** Creates a folder's directories (and Maildir++'s `maildirfolder` marker); true when it was new. */
export async function makeFolder(root: string, layout: MaildirLayout, path: readonly string[]): Promise<boolean> {
  const dir = folderDir(root, layout, path);
  const existed = await isMaildir(dir);
  for (const sub of MAILDIR_SUBDIRS) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  if (layout === 'maildirpp' && dir !== root) await writeFile(join(dir, 'maildirfolder'), '', { flag: 'a' });
  return !existed;
}

/**
 * Reads the `subscriptions` file: Dovecot 2.3's version 2 (`V\t2`, a blank line, then names with
 * TAB between levels) or the older one (a name per line, levels split by the layout's separator).
 */
export async function readSubscriptions(root: string, layout: MaildirLayout): Promise<string[][]> {
  let text: string;
  try {
    text = await readFile(join(root, 'subscriptions'), 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  const v2 = lines[0] === 'V\t2';
  const names = v2 ? lines.slice(1) : lines;
  return names.filter((l) => l.trim() !== '').map((l) => (v2 ? l.split('\t') : l.split(layoutDelimiter(layout))).map(decodeMutf7));
}

/** Adds a folder to `subscriptions` (version 2), written to a temporary file and renamed into place. */
export async function addSubscription(root: string, layout: MaildirLayout, path: readonly string[]): Promise<void> {
  const current = await readSubscriptions(root, layout);
  const key = path.join('\t');
  if (current.some((p) => p.join('\t') === key)) return;
  current.push([...path]);
  const text = 'V\t2\n\n' + current.map((p) => p.map(encodeMutf7).join('\t') + '\n').join('');
  const tmp = join(root, `.subscriptions.${process.pid}.tmp`);
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, join(root, 'subscriptions'));
}
