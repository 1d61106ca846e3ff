/**
 * `mailmover worker --metrics ADDR:PORT`: the worker's own counters in Prometheus text format
 * (prom-client, its own registry: nothing else of the process leaks into it), served at
 * /metrics by a plain node:http server on loopback unless `--metrics-public`. They carry no
 * secret: server labels are the servers' URLs without user or password.
 *
 * Fed by the running mailboxes' events (messages and bytes copied from the progress counters,
 * skipped items by code, scan verdicts), the finished mailboxes' statuses, each server's gate
 * (retries, throttling pauses, connection slots in use) and the ledger's write timer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import type { GateObserver } from '../copy/retry-policy.js';
import { ledgerWrites } from '../state/checkpoint.js';
import type { BatchEvent } from './run-batch.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly copied = new Counter({ name: 'mailmover_worker_messages_copied_total', help: 'Messages copied by this worker', registers: [this.registry] });
  private readonly bytes = new Counter({ name: 'mailmover_worker_bytes_copied_total', help: 'Bytes of the messages copied by this worker', registers: [this.registry] });
  private readonly skipped = new Counter({ name: 'mailmover_worker_items_skipped_total', help: 'Items skipped, by error code', labelNames: ['code'], registers: [this.registry] });
  private readonly mailboxes = new Counter({ name: 'mailmover_worker_mailboxes_total', help: 'Mailboxes this worker finished, by status', labelNames: ['status'], registers: [this.registry] });
  private readonly running = new Gauge({ name: 'mailmover_worker_mailboxes_running', help: 'Mailboxes this worker runs now', registers: [this.registry] });
  private readonly retries = new Counter({ name: 'mailmover_worker_retries_total', help: 'Commands tried again, per server', labelNames: ['server'], registers: [this.registry] });
  private readonly pauses = new Counter({ name: 'mailmover_worker_throttle_pauses_total', help: 'Throttling pauses a server asked for', labelNames: ['server'], registers: [this.registry] });
  private readonly verdicts = new Counter({ name: 'mailmover_worker_scan_verdicts_total', help: 'Scan verdicts recorded (infected, unscanned)', labelNames: ['verdict'], registers: [this.registry] });
  private readonly connections = new Gauge({ name: 'mailmover_worker_open_connections', help: 'Connection slots this worker holds, per server', labelNames: ['server'], registers: [this.registry] });
  private readonly ledgerWrite = new Histogram({
    name: 'mailmover_worker_ledger_write_seconds',
    help: 'How long each ledger write took',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  /** The last progress counters seen of each running mailbox, to count what is new. */
  private readonly last = new Map<string, { copied: number; bytes: number }>();

  constructor() {
    ledgerWrites.observe = (kind, seconds) => this.ledgerWrite.observe({ kind }, seconds);
  }

  /** The observer of one server's gate; `server` is its URL without credentials. */
  gate(server: string): GateObserver {
    this.connections.set({ server }, 0);
    return {
      pause: () => this.pauses.inc({ server }),
      retry: () => this.retries.inc({ server }),
      connections: (delta) => this.connections.inc({ server }, delta),
    };
  }

  /** A running mailbox's event. */
  event(e: BatchEvent): void {
    if (e.type === 'job-start') {
      this.running.inc();
      this.last.set(`${e.line}\n${e.source}`, { copied: 0, bytes: 0 });
    } else if (e.type === 'job-progress') {
      const key = `${e.line}\n${e.source}`;
      const was = this.last.get(key) ?? { copied: 0, bytes: 0 };
      if (e.counters.copied > was.copied) this.copied.inc(e.counters.copied - was.copied);
      if (e.counters.copiedBytes > was.bytes) this.bytes.inc(e.counters.copiedBytes - was.bytes);
      this.last.set(key, { copied: Math.max(was.copied, e.counters.copied), bytes: Math.max(was.bytes, e.counters.copiedBytes) });
    } else if (e.type === 'job-event') {
      if (e.event.type === 'item-skipped') this.skipped.inc({ code: e.event.item.code });
      else if (e.event.type === 'scan-verdict') this.verdicts.inc({ verdict: e.event.verdict.verdict });
    } else if (e.type === 'job-done') {
      this.running.dec();
      this.last.delete(`${e.job.line}\n${e.job.source}`);
      this.mailboxes.inc({ status: e.job.status });
    }
  }

  /** Serves /metrics at `hostname:port`; resolves with the port once it listens. */
  async serve(hostname: string, port: number, signal: AbortSignal): Promise<{ port: number; closed: Promise<void> }> {
    const server: Server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404: only GET /metrics here\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-store' }).end(text),
        (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`500: ${err.message}\n`),
      );
    });
    const bound = await new Promise<number>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new MigrateError(ERROR_CODES.CONFIG_OPTION, `--metrics ${hostname}:${port}: cannot listen (${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}).`, { scope: 'config', cause: err })),
      );
      server.listen(port, hostname, () => resolve((server.address() as AddressInfo).port));
    });
    const closed = new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve());
        server.closeAllConnections();
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
    return { port: bound, closed };
  }
}
