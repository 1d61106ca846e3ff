/**
 * The machine-wide mailbox lock: one lock file per mailbox identity (see mailbox-key.ts) in
 * $XDG_STATE_HOME/mailmover/locks/, whatever --state file a run uses.
 *
 * The lock in the ledger's mailbox row only sees runs that use the same ledger and spell the
 * mailbox the same way; two state files (or a default one and --state) would let two runs copy one
 * mailbox at once, duplicating every message. A lock file that does not depend on the ledger
 * closes that. It lives in the user's state directory (not $XDG_RUNTIME_DIR, which is often unset
 * for services and cron jobs, nor /tmp, where another user could block or fake it), so every run
 * of one user on one machine sees it; runs of other users or on other machines need a shared
 * PostgreSQL ledger, whose advisory locks are keyed the same way.
 *
 * A lock file is created whole (written under a private name, then hard-linked into place, which
 * fails when the name exists) and names its holder: pid, host, boot id and the process's start
 * time. A holder that is gone (no such pid, another boot, or a pid reused by a younger process)
 * leaves a stale file, which is taken over by renaming it aside first, so that two runs taking
 * over the same stale file cannot both win.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { stateHome } from './paths.js';
import { processAlive } from '../core/process-alive.js';

/** Who holds a lock file. */
interface Holder {
  pid: number;
  host: string;
  boot?: string;
  start?: string;
  at: string;
  mailbox: string;
}

/** Lock files this process holds (a second lock of the same mailbox in one process is refused too). */
const held = new Set<string>();

/** What this process created, removed when it exits without releasing (one listener for all locks). */
const onExit = new Set<() => void>();
let exitHook = false;

/** The directory of the lock files. */
export function lockDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateHome(env), 'locks');
}

/** Held lock files; give them back with release(). */
export interface MailboxLock {
  readonly files: readonly string[];
  release(): void;
}

/**
 * Takes the lock files of `identities` (all or none). Refused with MM-STATE-LOCKED while a live
 * process holds one of them; `mailbox` names the mailbox in messages. `bestEffort`: when the lock
 * directory cannot be created, no files are taken (and none refused).
 */
export function lockMailboxFiles(identities: readonly string[], mailbox: string, env: NodeJS.ProcessEnv = process.env, opts: { bestEffort?: boolean } = {}): MailboxLock {
  const dir = lockDirectory(env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    // A PostgreSQL ledger's own locks cover its runs on every machine; the files only add runs
    // with other ledgers on this one, so a worker without a writable home goes on without them.
    if (opts.bestEffort) return { files: [], release: () => undefined };
    throw new MigrateError(ERROR_CODES.STATE_OPEN, `The mailbox lock directory "${dir}" cannot be created: ${(err as Error).message}. Set XDG_STATE_HOME to a writable directory.`, { scope: 'config', cause: err });
  }
  const files = [...new Set(identities.map((i) => path.join(dir, `${createHash('sha256').update(i).digest('hex').slice(0, 40)}.lock`)))].sort();
  const me: Holder = { pid: process.pid, host: hostname(), boot: bootId(), start: startTime(process.pid), at: new Date().toISOString(), mailbox };
  const taken: string[] = [];
  const release = () => {
    for (const f of taken.splice(0)) {
      held.delete(f);
      try {
        const h = JSON.parse(readFileSync(f, 'utf8')) as Holder;
        if (h.pid === me.pid && h.host === me.host) unlinkSync(f);
      } catch {
        // Already gone (or replaced by a run that found us dead): nothing of ours to remove.
      }
    }
    onExit.delete(release);
  };
  onExit.add(release);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => [...onExit].forEach((r) => r()));
  }
  try {
    for (const f of files) {
      const other = take(f, me);
      if (other) {
        throw new MigrateError(
          ERROR_CODES.STATE_LOCKED,
          `Another mailmover run (pid ${other.pid} on ${other.host}, since ${other.at}, on ${other.mailbox}) is working on this mailbox (${mailbox}): ` +
            `runs are told apart by server address, port and user, however they are spelled, and whichever state file they use. ` +
            `Wait for it to finish, or stop it. (Lock file ${f}: remove it only if that process is not running.)`,
          { scope: 'config' },
        );
      }
      taken.push(f);
      held.add(f);
    }
  } catch (err) {
    release();
    if (err instanceof MigrateError) throw err;
    throw new MigrateError(ERROR_CODES.STATE_OPEN, `The mailbox lock in "${dir}" cannot be taken: ${(err as Error).message}`, { scope: 'config', cause: err });
  }
  return { files, release };
}

/** Creates `file` for `me`; answers the live holder when another process has it. */
function take(file: string, me: Holder): Holder | undefined {
  for (let attempt = 0; attempt < 5; attempt++) {
    if (held.has(file)) return readHolder(file) ?? me;
    const mine = `${file}.${me.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(mine, JSON.stringify(me) + '\n', { mode: 0o600 });
    try {
      linkSync(mine, file);
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(mine);
    }
    const holder = readHolder(file);
    if (holder === null) continue; // gone in between: try again
    if (holder && alive(holder, me)) return holder;
    // Stale: move it aside, then check that what was moved is the stale file and not a lock
    // another run has just created in its place (which is put back).
    const aside = `${file}.stale.${me.pid}.${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readHolder(aside);
    if (moved && JSON.stringify(moved) !== JSON.stringify(holder) && alive(moved, me)) {
      try {
        linkSync(aside, file);
      } catch {
        // Someone else holds the name now; either way a live run has the mailbox.
      }
      unlinkSync(aside);
      return moved;
    }
    unlinkSync(aside);
  }
  throw new Error(`the lock file ${file} keeps changing`);
}

/** The holder named in a lock file; undefined when unreadable (stale), null when the file is gone. */
function readHolder(file: string): Holder | undefined | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const h = JSON.parse(text) as Holder;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a holder still runs. On another host we cannot tell, so it counts as running. */
function alive(h: Holder, me: Holder): boolean {
  if (h.host !== me.host) return true;
  if (h.boot && me.boot && h.boot !== me.boot) return false;
  if (h.pid === me.pid) return true;
  if (!processAlive(h.pid)) return false;
  // The pid runs, but it may have been reused by another process since.
  const start = startTime(h.pid);
  return !(h.start && start && start !== h.start);
}

/** The kernel's boot id (Linux), to tell a lock from before a reboot. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A process's start time in clock ticks since boot (Linux /proc), to tell a reused pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces, so count from its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
