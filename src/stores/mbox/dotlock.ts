/**
 * The locks every mbox writer honours, taken around each write to a file: first the dotlock
 * (`FILE.lock`, created with O_EXCL), as Dovecot, mutt and procmail do, then the fcntl lock
 * (fcntl-lock.ts), as Dovecot's default `mbox_write_locks = dotlock fcntl` does.
 *
 * A dotlock is left by a dead process when it names a process of this machine that no longer runs
 * (mailmover and Dovecot write `PID:HOST` into it), or when it is older than two minutes (Dovecot's
 * `mbox_dotlock_change_timeout`): then it is removed. One that is alive and stays for 30 s is
 * MM-ARCHIVE-LOCKED. A source file is locked only when it is rewritten (--delete-source).
 */
import { lstat, open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { processAlive } from '../../core/process-alive.js';
import { withFcntlLock } from './fcntl-lock.js';

const STALE_MS = 120_000;
const WAIT_MS = 30_000;
const POLL_MS = 100;

/** Runs `fn` holding `file`'s dotlock and then its fcntl lock (the file must exist). */
export function withWriteLocks<T>(file: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return withDotlock(file, () => withFcntlLock(file, fn, signal), signal);
}

/** Runs `fn` holding `file`'s dotlock. */
export async function withDotlock<T>(file: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const lock = `${file}.lock`;
  const started = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.writeFile(`${process.pid}:${hostname()}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await lstat(lock).catch(() => undefined);
    if (st && (Date.now() - st.mtimeMs > STALE_MS || (await ownerGone(lock)))) {
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

/** True when the lock file names a process of this machine that no longer runs. */
async function ownerGone(lock: string): Promise<boolean> {
  const text = await readFile(lock, 'latin1').catch(() => '');
  const m = /^(\d+)(?::([^\s]*))?\s*$/.exec(text);
  if (!m || (m[2] && m[2] !== hostname())) return false;
  const pid = Number(m[1]);
  return pid > 0 && pid !== process.pid && !processAlive(pid);
}
