/**
 * The ledger as the console follows it: opened lazily (a state file that does not exist yet is
 * waited for, not an error), and polled every `intervalMs` by one loop for all viewers. A change
 * in any batch's status groups raises the version and tells the listeners (the server-sent
 * events); an unchanged ledger sends nothing. The loop also keeps each batch's copied total over
 * the last minutes, for the rate.
 */
import { isMigrateError } from '../core/errors.js';
import { LedgerMissing, openLedgerDb } from './ledger-db.js';
import { LedgerView, shown, type StatusGroup } from './ledger-view.js';

/** The ledger's condition, for the page. */
export type LedgerState = { state: 'ok'; location: string } | LedgerProblem;
/** A ledger that does not exist yet, or cannot be read. */
export type LedgerProblem = { state: 'missing' | 'error'; location: string; code?: string; message: string };

/** Opens the ledger on first use and again after it could not be opened. */
export class LedgerSource {
  private view: Promise<LedgerView> | undefined;

  constructor(readonly location: string) {}

  get shownLocation(): string {
    return shown(this.location);
  }

  /** The open view; rejects with LedgerMissing or a MigrateError (tried again on the next call). */
  get(): Promise<LedgerView> {
    if (!this.view) {
      this.view = openLedgerDb(this.location).then((db) => new LedgerView(db));
      this.view.catch(() => (this.view = undefined));
    }
    return this.view;
  }

  /** What a failure means for the page. */
  stateOf(err: unknown): LedgerProblem {
    if (err instanceof LedgerMissing) return { state: 'missing', location: this.shownLocation, message: err.message };
    if (isMigrateError(err)) return { state: 'error', location: this.shownLocation, code: err.code, message: shown(err.message) };
    return { state: 'error', location: this.shownLocation, code: 'MM-STATE-OPEN', message: shown(`The ledger cannot be read: ${(err as Error)?.message ?? String(err)}`) };
  }

  async close(): Promise<void> {
    const v = this.view;
    this.view = undefined;
    if (v) await (await v.catch(() => undefined))?.db.close();
  }
}

const RATE_WINDOW_MS = 60_000;
const RATE_MIN_SPAN_MS = 10_000;

/** The polling loop. */
export class LiveFeed {
  version = 0;
  groups: StatusGroup[] = [];
  ledger: LedgerState;
  private fingerprint = '';
  private readonly samples = new Map<string, { t: number; copied: number }[]>();
  private readonly listeners = new Set<(version: number) => void>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly source: LedgerSource,
    private readonly intervalMs: number,
  ) {
    this.ledger = { state: 'missing', location: source.shownLocation, message: 'not read yet' };
  }

  /** Polls now and then every interval until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    signal.addEventListener('abort', () => clearInterval(this.timer), { once: true });
  }

  /** Calls `listener` with the new version after each change; returns the unsubscribe. */
  subscribe(listener: (version: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Messages per second over the last minute the console watched; null until it has watched 10 s. */
  rate(batch: string): number | null {
    const s = this.samples.get(batch);
    if (!s || s.length < 2) return null;
    const last = s.at(-1)!;
    const first = s.find((x) => x.t >= last.t - RATE_WINDOW_MS)!;
    if (last.t - first.t < RATE_MIN_SPAN_MS) return null;
    return Math.max(0, last.copied - first.copied) / ((last.t - first.t) / 1000);
  }

  /** One look at the ledger. */
  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      let print: string;
      try {
        this.groups = await (await this.source.get()).statusGroups();
        this.ledger = { state: 'ok', location: this.source.shownLocation };
        print = JSON.stringify(this.groups);
      } catch (err) {
        this.groups = [];
        this.ledger = this.source.stateOf(err);
        print = JSON.stringify(this.ledger);
      }
      this.sample();
      if (print !== this.fingerprint) {
        this.fingerprint = print;
        this.version++;
        for (const l of this.listeners) l(this.version);
      }
    } finally {
      this.busy = false;
    }
  }

  private sample(): void {
    const now = Date.now();
    const copied = new Map<string, number>();
    for (const g of this.groups) copied.set(g.batch, (copied.get(g.batch) ?? 0) + g.copied);
    for (const [batch, n] of copied) {
      const s = this.samples.get(batch) ?? [];
      s.push({ t: now, copied: n });
      while (s.length > 2 && s[0]!.t < now - 5 * RATE_WINDOW_MS) s.shift();
      this.samples.set(batch, s);
    }
  }
}
