/**
 * Where an mbox tree keeps its folders. Read in both layouts people have:
 * - Dovecot's (`mail_location = mbox:DIR:INBOX=DIR/inbox`) and mutt's: INBOX is `DIR/inbox`,
 *   folder `A` the file `DIR/A`, its children in the directory `DIR/A/` (so a folder holds either
 *   messages or children); names in modified UTF-7, as Dovecot spells them;
 * - Thunderbird's: INBOX is `DIR/Inbox` (any case), children of `A` in `DIR/A.sbd/`.
 * Written in Dovecot's. Files that are not mbox files (Thunderbird's `.msf` indexes, Dovecot's
 * `.imap/` and `.subscriptions`, lock files) are not folders. No symbolic link is followed.
 */
import { lstat, mkdir, open, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { safeSegment } from '../../core/mailbox-path.js';
import { decodeMutf7, encodeMutf7 } from '../maildir/mutf7.js';

const SUBSCRIPTIONS = '.subscriptions';
const MAX_DEPTH = 64;
/** Files of a Thunderbird or mutt profile that live beside mbox files and are not folders. */
const NOT_MAILBOXES = /\.(msf|dat|json|html|sqlite|lock|lck|tmp|mailmover-tmp)$/i;

export interface TreeFolder {
  path: string[];
  /** The mbox file, when the folder holds messages. */
  file: string | undefined;
}

/** The folders of a tree, and what was left out (links, files that are not mbox files). */
export async function listTree(root: string): Promise<{ folders: TreeFolder[]; skipped: string[] }> {
  const folders = new Map<string, TreeFolder>();
  const skipped: string[] = [];
  const add = (path: string[], file: string | undefined) => {
    for (let i = 1; i < path.length; i++) {
      const k = path.slice(0, i).join('\u0000');
      if (!folders.has(k)) folders.set(k, { path: path.slice(0, i), file: undefined });
    }
    const k = path.join('\u0000');
    const had = folders.get(k);
    if (!had || (!had.file && file)) folders.set(k, { path, file });
  };
  const inbox = await inboxFile(root);
  add(['INBOX'], inbox);
  const walk = async (dir: string, prefix: string[], depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || NOT_MAILBOXES.test(entry.name)) continue;
      const full = join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        skipped.push(`${full} (a symbolic link: not followed)`);
        continue;
      }
      if (entry.isDirectory()) {
        const name = entry.name.replace(/\.sbd$/i, '');
        await walk(full, [...prefix, folderName(name, prefix)], depth + 1);
        continue;
      }
      if (!entry.isFile() || (depth === 0 && full === inbox)) continue;
      if (!(await looksLikeMbox(full))) {
        skipped.push(`${full} (not an mbox file: it does not start with "From ")`);
        continue;
      }
      add([...prefix, folderName(entry.name, prefix)], full);
    }
  };
  await walk(root, [], 0);
  return { folders: [...folders.values()], skipped };
}

/** A name on disk as a folder name segment (`INBOX` at the top in any case). */
function folderName(name: string, prefix: readonly string[]): string {
  if (prefix.length === 0 && name.toUpperCase() === 'INBOX') return 'INBOX';
  return decodeMutf7(name);
}

/** The file that is INBOX: `inbox` (Dovecot, mutt) or `Inbox`/`INBOX` (Thunderbird), when one is a regular file. */
export async function inboxFile(root: string): Promise<string | undefined> {
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of ['inbox', ...names.filter((n) => n.toUpperCase() === 'INBOX' && n !== 'inbox')]) {
    const st = await lstat(join(root, name)).catch(() => undefined);
    if (st?.isFile()) return join(root, name);
  }
  return undefined;
}

/** True for an empty file or one that starts with `From `. */
export async function looksLikeMbox(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const buf = Buffer.alloc(5);
    const { bytesRead } = await handle.read(buf, 0, 5, 0);
    return bytesRead === 0 || buf.toString('latin1') === 'From ';
  } finally {
    await handle.close();
  }
}

/**
 * The file a folder is written to, in Dovecot's layout. Segments are spelled as an IMAP store
 * spells a name for its server (core/mailbox-path.ts) and checked again, so that no name from a
 * hostile source names a file outside the root.
 */
export function folderFile(root: string, path: readonly string[]): string {
  if (path.length === 1 && path[0]!.toUpperCase() === 'INBOX') return join(root, 'inbox');
  const segs = path.map((raw, i) => {
    const seg = safeSegment(raw, '/');
    // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
    if (seg.startsWith('.') || /[/\u0000-\u001f]/.test(seg) || /\.(sbd|lock)$/i.test(seg)) throw new Error(`the folder name segment "${seg}" cannot be a file of an mbox tree`);
    return i === 0 && seg.toUpperCase() === 'INBOX' ? 'INBOX' : encodeMutf7(seg);
  });
  return join(root, ...segs);
}

/**
 * Makes the directories above a folder's file. A parent that is an empty mbox file (a folder
 * created before its children were known) becomes a directory; one that holds messages cannot,
 * since in this layout a folder holds messages or children, not both.
 */
export async function makeParents(root: string, path: readonly string[]): Promise<void> {
  for (let i = 1; i < path.length; i++) {
    // INBOX's children live in `INBOX/` (its messages in `inbox`).
    const dir = i === 1 && path[0]!.toUpperCase() === 'INBOX' ? join(root, 'INBOX') : folderFile(root, path.slice(0, i));
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st?.isFile() && st.size === 0) await unlink(dir);
    else if (st) throw new Error(`${dir} is ${st.isFile() ? 'an mbox file with messages' : 'not a directory'}: in Dovecot's mbox layout a folder holds either messages or folders`);
    await mkdir(dir, { mode: 0o700 });
  }
}

/** Removes a directory made for children that never came (best effort). */
export async function removeEmptyDir(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined);
}

/** Dovecot's `.subscriptions` file (version 2, or a name per line with `/` between levels). */
export async function readSubscriptions(root: string): Promise<string[][]> {
  let text: string;
  try {
    text = await readFile(join(root, SUBSCRIPTIONS), 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  const v2 = lines[0] === 'V\t2';
  return (v2 ? lines.slice(1) : lines).filter((l) => l.trim() !== '').map((l) => (v2 ? l.split('\t') : l.split('/')).map(decodeMutf7));
}

/** Adds a folder to `.subscriptions`, written to a temporary file and renamed into place. */
export async function addSubscription(root: string, path: readonly string[]): Promise<void> {
  const current = await readSubscriptions(root);
  if (current.some((p) => p.join('\t') === path.join('\t'))) return;
  current.push([...path]);
  const tmp = join(root, `${SUBSCRIPTIONS}.${process.pid}.tmp`);
  await writeFile(tmp, 'V\t2\n\n' + current.map((p) => p.map(encodeMutf7).join('\t') + '\n').join(''), { mode: 0o600 });
  await rename(tmp, join(root, SUBSCRIPTIONS));
}
