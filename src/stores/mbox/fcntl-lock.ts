/**
 * The fcntl (POSIX record) lock on an mbox file, which Dovecot takes with its dotlock
 * (`mbox_write_locks = dotlock fcntl`, `mbox_read_locks = fcntl`): while mailmover writes a file,
 * a Dovecot that reads or writes it waits.
 *
 * Node has no fcntl binding. The npm packages that offer one are native add-ons built by node-gyp
 * at install time (`fs-ext`: only flock(2), which on Linux does not conflict with fcntl locks, so
 * Dovecot would not see it; `os-lock`: lockf through a C add-on): CI would need a compiler and
 * headers for them, and a prebuilt binary cannot be fetched. So the lock is held by a child
 * process, `python3` (on every Debian system), with `fcntl.lockf` on the same file. The child
 * holds it until its standard input closes: when mailmover releases it, and when mailmover dies
 * (even by SIGKILL, the kernel closes the pipe), so a killed run never leaves the lock behind.
 */
import { spawn } from 'node:child_process';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';

/** How long to wait for another program's lock before giving up (as for the dotlock). */
const WAIT_S = 30;

const HOLDER = String.raw`
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.stdout.write('busy\n')
            sys.exit(3)
        time.sleep(0.05)
sys.stdout.write('locked\n')
sys.stdout.flush()
sys.stdin.read()
`;

/** Runs `fn` holding an exclusive fcntl lock on the whole of `file` (which must exist). */
export async function withFcntlLock<T>(file: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted();
  const child = spawn('python3', ['-c', HOLDER, file, String(WAIT_S)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const answer = await new Promise<string>((resolve) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e) => resolve(`error: ${e.message}`));
    child.once('close', () => resolve(out.trim() || `error: ${err.trim().split('\n').pop() ?? 'python3 exited'}`));
  });
  if (answer !== 'locked') {
    child.stdin.end();
    child.kill();
    await exited;
    if (answer === 'busy') throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The mbox file ${file} stays locked by another program (an fcntl lock held for more than ${WAIT_S} s).`, { scope: 'folder' });
    throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The fcntl lock on ${file} could not be taken (${answer}); mailmover takes it through python3, which must be installed.`, { scope: 'folder' });
  }
  try {
    return await fn();
  } finally {
    child.stdin.end();
    await exited;
  }
}
