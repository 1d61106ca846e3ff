/**
 * Reads an archive a tool wrote (a Maildir tree or an mbox tree) with an independent reader,
 * Python's stdlib `mailbox` (bench/read-archive.py), into the same {@link Snapshot} shape as an
 * IMAP read-back, so verify.ts compares it with the source in the same way.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FolderInfo, MessageInfo, Snapshot } from './verify.js';

const SCRIPT = fileURLToPath(new URL('./read-archive.py', import.meta.url));

export type ArchiveKind = 'maildir' | 'mbox';

interface RawFolder {
  path: string;
  noSelect: boolean;
  messages: Omit<MessageInfo, 'uid'>[];
}

/** Runs the reader; rejects with its stderr when it fails. */
export async function readArchive(kind: ArchiveKind, root: string, opts: { inbox?: string } = {}): Promise<Snapshot> {
  const args = [SCRIPT, kind, root, ...(opts.inbox ? ['--inbox', opts.inbox] : [])];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`read-archive.py ${kind} ${root} exited ${code}: ${err.slice(-800)}`))));
  });
  const parsed = JSON.parse(out) as { folders: RawFolder[] };
  const folders = new Map<string, FolderInfo>();
  let messages = 0;
  let bytes = 0;
  for (const f of parsed.folders) {
    const list = f.messages.map((m, i) => ({ ...m, uid: i + 1 }));
    folders.set(f.path, { path: f.path, noSelect: f.noSelect, messages: list });
    messages += list.length;
    bytes += list.reduce((a, m) => a + m.size, 0);
  }
  return { folders, messages, bytes };
}

/** Message counts per selectable folder of a snapshot (the archive tools' count check). */
export function snapshotCounts(s: Snapshot): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [path, f] of s.folders) if (!f.noSelect) counts.set(path, f.messages.length);
  return counts;
}
