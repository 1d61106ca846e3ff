/**
 * Dovecot's `dovecot-uidlist`: the UIDVALIDITY, the next UID and the UID of each file of a
 * Maildir folder, so that UIDs stay stable across reads (and across Dovecot and mailmover).
 *
 * Version 3 (Dovecot 1.0 and later): a header `3 V<uidvalidity> N<next uid> G<guid>`, then a line
 * `<uid> [<ext fields>] :<unique part of the file name>` per message, ascending. Version 1 (older):
 * `1 <uidvalidity> <next uid>` and lines `<uid> <name>`. Dovecot appends lines without rewriting
 * the header, so the next UID is the larger of `N` and the highest UID listed plus one.
 *
 * Updates follow Dovecot's own locking: the new content is written to `dovecot-uidlist.lock`
 * (created exclusively: that is the lock), synced, then renamed over `dovecot-uidlist`.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';

export const UIDLIST = 'dovecot-uidlist';
const LOCK = 'dovecot-uidlist.lock';
/** Dovecot treats a uidlist lock older than this as left behind by a dead process. */
const STALE_LOCK_MS = 120_000;
const LOCK_WAIT_MS = 30_000;

export interface UidList {
  uidValidity: number;
  nextUid: number;
  guid: string;
  /** File base name (unique part) -> UID. */
  uids: Map<string, number>;
  /** Lines that could not be read, or that contradict others (a UID twice, a name twice). */
  contradictions: string[];
}

/** Reads a folder's uidlist; undefined when there is none (or it is unreadable as a whole). */
export async function readUidList(dir: string): Promise<UidList | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, UIDLIST), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseUidList(text);
}

/** Parses uidlist text; undefined when the header is not one this knows. */
export function parseUidList(text: string): UidList | undefined {
  const lines = text.split('\n');
  const header = lines.shift() ?? '';
  let uidValidity = 0;
  let nextUid = 1;
  let guid = '';
  let version: number;
  const v3 = /^3 (.*)$/.exec(header);
  const v1 = /^1 (\d+) (\d+)$/.exec(header);
  if (v3) {
    version = 3;
    for (const field of v3[1]!.split(' ')) {
      if (field.startsWith('V')) uidValidity = Number(field.slice(1));
      else if (field.startsWith('N')) nextUid = Number(field.slice(1));
      else if (field.startsWith('G')) guid = field.slice(1);
    }
  } else if (v1) {
    version = 1;
    uidValidity = Number(v1[1]);
    nextUid = Number(v1[2]);
  } else return undefined;
  if (!Number.isSafeInteger(uidValidity) || uidValidity < 1 || uidValidity > 0xffffffff) return undefined;
  if (!Number.isSafeInteger(nextUid) || nextUid < 1) nextUid = 1;
  const uids = new Map<string, number>();
  const seenUids = new Set<number>();
  const contradictions: string[] = [];
  let last = 0;
  for (const line of lines) {
    if (!line.trim()) continue;
    const m = version === 3 ? /^(\d+)(?: [^:]*)? :(.+)$/.exec(line) : /^(\d+) (\S+)$/.exec(line);
    const uid = m ? Number(m[1]) : NaN;
    const name = m?.[2];
    if (!m || !name || !Number.isSafeInteger(uid) || uid < 1 || uid > 0xffffffff || uid <= last || seenUids.has(uid) || uids.has(name)) {
      contradictions.push(line);
      continue;
    }
    last = uid;
    seenUids.add(uid);
    uids.set(name, uid);
  }
  nextUid = Math.max(nextUid, last + 1);
  return { uidValidity, nextUid, guid, uids, contradictions };
}

/** A new, empty uidlist (UIDVALIDITY from the clock, as Dovecot does). */
export function newUidList(): UidList {
  return { uidValidity: Math.max(1, Math.floor(Date.now() / 1000) >>> 0), nextUid: 1, guid: randomBytes(16).toString('hex'), uids: new Map(), contradictions: [] };
}

/** The text of a version-3 uidlist, lines in UID order. */
export function uidListText(list: UidList): string {
  const entries = [...list.uids].sort((a, b) => a[1] - b[1]);
  return `3 V${list.uidValidity} N${list.nextUid} G${list.guid}\n` + entries.map(([name, uid]) => `${uid} :${name}\n`).join('');
}

/**
 * Runs `update` under the folder's uidlist lock and writes what it returns as the new uidlist.
 * The uidlist is read again under the lock, so a concurrent writer's UIDs are kept.
 */
export async function updateUidList(dir: string, update: (current: UidList) => UidList | Promise<UidList>, signal?: AbortSignal): Promise<UidList> {
  const lockPath = join(dir, LOCK);
  const started = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      try {
        const next = await update((await readUidList(dir)) ?? newUidList());
        await handle.writeFile(uidListText(next));
        await handle.sync();
        await handle.close();
        await rename(lockPath, join(dir, UIDLIST));
        return next;
      } catch (err) {
        await handle.close().catch(() => undefined);
        await unlink(lockPath).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() - started > LOCK_WAIT_MS) {
        throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The Maildir folder ${dir} stays locked by another program (${LOCK} is ${Math.round(age / 1000)} s old). Stop the program that holds it, or remove the lock file if no program does.`, { scope: 'folder', retry: 'later' });
      }
      await sleep(100);
    }
  }
}
