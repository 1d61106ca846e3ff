/**
 * Daily budgets per account (README "Daily budgets"): the rolling-window arithmetic, pure, used by
 * both ledgers (ledger.ts in SQLite, pg-ledger.ts in PostgreSQL; the SQL is in budget-ledger.ts).
 *
 * What an account spent is kept as rows (when, bytes, messages), one per batch of messages let
 * through. The budget in force at time `now` counts the rows of the last `windowMs` (24 h by
 * default): a row stops counting `windowMs` after it was written, so a budget frees up bit by bit
 * as its oldest rows roll off. A batch is let through message by message, in order, as long as
 * each fits; the first that does not fit is refused, and {@link whenFits} says when it would.
 * A message larger than the whole byte budget goes alone, when nothing else is counted (it could
 * never fit otherwise); it then fills the window.
 */

/** Which transfer of an account a budget counts: bodies downloaded from it (a source), or uploaded to it (a destination). */
export type BudgetDirection = 'down' | 'up';

/** One account's limits over the window (either may be absent: not counted). */
export interface BudgetLimit {
  maxBytes?: number | undefined;
  maxMessages?: number | undefined;
}

/** What was spent, and when (ms since the epoch). */
export interface SpendRow {
  at: number;
  bytes: number;
  messages: number;
}

/** One account's part of a request. */
export interface BudgetAccount {
  /** The account, as the ledger names mailboxes (`imap://user@host:port`, no password). */
  account: string;
  direction: BudgetDirection;
  limit: BudgetLimit;
}

/** A request to spend: `sizes` of the messages about to be transferred, in order. */
export interface BudgetRequest {
  accounts: readonly BudgetAccount[];
  sizes: readonly number[];
  windowMs: number;
  /** The time to count from (tests); default: the ledger's clock (the database's, for PostgreSQL). */
  now?: number;
}

/** The answer: how many of the sizes (a prefix) were recorded as spent; when the next one fits, if some were refused. */
export interface BudgetAnswer {
  admitted: number;
  /** ms since the epoch; only when admitted < sizes.length. */
  resumeAt?: number;
}

/** The default window: a day. */
export const DAY_MS = 24 * 3600_000;

/** Rows older than this (or than the window, when longer) are deleted when a budget is spent. */
export const KEEP_MS = 2 * DAY_MS;

const over = (used: number, add: number, max: number | undefined) => max !== undefined && used + add > max;

/** The rows still counted at `now`. */
export function live(rows: readonly SpendRow[], now: number, windowMs: number): SpendRow[] {
  return rows.filter((r) => r.at > now - windowMs).sort((a, b) => a.at - b.at);
}

/** How many of `sizes` (in order) fit the limit on top of `rows` (the rows counted now). */
export function admit(rows: readonly SpendRow[], limit: BudgetLimit, sizes: readonly number[]): number {
  let bytes = rows.reduce((n, r) => n + r.bytes, 0);
  let messages = rows.reduce((n, r) => n + r.messages, 0);
  let n = 0;
  for (const size of sizes) {
    const empty = bytes <= 0 && messages <= 0;
    if (over(messages, 1, limit.maxMessages)) break;
    if (over(bytes, size, limit.maxBytes) && !empty) break;
    bytes += size;
    messages++;
    n++;
    // Larger than the whole budget: it went alone, and nothing follows it in this window.
    if (over(0, size, limit.maxBytes)) break;
  }
  return n;
}

/**
 * When a message of `size` bytes fits the limit, given `rows` (counted now) and `spentNow`
 * (bytes and messages let through at `now`, not in `rows`): `now` when it fits already, else
 * the moment enough of the oldest rows rolled off the window.
 */
export function whenFits(rows: readonly SpendRow[], limit: BudgetLimit, size: number, spentNow: { bytes: number; messages: number }, now: number, windowMs: number): number {
  const all = [...live(rows, now, windowMs), ...(spentNow.messages > 0 || spentNow.bytes > 0 ? [{ at: now, ...spentNow }] : [])];
  let bytes = all.reduce((n, r) => n + r.bytes, 0);
  let messages = all.reduce((n, r) => n + r.messages, 0);
  const fits = () => !over(messages, 1, limit.maxMessages) && (!over(bytes, size, limit.maxBytes) || (bytes <= 0 && messages <= 0));
  if (fits()) return now;
  for (const r of all) {
    bytes -= r.bytes;
    messages -= r.messages;
    if (fits()) return r.at + windowMs;
  }
  // Only when a limit is 0: nothing ever fits. A day from now, so that a rerun says so again.
  return now + windowMs;
}

/**
 * Spends against every account of a request at once (both sides of a transfer): the prefix of
 * `sizes` every account admits. `rowsOf` gives each account's rows (live or not). Returns the
 * answer and the row to write to each account (none when nothing was admitted).
 */
export function decide(req: BudgetRequest, rowsOf: (a: BudgetAccount) => readonly SpendRow[], now: number): BudgetAnswer & { row?: SpendRow } {
  const rows = req.accounts.map((a) => live(rowsOf(a), now, req.windowMs));
  const admitted = Math.min(req.sizes.length, ...req.accounts.map((a, i) => admit(rows[i]!, a.limit, req.sizes)));
  const bytes = req.sizes.slice(0, admitted).reduce((n, s) => n + s, 0);
  const row = admitted > 0 ? { at: now, bytes, messages: admitted } : undefined;
  if (admitted >= req.sizes.length) return { admitted, ...(row ? { row } : {}) };
  const next = req.sizes[admitted]!;
  const resumeAt = Math.max(now, ...req.accounts.map((a, i) => whenFits(rows[i]!, a.limit, next, { bytes, messages: admitted }, now, req.windowMs)));
  return { admitted, resumeAt: Math.max(resumeAt, now + 1), ...(row ? { row } : {}) };
}
