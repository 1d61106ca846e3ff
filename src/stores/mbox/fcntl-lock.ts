/**
 * The fcntl (POSIX record) lock on an mbox file, which Dovecot takes with its dotlock
 * (`mbox_write_locks = dotlock fcntl`, `mbox_read_locks = fcntl`): while mailmover writes a file,
 * a Dovecot that reads or writes it waits.
 *
 * Node has no fcntl binding. The npm packages that offer one are native add-ons built by node-gyp
 * at install time (`fs-ext`: only flock(2), which on Linux does not conflict with fcntl locks, so
 * Dovecot would not see it; `os-lock`: lockf through a C add-on): CI would need a compiler and
 * headers for them, and a prebuilt binary cannot be fetched. So the locks are held by one helper
 * process, `python3` (on every Debian system) with `fcntl.lockf`, started at the first lock and
 * kept for the life of mailmover: it reads `lock PATH` / `unlock PATH` lines on its standard
 * input and answers each. When mailmover ends, even by SIGKILL, the kernel closes that pipe, the
 * helper ends and its locks go with it: a killed run never leaves an fcntl lock behind.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';

/** How long to wait for another program's lock before giving up (as for the dotlock). */
const WAIT_MS = 30_000;
const POLL_MS = 50;

const HELPER = String.raw`
import errno, fcntl, os, sys
fds = {}
for line in sys.stdin:
    op, _, arg = line.strip().partition(' ')
    path = bytes.fromhex(arg)
    try:
        if op == 'lock':
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    print('busy', flush=True)
                    continue
                raise
            fds[path] = fd
            print('locked', flush=True)
        elif op == 'unlock':
            fd = fds.pop(path, None)
            if fd is not None:
                os.close(fd)
            print('unlocked', flush=True)
        else:
            print('error unknown request', flush=True)
    except OSError as e:
        print('error ' + (e.strerror or str(e)), flush=True)
`;

/** The helper process, and the answers its requests wait for (one request at a time). */
class LockHelper {
  private child: ChildProcessWithoutNullStreams | undefined;
  private pending: ((answer: string) => void) | undefined;
  private buffered = '';
  private queue: Promise<unknown> = Promise.resolve();

  request(op: 'lock' | 'unlock', file: string): Promise<string> {
    const run = this.queue.then(() => this.send(`${op} ${Buffer.from(file).toString('hex')}\n`));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private send(line: string): Promise<string> {
    const child = this.child ?? this.start();
    // While an answer is awaited, the helper's output keeps mailmover running.
    const out = child.stdout as unknown as { ref?: () => void; unref?: () => void };
    return new Promise<string>((resolve) => {
      this.pending = resolve;
      out.ref?.();
      child.stdin.write(line);
    }).finally(() => out.unref?.());
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('python3', ['-I', '-S', '-c', HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const answer = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.answer(answer);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      this.answer(`error ${why}`);
    };
    child.once('error', (e) => gone(e.message));
    child.once('close', () => gone(err.trim().split('\n').pop() || 'python3 ended'));
    // The pipes must not keep mailmover running once it is done (see send for the requests).
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    child.unref();
    this.child = child;
    return child;
  }

  private answer(text: string): void {
    const p = this.pending;
    this.pending = undefined;
    p?.(text);
  }
}

const helper = new LockHelper();

/** Runs `fn` holding an exclusive fcntl lock on the whole of `file` (which must exist). */
export async function withFcntlLock<T>(file: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const started = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    const answer = await helper.request('lock', file);
    if (answer === 'locked') break;
    if (answer !== 'busy') throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The fcntl lock on ${file} could not be taken (${answer.replace(/^error /, '')}); mailmover takes it through python3, which must be installed.`, { scope: 'folder' });
    if (Date.now() - started > WAIT_MS) throw new MigrateError(ERROR_CODES.ARCHIVE_LOCKED, `The mbox file ${file} stays locked by another program (an fcntl lock held for more than ${WAIT_MS / 1000} s).`, { scope: 'folder' });
    await sleep(POLL_MS, undefined, { signal });
  }
  try {
    return await fn();
  } finally {
    await helper.request('unlock', file);
  }
}
