/**
 * The console's JSON API (behind the access check of access.ts): batches, one batch's mailbox
 * table, one mailbox's detail and report downloads, the error-code explanations, and the
 * server-sent events that say when the ledger changed.
 */
import type { Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Access } from './access.js';
import { overviews, sampledThroughput, throughput, type BatchOverview } from './batch-summary.js';
import { progressSamples } from './control-view.js';
import { errorDocs } from './error-docs.js';
import { LedgerMissing } from './ledger-db.js';
import { SORT_KEYS, type LedgerView } from './ledger-view.js';
import type { LedgerSource, LiveFeed } from './live.js';
import { readReport, reportCsv, reportMarkdown } from './report-files.js';

/** A batch with what the console measured: the rate over the last minute and the ETA from it. */
type BatchInfo = BatchOverview & { rate: number | null; etaSeconds: number | null };

export function apiRoutes(app: Hono, source: LedgerSource, feed: LiveFeed, access: Access, signal: AbortSignal): void {
  const withLedger = async (c: Context, answer: (view: LedgerView) => Promise<Response>): Promise<Response> => {
    let view: LedgerView;
    try {
      view = await source.get();
      return await answer(view);
    } catch (err) {
      const ledger = source.stateOf(err);
      return c.json({ ledger, error: { code: ledger.code ?? null, message: ledger.message } }, err instanceof LedgerMissing ? 404 : 503);
    }
  };
  const info = (o: BatchOverview): BatchInfo => {
    const rate = o.finishedAt ? null : feed.rate(o.name);
    const etaSeconds = o.toCopy !== null && rate && rate > 0 && !o.finishedAt ? Math.round(Math.max(0, o.toCopy - o.copied) / rate) : null;
    return { ...o, rate, etaSeconds };
  };

  app.get('/api/session', (c) => c.json({ csrf: access.session(c)?.csrf ?? null }));

  app.get('/api/batches', async (c) => {
    try {
      const view = await source.get();
      return c.json({ ledger: { state: 'ok', location: source.shownLocation }, version: feed.version, batches: overviews(await view.statusGroups()).map(info) });
    } catch (err) {
      // No ledger yet, or one that cannot be read: the page says which, with no batch.
      return c.json({ ledger: source.stateOf(err), version: feed.version, batches: [] }, err instanceof LedgerMissing ? 200 : 503);
    }
  });

  app.get('/api/batches/:name', (c) =>
    withLedger(c, async (view) => {
      const name = c.req.param('name');
      const o = overviews((await view.statusGroups()).filter((g) => g.batch === name))[0];
      if (!o) return c.json({ error: { message: `There is no batch "${name}" in the ledger.` } }, 404);
      // Recorded progress samples when the ledger has them (schema 5); else rebuilt from the finished rows.
      return c.json({ batch: info(o), throughput: sampledThroughput(await progressSamples(view.db, name)) ?? throughput(await view.jobTimes(name)) });
    }),
  );

  app.get('/api/batches/:name/mailboxes', (c) =>
    withLedger(c, async (view) => {
      const q = c.req.query();
      const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
      if (q.sort && !SORT_KEYS.includes(q.sort)) return c.json({ error: { message: `sort must be one of ${SORT_KEYS.join(', ')}` } }, 400);
      return c.json(await view.jobPage(c.req.param('name'), { status: q.status, q: q.q, sort: q.sort, dir: q.dir === 'desc' ? 'desc' : 'asc', offset: int(q.offset), limit: int(q.limit) }));
    }),
  );

  const mailbox = async (c: Context, view: LedgerView) => {
    const line = c.req.param('line') ?? '';
    return /^\d+$/.test(line) ? view.job(c.req.param('name')!, Number(line)) : undefined;
  };

  app.get('/api/batches/:name/mailboxes/:line', (c) =>
    withLedger(c, async (view) => {
      const job = await mailbox(c, view);
      if (!job) return c.json({ error: { message: 'There is no such mailbox in this batch.' } }, 404);
      const report = await readReport(job.report);
      const named = report.ok && report.report.source?.url && report.report.destination?.url ? { source: report.report.source.url, destination: report.report.destination.url } : undefined;
      const ids = await view.mailboxIds(c.req.param('name'), job.line, named);
      const [folders, skipped] = [await view.folders(ids), await view.skipped(ids)];
      return c.json({ job, folders, skipped, report: report.ok ? { available: true } : { available: false, reason: report.reason } });
    }),
  );

  app.get('/api/batches/:name/mailboxes/:line/:file{report\\.(json|md|csv)}', (c) =>
    withLedger(c, async (view) => {
      const job = await mailbox(c, view);
      const report = await readReport(job?.report);
      if (!job || !report.ok) return c.json({ error: { message: report.ok ? 'There is no such mailbox in this batch.' : report.reason } }, 404);
      const kind = c.req.param('file')!.split('.')[1]!;
      const base = `mailbox-${job.line}-report`;
      const [body, type] = kind === 'json' ? [report.text, 'application/json'] : kind === 'md' ? [reportMarkdown(report.report), 'text/markdown; charset=utf-8'] : [reportCsv(report.report), 'text/csv; charset=utf-8'];
      return c.body(body, 200, { 'Content-Type': type, 'Content-Disposition': `attachment; filename="${base}.${kind}"` });
    }),
  );

  app.get('/api/errors', (c) => c.json({ errors: [...errorDocs().values()] }));

  app.get('/api/events', (c) =>
    streamSSE(c, async (stream) => {
      const unsubscribe = feed.subscribe((version) => void stream.writeSSE({ event: 'change', data: String(version) }).catch(() => undefined));
      try {
        await stream.writeSSE({ event: 'hello', data: String(feed.version) });
        while (!stream.aborted && !signal.aborted) {
          await stream.sleep(15_000);
          if (!stream.aborted) await stream.write(': keep-alive\n\n');
        }
      } finally {
        unsubscribe();
      }
    }),
  );
}
