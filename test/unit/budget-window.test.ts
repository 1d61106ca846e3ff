/**
 * The daily budgets' rolling window (src/state/budget-window.ts): how much is let through, and when
 * a refused message fits, in both ledgers (a SQLite file, and a real PostgreSQL server) with the
 * same scenario, at given times so that the answers are exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ledger } from '../../src/state/ledger.js';
import { PgLedger } from '../../src/state/pg-ledger.js';
import type { StateStore } from '../../src/state/types.js';
import type { BudgetAccount } from '../../src/state/budget-window.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const W = 1000;
const A: BudgetAccount = { account: 'imap://ann@mail.example:143', direction: 'down', limit: { maxBytes: 100, maxMessages: 3 } };

async function scenario(store: StateStore): Promise<void> {
  const spend = (sizes: number[], now: number, accounts: BudgetAccount[] = [A]) => Promise.resolve(store.spendBudget({ accounts, sizes, windowMs: W, now }));
  // 80 of 100 bytes let through; the third 40 would overspend: it fits once the first row rolls off.
  assert.deepEqual(await spend([40, 40, 40], 0), { admitted: 2, resumeAt: 1000 });
  assert.deepEqual(await spend([10], 500), { admitted: 1 });
  // Three messages in the window: the message budget refuses a fourth, however small.
  assert.deepEqual(await spend([5], 600), { admitted: 0, resumeAt: 1000 });
  assert.deepEqual(await spend([5], 999), { admitted: 0, resumeAt: 1000 });
  assert.deepEqual(await Promise.resolve(store.budgetUsage(A.account, 'down', W, 999)), { bytes: 90, messages: 3 });
  // At 1000 the first row (at 0) no longer counts: 10 bytes and 1 message are.
  assert.deepEqual(await Promise.resolve(store.budgetUsage(A.account, 'down', W, 1000)), { bytes: 10, messages: 1 });
  assert.deepEqual(await spend([50, 50], 1000), { admitted: 1, resumeAt: 1500 });
  assert.deepEqual(await spend([50], 1500), { admitted: 1 });
  // The other direction of the same account is another budget.
  assert.deepEqual(await spend([90], 1500, [{ ...A, direction: 'up' }]), { admitted: 1 });
  // Larger than the whole budget: it goes alone when nothing is counted, then fills the window.
  const big: BudgetAccount = { account: 'imap://bob@mail.example:143', direction: 'down', limit: { maxBytes: 100 } };
  assert.deepEqual(await spend([150, 10], 0, [big]), { admitted: 1, resumeAt: 1000 });
  assert.deepEqual(await spend([150], 500, [big]), { admitted: 0, resumeAt: 1000 });
  // Both sides at once: the prefix every account admits, recorded in each.
  const down: BudgetAccount = { account: 'imap://cid@old.example:143', direction: 'down', limit: { maxMessages: 5 } };
  const up: BudgetAccount = { account: 'imap://cid@new.example:143', direction: 'up', limit: { maxBytes: 30 } };
  assert.deepEqual(await spend([10, 10, 10, 10], 2000, [down, up]), { admitted: 3, resumeAt: 3000 });
  assert.deepEqual(await Promise.resolve(store.budgetUsage(down.account, 'down', W, 2000)), { bytes: 30, messages: 3 });
  assert.deepEqual(await Promise.resolve(store.budgetUsage(up.account, 'up', W, 2000)), { bytes: 30, messages: 3 });
  // Nothing admitted is nothing recorded.
  assert.deepEqual(await spend([10], 2500, [down, up]), { admitted: 0, resumeAt: 3000 });
  assert.deepEqual(await Promise.resolve(store.budgetUsage(down.account, 'down', W, 2500)), { bytes: 30, messages: 3 });
}

describe('daily budget window', () => {
  let dir: string;
  let pgServer: PostgresServer | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-budget-unit-'));
  });
  after(async () => {
    await pgServer?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('SQLite ledger', () => {
    const ledger = Ledger.open(path.join(dir, 'state.db'));
    return scenario(ledger).finally(() => ledger.close());
  });

  test('PostgreSQL ledger', { timeout: 60_000 }, async () => {
    pgServer = await startPostgres();
    const ledger = await PgLedger.open(await pgServer.createDatabase('budgets'));
    try {
      await scenario(ledger);
    } finally {
      await ledger.close();
    }
  });
});

describe('budget settings', () => {
  test('durations, and a batch configuration with budgets (a preset gives its side\'s published limit)', async () => {
    const { parseDuration } = await import('../../src/cli/option-parsers.js');
    const { loadBatchConfig } = await import('../../src/batch/config.js');
    const { budgetsOf } = await import('../../src/batch/run-batch.js');
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration(90), 90_000);
    for (const bad of ['0s', '31d', 'soon', '-1m']) assert.equal(parseDuration(bad), undefined, bad);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-budget-config-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      const file = path.join(dir, 'c.yaml');
      await writeFile(file, 'source: { preset: gmail }\ndestination: { url: imap://127.0.0.1:1, maxBytesPerDay: 1M, maxMessagesPerDay: 50 }\ndefaults: { budgetWindow: 2m, providerLimitPark: 6h }\n');
      const b = budgetsOf(loadBatchConfig(file, () => undefined));
      assert.deepEqual(b, { budgets: { source: { maxBytes: 2500 * 1000 * 1000, maxMessages: undefined }, destination: { maxBytes: 1024 * 1024, maxMessages: 50 }, windowMs: 120_000 }, providerLimitParkMs: 6 * 3600_000 });
      await writeFile(file, 'source: { url: imap://127.0.0.1:1 }\ndestination: { url: imap://127.0.0.1:2 }\ndefaults: { budgetWindow: soon }\n');
      assert.throws(() => loadBatchConfig(file, () => undefined), /MM-BATCH-CONFIG|defaults\.budgetWindow must be a duration/);
      await writeFile(file, 'source: { url: imap://127.0.0.1:1, maxBytesPerDay: lots }\ndestination: { url: imap://127.0.0.1:2 }\n');
      assert.throws(() => loadBatchConfig(file, () => undefined), /source\.maxBytesPerDay must be a positive whole number/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
