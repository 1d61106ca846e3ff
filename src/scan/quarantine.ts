/**
 * Where flagged messages go instead of the user's folder: a quarantine folder at the destination
 * (policy 'quarantine') or .eml files in a local directory (policy 'skip' with --quarantine-dir).
 *
 * Both are idempotent, so a rerun (or a retry after a lost connection) never stores a message
 * twice: the folder is matched by content identity as a multiset (two identical infected copies
 * at the source are two entries), and a file's name carries the SHA-256 of its bytes.
 */
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { flagsToCopy } from '../core/flags.js';
import { dateOf } from '../core/internal-date.js';
import type { MailStore, MessageMeta } from '../stores/mail-store.js';

/** Losses in a row after which quarantining gives up (and the mailbox stops: nothing flagged is delivered). */
const MAX_LOSSES = 5;

/** The quarantine folder at the destination, shared by every lane. */
export class QuarantineFolder {
  /** Segments of the folder's path in the destination's personal namespace. */
  readonly path: string[];
  /** Content identity (key and size) -> copies in the folder. */
  private known: Map<string, number> | undefined;
  /** Copies this run has counted as its own, per identity. */
  private readonly claimed = new Map<string, number>();
  /** Operations run one at a time: lanes share the folder. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly name: string) {
    this.path = name.split('/').filter((s) => s !== '');
    if (this.path.length === 0) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, 'The quarantine folder name must not be empty.', { scope: 'config' });
  }

  /**
   * Puts a message in the quarantine folder unless an earlier run (or try) already did.
   * Resolves true when it was added, false when it was there.
   */
  put(lane: { dest: MailStore }, meta: MessageMeta, body: Buffer, reconnect: () => Promise<void>, signal?: AbortSignal): Promise<boolean> {
    const run = this.chain.then(() => this.putNow(lane, meta, body, reconnect, signal));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async putNow(lane: { dest: MailStore }, meta: MessageMeta, body: Buffer, reconnect: () => Promise<void>, signal?: AbortSignal): Promise<boolean> {
    const id = `${meta.key}|${meta.size}`;
    for (let losses = 0; ; ) {
      try {
        if (!this.known) await this.load(lane.dest, signal);
        const claimed = this.claimed.get(id) ?? 0;
        if ((this.known!.get(id) ?? 0) > claimed) {
          this.claimed.set(id, claimed + 1);
          return false;
        }
        const [outcome] = await lane.dest.appendBatch(this.path, [{ body, flags: flagsToCopy(meta.flags), internalDate: dateOf(meta.internalDate) }], signal);
        if (!outcome!.ok) throw outcome!.error;
        this.known!.set(id, (this.known!.get(id) ?? 0) + 1);
        this.claimed.set(id, claimed + 1);
        return true;
      } catch (err) {
        const lost = isMigrateError(err) && err.code === ERROR_CODES.CONNECTION_LOST && !signal?.aborted;
        if (!lost || ++losses > MAX_LOSSES) {
          if (isMigrateError(err) && err.scope === 'mailbox') throw err;
          throw new MigrateError(
            ERROR_CODES.QUARANTINE_FAILED,
            `A flagged message (UID ${meta.uid}) could not be put in the quarantine folder "${this.name}": ${(err as Error).message}. The copy stopped so that it is not delivered to the user.`,
            { scope: 'mailbox', cause: err, ...(isMigrateError(err) && err.serverResponse ? { serverResponse: err.serverResponse } : {}) },
          );
        }
        // The append may or may not have arrived: read the folder again before deciding.
        this.known = undefined;
        await reconnect();
      }
    }
  }

  /** Creates the folder when missing and counts what it holds. */
  private async load(dest: MailStore, signal?: AbortSignal): Promise<void> {
    await dest.createFolder(this.path);
    await dest.openFolder(this.path, true);
    try {
      const listing = await dest.listMessages(signal);
      if (listing.failures.length > 0) {
        throw new MigrateError(ERROR_CODES.QUARANTINE_FAILED, `${listing.failures.length} message(s) in the quarantine folder "${this.name}" cannot be read, so it cannot be told what it holds.`, { scope: 'mailbox' });
      }
      const known = new Map<string, number>();
      for (const m of listing.messages) known.set(`${m.key}|${m.size}`, (known.get(`${m.key}|${m.size}`) ?? 0) + 1);
      this.known = known;
    } finally {
      if (dest.isUsable()) await dest.closeFolder();
    }
  }
}

/** A local directory where withheld messages are saved as .eml files (policy 'skip'). */
export class QuarantineDir {
  /** Checks (and creates) the directory now, so that a bad path stops the run before any copy. */
  constructor(readonly dir: string) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      accessSync(dir, fsConstants.W_OK);
    } catch (err) {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The quarantine directory "${dir}" cannot be created or written: ${(err as Error).message}`, { scope: 'config', cause: err });
    }
  }

  /**
   * Saves a message; resolves with the file's path. The name is the folder, the UID and the
   * content hash, so a rerun finds the same file instead of writing another.
   */
  async save(folder: string, uid: number, sha256: string, body: Buffer): Promise<string> {
    const file = path.join(this.dir, emlFileName(folder, uid, sha256));
    try {
      // 0600: the file holds what a scanner flagged, and someone's mail.
      await writeFile(file, body, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new MigrateError(ERROR_CODES.QUARANTINE_FAILED, `A withheld message (UID ${uid}) could not be saved to "${file}": ${(err as Error).message}. The copy stopped.`, { scope: 'mailbox', cause: err });
      }
    }
    return file;
  }
}

/** Code points of the folder name kept in a file name (at most 4 UTF-8 bytes each). */
const FOLDER_CHARS = 40;

/**
 * The file name of a withheld message: `<folder>.<folder hash>.<uid>.<content hash>.eml`.
 *
 * The folder name comes from the source server and may be anything ("..", "a/b", control
 * characters, a megabyte of text). Only letters, digits, "_" and "-" of it are kept (everything else
 * becomes "_", so no path separator, no control character and no leading dot can reach the file
 * system: a folder ".." never becomes a hidden file), cut to 40 code points so the whole name stays
 * far below the 255-byte limit of file systems. The first 8 hex digits of the SHA-256 of the real
 * folder name keep two folders apart whose names clean up alike ("a/b" and "a_b").
 */
export function emlFileName(folder: string, uid: number, sha256: string): string {
  const cleaned = Array.from(folder.slice(0, FOLDER_CHARS * 2).replace(/[^\p{L}\p{N}_-]+/gu, '_'))
    .slice(0, FOLDER_CHARS)
    .join('');
  const folderHash = createHash('sha256').update(folder, 'utf8').digest('hex').slice(0, 8);
  const hash = sha256.replace(/[^0-9a-f]/gi, '').slice(0, 16);
  return `${cleaned || 'folder'}.${folderHash}.${Math.trunc(uid)}.${hash}.eml`;
}
