/**
 * Whether a process of this machine still runs (signal 0: nothing is sent). A process we may not
 * signal (EPERM) runs; only "no such process" is gone. A pid can be reused: callers that must
 * tell the same process from a later one compare its start time too (see state/mailbox-lock.ts).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
