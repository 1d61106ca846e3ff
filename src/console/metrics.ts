/**
 * /metrics: the ledger in Prometheus text format (prom-client), read at each scrape. Its own
 * registry, so nothing of the process (or another library's default metrics) leaks into it.
 */
import { Gauge, Registry } from 'prom-client';
import type { LedgerSource } from './live.js';

/** Builds the registry; `render()` reads the ledger and answers the scrape. */
export function consoleMetrics(source: LedgerSource): { contentType: string; render(): Promise<string> } {
  const registry = new Registry();
  const upHelp = '1 when the console can read the ledger, else 0';
  const up = new Gauge({ name: 'mailmover_ledger_up', help: upHelp, registers: [registry] });
  // What a scrape gets while the ledger cannot be read: no count at all rather than zeros.
  const down = new Registry();
  new Gauge({ name: 'mailmover_ledger_up', help: upHelp, registers: [down] }).set(0);
  const mailboxes = new Gauge({ name: 'mailmover_batch_mailboxes', help: 'Mailboxes of a batch by their recorded status', labelNames: ['batch', 'status'], registers: [registry] });
  const batchCopied = new Gauge({ name: 'mailmover_batch_messages_copied', help: 'Messages copied, as the rows of a batch record them (its latest run of each mailbox)', labelNames: ['batch'], registers: [registry] });
  const copied = new Gauge({ name: 'mailmover_ledger_messages_copied', help: 'Messages the ledger records as copied, all mailboxes', registers: [registry] });
  const bytes = new Gauge({ name: 'mailmover_ledger_bytes_copied', help: 'Bytes of the messages the ledger records as copied, all mailboxes', registers: [registry] });
  const skipped = new Gauge({ name: 'mailmover_ledger_items_skipped', help: 'Skipped items the ledger records, by error code', labelNames: ['code'], registers: [registry] });
  return {
    contentType: registry.contentType,
    async render() {
      registry.resetMetrics();
      try {
        const view = await source.get();
        const [groups, totals] = [await view.statusGroups(), await view.totals()];
        for (const g of groups) {
          mailboxes.inc({ batch: g.batch, status: g.status }, g.mailboxes);
          batchCopied.inc({ batch: g.batch }, g.copied);
        }
        copied.set(totals.messagesCopied);
        bytes.set(totals.bytesCopied);
        for (const s of totals.skippedByCode) skipped.set({ code: s.code }, s.items);
        up.set(1);
      } catch {
        // The ledger cannot be read (or does not exist yet).
        return down.metrics();
      }
      return registry.metrics();
    },
  };
}
