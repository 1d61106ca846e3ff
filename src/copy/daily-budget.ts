/**
 * Daily budgets in the copy (README "Daily budgets"): before a batch's bodies are fetched
 * (budgetedFetch in fetch-stage.ts), its
 * messages are spent, in order, against the source account's download budget and the destination
 * account's upload budget in the ledger (state/budget-window.ts). What fits is fetched and appended
 * as usual; at the first message that does not fit, the mailbox stops cleanly after that batch (its
 * intents settled, nothing half done) with MM-BUDGET-SPENT and the time the budget frees up: the
 * mailbox is parked (`waiting`), and a later run goes on from the ledger (nothing copied twice).
 *
 * Bytes count when they are let through, before the transfer: a message that then fails still
 * counts (a provider counts what was sent, too), which errs on the safe side.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import type { BudgetAccount, BudgetAnswer, BudgetLimit } from '../state/budget-window.js';
import { DAY_MS } from '../state/budget-window.js';
import type { StateStore } from '../state/types.js';

/** Daily budgets of a migration: per side, over a rolling window. */
export interface DailyBudgets {
  /** Bytes and messages a day downloaded from the source account (body FETCHes). */
  source?: BudgetLimit;
  /** Bytes and messages a day uploaded to the destination account (APPENDs). */
  destination?: BudgetLimit;
  /** The window's length in ms (default 24 h). */
  windowMs?: number;
}

/** Lets messages through the budgets of one mailbox. */
export interface DailyGate {
  admit(sizes: readonly number[]): Promise<BudgetAnswer>;
  /** Names the budgets, for the message of a parked mailbox. */
  readonly what: string;
}

const limited = (l: BudgetLimit | undefined): l is BudgetLimit => !!l && (l.maxBytes !== undefined || l.maxMessages !== undefined);

/** The gate of a mailbox (`source` and `destination` as the ledger names them), or undefined when no budget is set. */
export function dailyGate(ledger: Pick<StateStore, 'spendBudget'>, budgets: DailyBudgets | undefined, source: string, destination: string): DailyGate | undefined {
  const accounts: BudgetAccount[] = [];
  const down = budgets?.source;
  const up = budgets?.destination;
  if (limited(down)) accounts.push({ account: source, direction: 'down', limit: down });
  if (limited(up)) accounts.push({ account: destination, direction: 'up', limit: up });
  if (accounts.length === 0) return undefined;
  const windowMs = budgets?.windowMs ?? DAY_MS;
  const what = accounts.map((a) => `${a.direction === 'down' ? 'download from' : 'upload to'} ${a.account}: ${describeLimit(a.limit)} per ${describeWindow(windowMs)}`).join('; ');
  return {
    what,
    admit: async (sizes) => await ledger.spendBudget({ accounts, sizes, windowMs }),
  };
}

export function describeLimit(l: BudgetLimit): string {
  return [l.maxBytes !== undefined ? `${l.maxBytes} bytes` : '', l.maxMessages !== undefined ? `${l.maxMessages} messages` : ''].filter(Boolean).join(' and ');
}

export function describeWindow(ms: number): string {
  if (ms % 3600_000 === 0) return ms === DAY_MS ? 'day' : `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

/** The error that parks a mailbox whose budget is spent. */
export function budgetSpent(resumeAt: number, what: string): MigrateError {
  return new MigrateError(ERROR_CODES.BUDGET_SPENT, `The daily budget is spent (${what}); the mailbox is parked until ${new Date(resumeAt).toISOString()}, when enough of the window has rolled off.`, {
    scope: 'mailbox',
    retry: 'later',
    resumeAt,
  });
}
