/**
 * The set-up of the daily-budget batch tests: a source and a destination Dovecot, each user seeded
 * at the source (same password at both sides), and a work folder with `servers.yaml` (master
 * logins from env:MM_MASTER, the budget lines given) and `users.csv`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from './dovecot.js';
import { seedMailbox, type FixtureFolder } from './fixture.js';

export interface BudgetBatch {
  source: PlainDovecotServer;
  dest: PlainDovecotServer;
  dir: string;
  stop(): Promise<void>;
}

export interface BudgetBatchOptions {
  prefix: string;
  users: readonly string[];
  mailbox: (user: string) => FixtureFolder[];
  /** Lines under `source:` and `destination:` after url and master (e.g. `maxMessagesPerDay: 3`). */
  sourceLines: readonly string[];
  destinationLines: readonly string[];
  /** The `defaults:` mapping, e.g. `{ connections: 1, budgetWindow: 2m }`. */
  defaults: string;
}

export async function startBudgetBatch(o: BudgetBatchOptions): Promise<BudgetBatch> {
  const [source, dest] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
  const dir = await mkdtemp(path.join(os.tmpdir(), o.prefix));
  for (const u of o.users) {
    await source.addUser(u, `pw-${u}`);
    await dest.addUser(u, `pw-${u}`);
    await seedMailbox(source, u, `pw-${u}`, o.mailbox(u));
  }
  const side = (name: string, port: number, lines: readonly string[]) => [`${name}:`, `  url: imap://127.0.0.1:${port}`, '  master: { user: admin, password: env:MM_MASTER }', ...lines.map((l) => `  ${l}`)];
  await writeFile(path.join(dir, 'servers.yaml'), [...side('source', source.port, o.sourceLines), ...side('destination', dest.port, o.destinationLines), `defaults: ${o.defaults}`, ''].join('\n'));
  await writeFile(path.join(dir, 'users.csv'), ['source_user,destination_user', ...o.users.map((u) => `${u},${u}`)].join('\n') + '\n');
  return {
    source,
    dest,
    dir,
    stop: async () => {
      await Promise.all([source.stop(), dest.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
