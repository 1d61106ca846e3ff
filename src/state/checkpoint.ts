/**
 * Named checkpoints around every ledger write, shared by both backends.
 */

/**
 * A crash switch for the crash-safety tests: MAILMOVER_TEST_KILL_AT="KIND:before|after:N" makes
 * the process SIGKILL itself just before or just after the Nth ledger write of that kind
 * (intend, settle, recordPresent, markSynced, reset, skip, updateFlags, forget), or of an mbox
 * file write (mboxAppend: one message appended; mboxRename: a rewritten file put in place). It exists so
 * that the tests can stop a run around every kind of state write, not only at random moments.
 */
const killAt = /^(\w+):(before|after):(\d+)$/.exec(process.env.MAILMOVER_TEST_KILL_AT ?? '');
const writes = new Map<string, number>();
function checkpoint(kind: string, when: 'before' | 'after'): void {
  if (!killAt || killAt[1] !== kind) return;
  if (when === 'before') writes.set(kind, (writes.get(kind) ?? 0) + 1);
  if (killAt[2] === when && writes.get(kind) === Number(killAt[3])) process.kill(process.pid, 'SIGKILL');
}

/** Told how long each ledger write took (a worker's metrics); one per process. */
export const ledgerWrites: { observe?: (kind: string, seconds: number) => void } = {};

/** Runs a ledger write between its two checkpoints. */
export function write<T>(kind: string, fn: () => T): T {
  checkpoint(kind, 'before');
  const t0 = performance.now();
  const out = fn();
  ledgerWrites.observe?.(kind, (performance.now() - t0) / 1000);
  checkpoint(kind, 'after');
  return out;
}

/** {@link write} for a write that completes later (PostgreSQL). */
export async function writeAsync<T>(kind: string, fn: () => Promise<T>): Promise<T> {
  checkpoint(kind, 'before');
  const t0 = performance.now();
  const out = await fn();
  ledgerWrites.observe?.(kind, (performance.now() - t0) / 1000);
  checkpoint(kind, 'after');
  return out;
}
