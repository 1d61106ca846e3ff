/**
 * The manifest of one EML folder: `.mailmover.json` beside the `.eml` files, holding what a bare
 * .eml file cannot (IMAP UIDs, flags and INTERNALDATE), so that a round trip through an EML tree
 * keeps them. A tree without manifests (any exporter's) still reads: UIDs in file-name order,
 * INTERNALDATE from the file's mtime, no flags.
 *
 * A writer records a batch in the manifest before the files of the batch are renamed into place:
 * after a crash the manifest may name a file that never arrived (ignored: only files that exist
 * are messages), never the other way round, so no message that arrived loses its flags.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MANIFEST = '.mailmover.json';

export interface ManifestEntry {
  uid: number;
  flags: string[];
  internalDate?: string | undefined;
}

export interface Manifest {
  version: 1;
  uidValidity: number;
  nextUid: number;
  messages: Record<string, ManifestEntry>;
}

/** Reads a folder's manifest; undefined when there is none or it is not one (then the folder reads as a bare tree). */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
  const m = parsed as Partial<Manifest>;
  if (m?.version !== 1 || !Number.isSafeInteger(m.uidValidity) || !Number.isSafeInteger(m.nextUid) || typeof m.messages !== 'object' || m.messages === null) return undefined;
  const messages: Record<string, ManifestEntry> = {};
  const seen = new Set<number>();
  for (const [name, e] of Object.entries(m.messages)) {
    if (!e || !Number.isSafeInteger(e.uid) || e.uid < 1 || seen.has(e.uid) || name.includes('/')) continue;
    seen.add(e.uid);
    messages[name] = { uid: e.uid, flags: Array.isArray(e.flags) ? e.flags.filter((f): f is string => typeof f === 'string') : [], internalDate: typeof e.internalDate === 'string' ? e.internalDate : undefined };
  }
  const top = Math.max(0, ...[...seen]);
  return { version: 1, uidValidity: m.uidValidity!, nextUid: Math.max(m.nextUid!, top + 1), messages };
}

/** Writes a folder's manifest (to a temporary file, renamed into place). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const tmp = join(dir, `${MANIFEST}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(manifest), { mode: 0o600 });
  await rename(tmp, join(dir, MANIFEST));
}

export function newManifest(): Manifest {
  return { version: 1, uidValidity: Math.max(1, Math.floor(Date.now() / 1000) >>> 0), nextUid: 1, messages: {} };
}

export interface EmlMessage {
  uid: number;
  file: string;
  /** Set for an entry that is not a regular file (a link is never followed): reported, not read. */
  notAFile?: string;
  flags: string[];
  internalDate: Date | undefined;
}

/** One folder's messages with UIDs, and its UIDVALIDITY and UIDNEXT. */
export interface EmlIndex {
  uidValidity: number;
  uidNext: number;
  messages: EmlMessage[];
  byUid: Map<number, EmlMessage>;
  manifest: Manifest | undefined;
  /** `.eml` entries that are not regular files (links, directories). */
  ignored: string[];
}

/**
 * Indexes a folder directory. Files the manifest does not name get UIDs after its last, in name
 * order, and then the UIDVALIDITY is derived from their names: those UIDs hold only as long as the
 * set of files does, and a new UIDVALIDITY makes the engine plan the folder by content.
 */
export async function indexEmlFolder(dir: string): Promise<EmlIndex> {
  const manifest = await readManifest(dir);
  const ignored: string[] = [];
  const names: string[] = [];
  const notFiles = new Map<string, string>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!/\.eml$/i.test(entry.name) || entry.name.startsWith('.') || entry.isDirectory()) continue;
    if (!entry.isFile()) {
      ignored.push(join(dir, entry.name));
      notFiles.set(entry.name, entry.isSymbolicLink() ? 'a symbolic link (not followed)' : 'not a regular file');
    }
    names.push(entry.name);
  }
  names.sort();
  const listed: EmlMessage[] = [];
  const unlisted: string[] = [];
  for (const file of names) {
    const e = manifest?.messages[file];
    const notAFile = notFiles.get(file);
    if (e) listed.push({ uid: e.uid, file, flags: e.flags, internalDate: e.internalDate ? new Date(e.internalDate) : undefined, ...(notAFile ? { notAFile } : {}) });
    else unlisted.push(file);
  }
  listed.sort((a, b) => a.uid - b.uid);
  let next = manifest?.nextUid ?? 1;
  const messages: EmlMessage[] = [...listed, ...unlisted.map((file) => ({ uid: next++, file, flags: [], internalDate: undefined, ...(notFiles.has(file) ? { notAFile: notFiles.get(file)! } : {}) }))];
  let uidValidity = manifest?.uidValidity ?? 0;
  if (!manifest || unlisted.length > 0) {
    const h = createHash('sha256').update(String(manifest?.uidValidity ?? 0));
    for (const f of unlisted) h.update('\u0000' + f);
    uidValidity = (h.digest().readUInt32BE(0) >>> 1) + 1;
  }
  return { uidValidity, uidNext: next, messages, byUid: new Map(messages.map((m) => [m.uid, m])), manifest, ignored };
}

/** True when a path is a directory and not a link. */
export async function isRealDir(path: string): Promise<boolean> {
  return lstat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
