/**
 * The dotlock every mbox writer honours (`FILE.lock`, created with O_EXCL), taken around each
 * write to a destination file, as Dovecot, mutt and procmail do. A lock older than two minutes is
 * taken as left by a dead process and removed (Dovecot's `mbox_dotlock_change_timeout`); one that
 * is fresh and stays for 30 s is MM-ARCHIVE-LOCKED.
 *
 * Only the dotlock is taken: no fcntl/flock lock (Node has no binding of its own, and the npm
 * ones are native add-ons). Dovecot's default `mbox_write_locks = dotlock fcntl` takes the dotlock
 * too, so the two never write at once. A source file is never locked: that would mean creating a
 * file beside it.
 */
import { lstat, open, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';

const STALE_MS = 120_000;
const WAIT_MS = 30_000;
const POLL_MS = 100;

/** Runs `fn` holding `file`'s dotlock. */
export async function withDotlock<T>(file: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const lock = `${file}.lock`;
  const started = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await lstat(lock).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_MS) {
      await unlink(lock).catch(() => undefined);
      continue;
    }
    if (Date.now() - started > WAIT_MS) {
      const age = st ? Math.round((Date.now() - st.mtimeMs) / 1000) : 0;
      throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The mbox file ${file} stays locked by another program (${lock} is ${age} s old).`, { scope: 'folder' });
    }
    await sleep(POLL_MS, undefined, { signal });
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}
