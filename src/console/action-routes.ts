/**
 * The console's actions and what it shows of them: a batch's actions (with who and when) and the
 * state they leave it in, POSTs that take an action (the access middleware has checked the
 * session's CSRF token; the page asked for a confirmation), and the workers with their
 * heartbeats. The actions run one at a time per console; each is recorded in the ledger by
 * src/batch/batch-actions.ts, which alone writes (the rest of the console only reads).
 */
import type { Context, Hono } from 'hono';
import { isMigrateError } from '../core/errors.js';
import { isPostgresUrl } from '../state/types.js';
import { ACTIONS, type BatchActionName } from '../state/schema-v5.js';
import { batchActions, batchRun, GONE_AFTER_BEATS, isQueued, stateAfter, workers } from './control-view.js';
import { LedgerMissing } from './ledger-db.js';
import { shown } from './ledger-view.js';
import type { LedgerSource, LiveFeed } from './live.js';

/** Mailbox statuses a retry runs again. */
const RETRIED = ['failed', 'partial'];

export function actionRoutes(app: Hono, source: LedgerSource, feed: LiveFeed, operator: string): void {
  let running = Promise.resolve();
  const fail = (c: Context, err: unknown) => {
    if (err instanceof LedgerMissing) return c.json({ error: { message: err.message } }, 404);
    if (isMigrateError(err)) return c.json({ error: { code: err.code, message: shown(err.message) } }, err.code === 'MM-CONSOLE-ACTION' ? 409 : 503);
    return c.json({ error: { message: shown(`The action failed: ${(err as Error)?.message ?? String(err)}`) } }, 500);
  };

  app.get('/api/batches/:name/actions', async (c) => {
    try {
      const db = (await source.get()).db;
      const name = c.req.param('name');
      const actions = await batchActions(db, name);
      const queued = await isQueued(db, name);
      const run = await batchRun(db, name);
      return c.json({ operator, mode: queued ? 'queued' : 'local', state: stateAfter(actions), actions: actions.map((a) => ({ ...a, note: shown(a.note) })), run: run ? { ...run, listFile: shown(run.listFile), configFile: shown(run.configFile) } : null });
    } catch (err) {
      return fail(c, err);
    }
  });

  app.post('/api/batches/:name/actions/:action', async (c) => {
    const action = c.req.param('action') as BatchActionName;
    if (!ACTIONS.includes(action)) return c.json({ error: { message: `The action must be one of ${ACTIONS.join(', ')}.` } }, 400);
    const name = c.req.param('name');
    const take = running.then(async () => {
      const view = await source.get();
      const queued = await isQueued(view.db, name);
      const { localRetry, queuedAction } = await import('../batch/batch-actions.js');
      if (queued) return queuedAction(source.location, name, action, operator);
      if (action !== 'retry') {
        const { ERROR_CODES, MigrateError } = await import('../core/errors.js');
        throw new MigrateError(ERROR_CODES.CONSOLE_ACTION, `The batch "${name}" was not queued (it ran on one machine): pause, resume and cancel act on a queued batch; retry gives the command to run.`, { scope: 'config' });
      }
      const page = await view.jobPage(name, { limit: 1 });
      if (page.total === 0) {
        const { ERROR_CODES, MigrateError } = await import('../core/errors.js');
        throw new MigrateError(ERROR_CODES.CONSOLE_ACTION, `There is no batch "${name}" in the ledger.`, { scope: 'config' });
      }
      const failed = (await Promise.all(RETRIED.map((status) => view.jobPage(name, { status, limit: 1 })))).reduce((n, p) => n + p.matched, 0);
      const result = await localRetry(source.location, name, failed, operator);
      // A PostgreSQL ledger's address is shown without its password: the command says where it goes.
      return isPostgresUrl(source.location) ? { ...result, command: shown(result.command), note: [result.note, 'Put the ledger\'s password back in --state.'].filter(Boolean).join(' ') } : result;
    });
    running = take.then(
      () => undefined,
      () => undefined,
    );
    try {
      const result = await take;
      void feed.poll();
      return c.json({ result });
    } catch (err) {
      return fail(c, err);
    }
  });

  app.get('/api/workers', async (c) => {
    try {
      const list = await workers((await source.get()).db);
      return c.json({ goneAfterBeats: GONE_AFTER_BEATS, workers: list.map((w) => ({ ...w, running: w.running.map((m) => ({ ...m, source: shown(m.source) })) })) });
    } catch (err) {
      return fail(c, err);
    }
  });
}
