/**
 * The --log FILE destination: JSON lines appended to a file readable by its owner only.
 *
 * A log that cannot be opened or written is found before anything is done (MM-LOG-OPEN: the file
 * is opened and a first line written at once). A write that fails later (a full disk) must not
 * stop a migration half-way nor lose mail: the line is dropped, and stderr says so once.
 */
import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
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
