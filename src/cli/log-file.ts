/**
 * The --log FILE destination: JSON lines appended to a file readable by its owner only.
 *
 * A log that cannot be opened or written is found before anything is done (MM-LOG-OPEN: the file
 * is opened and a first line written at once). A write that fails later (a full disk) must not
 * stop a migration half-way nor lose mail: the line is dropped, and stderr says so once.
 *
 * `batch run` and `worker` log by default (unless --no-log) to a file of their own under
 * $XDG_STATE_HOME/mailmover/logs, rotated: the newest 20 of each kind are kept.
 */
import { closeSync, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** A pino destination that never throws. */
export interface LogFile {
  write(line: string): void;
  /** Lines that could not be written. */
  readonly dropped: number;
}

/** Opens (creating, mode 0600) the log at `file` and writes `first` to it; MM-LOG-OPEN when it cannot. */
export function openLogFile(file: string, first: string, stderr: { write(s: string): unknown } = process.stderr): LogFile {
  let fd: number;
  const refuse = (what: string, err: unknown): never => {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EISDIR' ? 'it is a directory; pass a file path, e.g. --log ' + path.join(file, 'mailmover.log') : code === 'ENOSPC' ? 'no space left on the device' : (err as Error).message;
    throw new MigrateError(ERROR_CODES.LOG_OPEN, `The log file "${file}" cannot be ${what}: ${reason}. Nothing was done.`, { scope: 'config', cause: err });
  };
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    let created = true;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      created = false;
      fd = openSync(file, 'a');
    }
    if (fstatSync(fd).isDirectory()) {
      closeSync(fd);
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    }
    // Whatever the umask: the log names servers, users and folders.
    if (created) fchmodSync(fd, 0o600);
  } catch (err) {
    return refuse('opened', err);
  }
  try {
    writeSync(fd, first);
  } catch (err) {
    closeSync(fd);
    return refuse('written', err);
  }
  let dropped = 0;
  return {
    write(line: string) {
      try {
        writeSync(fd, line);
      } catch (err) {
        if (dropped++ === 0) stderr.write(`mailmover: warning: the log file "${file}" cannot be written (${(err as Error).message}); the run goes on without it.\n`);
      }
    },
    get dropped() {
      return dropped;
    },
  };
}

/** How many default log files of one kind are kept (see {@link rotateLogs}). */
export const LOGS_KEPT = 20;

/** A time as it appears in a default log file's name: 20240102T030405123Z (UTC, to the millisecond). */
function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

/** A name as it may appear in a file name: letters, digits, '.', '_', '@' and '-', at most 60. */
function fileSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._@-]+/g, '_').slice(0, 60) || '_';
}

/**
 * The default log of a batch run (`batch-NAME-TIME.log`) or of a worker
 * (`worker-HOST-PID-TIME.log`) in `dir` ($XDG_STATE_HOME/mailmover/logs), and the pattern of
 * its kind: the logs of the same batch name, or every worker's log.
 */
export function defaultLog(dir: string, kind: { batch: string } | { worker: { host: string; pid: number } }, now = new Date()): { file: string; kind: RegExp } {
  const time = stamp(now);
  if ('batch' in kind) {
    const name = fileSafe(kind.batch);
    return { file: path.join(dir, `batch-${name}-${time}.log`), kind: new RegExp(`^batch-${name.replace(/[.]/g, '\\.')}-\\d{8}T\\d{9}Z\\.log$`) };
  }
  return { file: path.join(dir, `worker-${fileSafe(kind.worker.host)}-${kind.worker.pid}-${time}.log`), kind: /^worker-.+-\d+-\d{8}T\d{9}Z\.log$/ };
}

/**
 * Keeps the newest `keep` files of `dir` whose names match `kind` (by modification time) and
 * deletes the older ones. Only default log files are ever deleted, never a file given with
 * --log; a file that cannot be looked at or deleted is left alone.
 */
export function rotateLogs(dir: string, kind: RegExp, keep = LOGS_KEPT): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => kind.test(n));
  } catch {
    return;
  }
  const files = names.flatMap((n) => {
    try {
      const st = lstatSync(path.join(dir, n));
      return st.isFile() ? [{ n, t: st.mtimeMs }] : [];
    } catch {
      return [];
    }
  });
  files.sort((a, b) => b.t - a.t || (a.n < b.n ? 1 : -1));
  for (const f of files.slice(keep)) {
    try {
      unlinkSync(path.join(dir, f.n));
    } catch {
      // Left for the next run to try again.
    }
  }
}
